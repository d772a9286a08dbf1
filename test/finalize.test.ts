// The last step of a loss call, dW and the regularisation term from the pass's float64 sums: from
// 1024 elements of W on the addon's finalizeGradients and sumOfSquares run the loops of finalizeSums
// instead of JavaScript, and must give the same bits for every reduction, regularisation and dtype.
import { afterEach, describe, expect, test } from 'vitest';
import { native } from '../src/backend.js';
import { GradientAccumulator, lossAndGradients, lossAndGradientsAsync } from '../src/index.js';
import type { NativeFinalizeArgs } from '../src/loader.js';
import { finalizeSums, sumOfSquares, type FinalizeAddon } from '../src/prepare.js';
import type { Dtype, RegConvention, Reduction } from '../src/types.js';
import { array, bitwiseEqual, randomLabels, randomMatrix, rng } from './helpers.js';

const dtypes: Dtype[] = ['float32', 'float64'];

// Sums as a pass leaves them: [loss, weight, D×K dW sums, K db sums], over many magnitudes.
function sumsFor(D: number, K: number, weight: number, seed: number): Float64Array {
  const next = rng(seed);
  const sums = new Float64Array(2 + D * K + K);
  sums[0] = 123.25;
  sums[1] = weight;
  for (let i = 2; i < sums.length; i++) sums[i] = (2 * next() - 1) * 10 ** Math.floor(8 * next() - 4);
  return sums;
}

function weightsFor(dtype: Dtype, n: number, seed: number) {
  const next = rng(seed);
  const W = array(dtype, n);
  for (let i = 0; i < n; i++) W[i] = (2 * next() - 1) * 0.3;
  return W;
}

