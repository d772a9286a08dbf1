// The last step of a loss call, dW from the pass's float64 sums: from 1024 elements on the addon's
// finalizeGradients runs it instead of the JavaScript loop of finalizeSums, and must give the same
// bits for every reduction, regularisation and dtype.
import { afterEach, describe, expect, test } from 'vitest';
import { native } from '../src/backend.js';
import { GradientAccumulator, lossAndGradients, lossAndGradientsAsync } from '../src/index.js';
import type { NativeFinalizeArgs } from '../src/loader.js';
import { finalizeSums, type GradientFill } from '../src/prepare.js';
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

  test('the addon has finalizeGradients, and finalizeSums calls it from 1024 elements of dW on', () => {
    expect(typeof addonFill).toBe('function');
    let calls = 0;
    const counting: GradientFill = (a) => {
      calls++;
      addonFill!(a);
    };
    for (const [D, K, expected] of [
      [255, 4, 0], // 1020 elements: the loop
      [256, 4, 1], // 1024: the addon
      [3072, 10, 1],
    ] as const) {
      calls = 0;
      finalizeSums(sumsFor(D, K, 7, 1), dtype, D, K, weightsFor(dtype, D * K, 2), true, 'mean', 0, 'full', null, counting);
      expect(calls, `D=${D} K=${K}`).toBe(expected);
    }
  });

  // The calls a user makes reach the addon's loop (the wrapped addon object is swapped for a
  // counting one for the duration), and give what the JavaScript loop gives.
  describe('through the API', () => {
    const addon = native() as { finalizeGradients?: ((a: NativeFinalizeArgs) => void) | undefined };
    const original = addon.finalizeGradients;
    afterEach(() => {
      addon.finalizeGradients = original;
    });

    test('lossAndGradients, its async form, options.out and GradientAccumulator.result call it from 1024 elements of dW', async () => {
      let calls = 0;
      addon.finalizeGradients = (a) => {
        calls++;
        original!(a);
      };
      const next = rng(5);
      for (const [D, K, expected] of [
        [255, 4, 0],
        [256, 4, 1],
        [1031, 3, 1],
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
        // Without the addon's loop, the same bits.
        addon.finalizeGradients = undefined;
        const loop = lossAndGradients(X, y, W, b, { reg: 1e-3 });
        addon.finalizeGradients = (a) => {
          calls++;
          original!(a);
        };
        for (const r of [sync.dW.data, viaAsync.dW.data, out.dW, accumulated.dW.data]) expect(bitwiseEqual(r, loop.dW.data)).toBe(true);
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
      const addon = finalizeSums(sums, dtype, D, K, W, false, 'mean', reg, 'full', null, addonFill!);
      expect(bitwiseEqual(addon.dW.data, loop.dW.data), `reg ${reg}, weight ${weight}`).toBe(true);
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
      const addon = finalizeSums(sums, dtype, D, K, W, true, reduction, reg, convention, null, addonFill!);
      expect(bitwiseEqual(addon.dW.data, loop.dW.data), `D=${D} K=${K}`).toBe(true);
      // Not a trivial agreement: the gradients hold values of every magnitude.
      expect(new Set(Array.from(loop.dW.data.subarray(0, 64))).size).toBeGreaterThan(32);
    }
  });
});
