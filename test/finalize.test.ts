// The last step of a loss call, dW from the pass's float64 sums: from 1024 elements on the addon's
// finalizeGradients runs it instead of the JavaScript loop of finalizeSums, and must give the same
// bits for every reduction, regularisation and dtype.
import { describe, expect, test } from 'vitest';
import { native } from '../src/backend.js';
import { finalizeSums, type GradientFill } from '../src/prepare.js';
import type { Dtype, RegConvention, Reduction } from '../src/types.js';
import { array, bitwiseEqual, rng } from './helpers.js';

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
      expect(addon.dW.data.constructor).toBe(loop.dW.data.constructor);
      expect(bitwiseEqual(addon.dW.data, loop.dW.data), `D=${D} K=${K}`).toBe(true);
      expect(bitwiseEqual(addon.db!, loop.db!)).toBe(true);
      expect(Object.is(addon.loss, loop.loss)).toBe(true);
      // Not a trivial agreement: the gradients hold values of every magnitude.
      expect(new Set(Array.from(loop.dW.data.subarray(0, 64))).size).toBeGreaterThan(32);
    }
  });
});