describe.each(dtypes)('%s', (dtype) => {
  const addonFill = native().finalizeGradients;
  const addonSquares = native().sumOfSquares;
  const addonLoops: FinalizeAddon = { finalizeGradients: addonFill, sumOfSquares: addonSquares };

  test('the addon has finalizeGradients, and finalizeSums calls it from 1024 elements of dW on', () => {
    expect(typeof addonFill).toBe('function');
    expect(typeof addonSquares).toBe('function');
    let calls = 0;
    const counting: FinalizeAddon = {
      finalizeGradients: (a) => {
        calls++;
        addonFill!(a);
      },
      sumOfSquares: (W) => {
        calls += 100;
        return addonSquares!(W);
      },
    };
    for (const [D, K, expected] of [
      [255, 4, 0], // 1020 elements: the loop
      [256, 4, 1], // 1024: the addon
      [3072, 10, 1],
    ] as const) {
      calls = 0;
      finalizeSums(sumsFor(D, K, 7, 1), dtype, D, K, weightsFor(dtype, D * K, 2), true, 'mean', 0, 'full', null, counting);
      expect(calls, `D=${D} K=${K}, reg 0`).toBe(expected);
      calls = 0;
      finalizeSums(sumsFor(D, K, 7, 1), dtype, D, K, weightsFor(dtype, D * K, 2), true, 'mean', 1e-3, 'full', null, counting);
      expect(calls, `D=${D} K=${K}, reg 1e-3: both loops`).toBe(101 * expected);
    }
  });

  // The calls a user makes reach the addon's loop (the wrapped addon object is swapped for a
  // counting one for the duration), and give what the JavaScript loop gives.
  describe('through the API', () => {
    const addon = native() as {
      finalizeGradients?: ((a: NativeFinalizeArgs) => void) | undefined;
      sumOfSquares?: ((W: Float32Array | Float64Array) => number) | undefined;
    };
    const original = addon.finalizeGradients;
    const originalSquares = addon.sumOfSquares;
    afterEach(() => {
      addon.finalizeGradients = original;
      addon.sumOfSquares = originalSquares;
    });
    const counted = (count: () => void) => {
      addon.finalizeGradients = (a) => {
        count();
        original!(a);
      };
      addon.sumOfSquares = (W) => {
        count();
        return originalSquares!(W);
      };
    };

    test('lossAndGradients, its async form, options.out and GradientAccumulator.result call both from 1024 elements of W', async () => {
      let calls = 0;
      counted(() => calls++);
      const next = rng(5);
      for (const [D, K, expected] of [
        [255, 4, 0],
        [256, 4, 2],
        [1031, 3, 2],
      ] as const) {
        const X = randomMatrix(dtype, 37, D, next);
        const W = randomMatrix(dtype, D, K, next, 0.1);
        const b = randomMatrix(dtype, 1, K, next, 0.1).data;
        const y = randomLabels(37, K, next);
        calls = 0;
        const sync = lossAndGradients(X, y, W, b, { reg: 1e-3 });
        expect(calls, `sync D=${D} K=${K}`).toBe(expected);
        calls = 0;
        const viaAsync = await lossAndGradientsAsync(X, y, W, b, { reg: 1e-3 });
        expect(calls, `async D=${D} K=${K}`).toBe(expected);
        calls = 0;
        const out = { dW: array(dtype, D * K), db: array(dtype, K) };
        lossAndGradients(X, y, W, b, { reg: 1e-3, out });
        expect(calls, `out D=${D} K=${K}`).toBe(expected);
        calls = 0;
        const acc = new GradientAccumulator(W, b, { reg: 1e-3 });
        acc.add(X, y);
        const accumulated = acc.result();
        expect(calls, `accumulator D=${D} K=${K}`).toBe(expected);
        // Without the addon's loops, the same bits.
        addon.finalizeGradients = undefined;
        addon.sumOfSquares = undefined;
        const loop = lossAndGradients(X, y, W, b, { reg: 1e-3 });
        counted(() => calls++);
        for (const r of [sync.dW.data, viaAsync.dW.data, out.dW, accumulated.dW.data]) expect(bitwiseEqual(r, loop.dW.data)).toBe(true);
        for (const l of [sync.loss, viaAsync.loss, accumulated.loss]) expect(Object.is(l, loop.loss)).toBe(true);
      }
    });
  });

  test('special values (NaN, ±Infinity, -0, subnormal results, float32 overflow) give the loop\'s values', () => {
    const D = 512, K = 2;
    const sums = sumsFor(D, K, 3, 9);
    const W = weightsFor(dtype, D * K, 10);
    const specials = [NaN, Infinity, -Infinity, -0, 0, 5e-324, -1e-310, 1e300, 3.4e38 * 3, 1.5e-45 * 3];
    for (let i = 0; i < specials.length; i++) {
      sums[2 + 7 * i] = specials[i]!;
      W[11 * i + 1] = dtype === 'float32' ? Math.fround(specials[i]!) : specials[i]!;
    }
    for (const [reg, weight] of [[0, 3], [1e-3, 3], [1e308, 3], [0, 1e-300]] as const) {
      sums[1] = weight;
      const loop = finalizeSums(sums, dtype, D, K, W, false, 'mean', reg, 'full', null, null);
      const addon = finalizeSums(sums, dtype, D, K, W, false, 'mean', reg, 'full', null, addonLoops);
      expect(bitwiseEqual(addon.dW.data, loop.dW.data), `reg ${reg}, weight ${weight}`).toBe(true);
    }
  });

  test('sumOfSquares: the addon adds in the loop\'s order (four partial sums), every length and tail', () => {
    const next = rng(31);
    for (const n of [0, 1, 2, 3, 4, 5, 7, 1024, 1025, 1026, 1027, 30720]) {
      const W = array(dtype, n);
      for (let i = 0; i < n; i++) W[i] = (2 * next() - 1) * 10 ** Math.floor(6 * next() - 3);
      expect(Object.is(addonSquares!(W), sumOfSquares(W)), `n=${n}`).toBe(true);
    }
    // The order is the documented one, not a sequential sum: with squares 2^52, 0, 0.5625, 0.5625
    // (ulp 1 at 2^52), (2^52 + 0) + (0.5625 + 0.5625) rounds to 2^52 + 1, the sequential sum to
    // 2^52 + 2 (each 0.5625 rounds up on its own).
    const W = array(dtype, 4);
    W.set([2 ** 26, 0, 0.75, 0.75]);
    expect(sumOfSquares(W)).toBe(2 ** 52 + 1);
    expect(addonSquares!(W)).toBe(2 ** 52 + 1);
    expect(Array.from(W).reduce((sum, w) => sum + w * w, 0)).toBe(2 ** 52 + 2);
    // Special values.
    for (const special of [NaN, Infinity, -Infinity, -0, 1e200]) {
      const V = array(dtype, 1030).fill(0.25);
      V[5] = dtype === 'float32' ? Math.fround(special) : special;
      expect(Object.is(addonSquares!(V), sumOfSquares(V)), String(special)).toBe(true);
    }
  });

  const cases: [Reduction, number, RegConvention, number][] = [
    ['mean', 0, 'full', 200], // plain mean, no regularisation
    ['mean', 1e-3, 'full', 200],
    ['mean', 0.5, 'half', 3.5], // a weighted mean's fractional total weight
    ['sum', 2.5e-4, 'full', 200],
    ['mean', 1e-3, 'full', 0], // every row ignored: zero data term
    ['mean', 0, 'full', 3e-30], // a tiny total weight: divided, never multiplied by its inverse
  ];

  test.each(cases)('reduction %s, reg %s (%s), weight %s: the addon gives the loop\'s bits', (reduction, reg, convention, weight) => {
    for (const [D, K] of [
      [256, 4],
      [1031, 3], // a prime D
      [3072, 10],
    ] as const) {
      const sums = sumsFor(D, K, weight, D + K);
      const W = weightsFor(dtype, D * K, D * K);
      const loop = finalizeSums(sums, dtype, D, K, W, true, reduction, reg, convention, null, null);
      const addon = finalizeSums(sums, dtype, D, K, W, true, reduction, reg, convention, null, addonLoops);
      expect(bitwiseEqual(addon.dW.data, loop.dW.data), `D=${D} K=${K}`).toBe(true);
      expect(Object.is(addon.loss, loop.loss), `loss, D=${D} K=${K}`).toBe(true);
      // Not a trivial agreement: the gradients hold values of every magnitude.
      expect(new Set(Array.from(loop.dW.data.subarray(0, 64))).size).toBeGreaterThan(32);
    }
  });
});
