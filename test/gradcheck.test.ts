// gradCheck: CS231n's grad_check_sparse finds the analytic gradient of lossAndGradients right, and a
// wrong one wrong.
import { describe, expect, test } from 'vitest';
import { gradCheck, lossAndGradients, type Matrix } from '../src/index.js';
import { bitwiseEqual, randomLabels, randomMatrix, rng } from './helpers.js';

function problem(seed: number) {
  const next = rng(seed);
  const N = 24;
  const D = 7;
  const K = 5;
  const X = randomMatrix('float64', N, D, next) as Matrix<Float64Array>;
  const W = randomMatrix('float64', D, K, next, 0.5) as Matrix<Float64Array>;
  const b = randomMatrix('float64', 1, K, next, 0.5).data as Float64Array;
  const y = randomLabels(N, K, next);
  return { X, W, b, y };
}

describe('gradCheck on lossAndGradients (float64)', () => {
  for (const regConvention of ['full', 'half'] as const) {
    test(`dW and db with reg (${regConvention}): max relative error < 1e-7`, () => {
      const { X, W, b, y } = problem(1);
      const options = { reg: 0.1, regConvention };
      const { dW, db } = lossAndGradients(X, y, W, b, options);
      const f = () => lossAndGradients(X, y, W, b, options).loss;
      const onW = gradCheck(f, W, dW, { checks: 20 });
      expect(onW.errors).toHaveLength(20);
      expect(onW.maxRelativeError).toBeLessThan(1e-7);
      const onB = gradCheck(f, b, db!, { checks: 10 });
      expect(onB.maxRelativeError).toBeLessThan(1e-7);
      for (const e of onW.errors) {
        expect(e.analytic).toBe(dW.data[e.index]);
        expect(Math.abs(e.numeric - e.analytic)).toBeLessThan(1e-7 * (Math.abs(e.numeric) + Math.abs(e.analytic)) + 1e-15);
      }
    });
  }

  test('with label smoothing and class weights too', () => {
    const { X, W, b, y } = problem(2);
    const options = { reg: 0.01, labelSmoothing: 0.1, classWeights: [1, 2, 0.5, 1, 3] };
    const { dW } = lossAndGradients(X, y, W, b, options);
    const r = gradCheck(() => lossAndGradients(X, y, W, b, options).loss, W.data, dW.data, { checks: 15 });
    expect(r.maxRelativeError).toBeLessThan(1e-7);
  });

  test('a deliberately wrong gradient is found wrong', () => {
    const { X, W, b, y } = problem(3);
    const f = () => lossAndGradients(X, y, W, b, { reg: 0.1 }).loss;
    // The regularisation gradient left out.
    const withoutReg = lossAndGradients(X, y, W, b, { reg: 0 }).dW;
    expect(gradCheck(f, W, withoutReg).maxRelativeError).toBeGreaterThan(1e-3);
    // Every entry 1% too large.
    const scaled = Float64Array.from(lossAndGradients(X, y, W, b, { reg: 0.1 }).dW.data, (v) => v * 1.01);
    const r = gradCheck(f, W, scaled);
    expect(r.maxRelativeError).toBeGreaterThan(1e-3);
    expect(r.maxRelativeError).toBeLessThan(1e-2);
  });
});

describe('gradCheck itself', () => {
  test('a known function: f = Σ x³, ∂f/∂x = 3x²', () => {
    const x = Float64Array.from({ length: 50 }, (_, i) => (i - 25) / 7);
    const f = (v: Float64Array) => v.reduce((s, t) => s + t ** 3, 0);
    const r = gradCheck(f, x, Array.from(x, (t) => 3 * t * t), { checks: 30, h: 1e-4 });
    expect(r.maxRelativeError).toBeLessThan(1e-7);
    expect(r.maxRelativeError).toBe(Math.max(...r.errors.map((e) => e.relativeError)));
  });

  test('x is restored bit for bit, also when f throws', () => {
    const x = Float64Array.from([0.1, -0.2, 1 / 3, 1e-300, -0]);
    const before = x.slice();
    gradCheck((v) => v.reduce((s, t) => s + Math.sin(t), 0), x, Array.from(x, Math.cos), { checks: 25 });
    expect(bitwiseEqual(x, before)).toBe(true);
    let calls = 0;
    expect(() =>
      gradCheck(
        () => {
          if (++calls === 2) throw new Error('boom');
          return 0;
        },
        x,
        new Float64Array(5),
      ),
    ).toThrow('boom');
    expect(bitwiseEqual(x, before)).toBe(true);
  });

  test('relative error 0 when both derivatives are 0; the same seed samples the same indices', () => {
    const x = new Float64Array(8).fill(1);
    const r = gradCheck(() => 42, x, new Float64Array(8), { checks: 5 });
    expect(r.errors.every((e) => e.relativeError === 0 && e.numeric === 0)).toBe(true);
    expect(r.maxRelativeError).toBe(0);
    const a = gradCheck(() => 0, new Float64Array(1000), new Float64Array(1000), { seed: 7 }).errors.map((e) => e.index);
    const b = gradCheck(() => 0, new Float64Array(1000), new Float64Array(1000), { seed: 7 }).errors.map((e) => e.index);
    const c = gradCheck(() => 0, new Float64Array(1000), new Float64Array(1000), { seed: 8 }).errors.map((e) => e.index);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.every((i) => Number.isInteger(i) && i >= 0 && i < 1000)).toBe(true);
  });

  test('bad arguments', () => {
    const x = new Float64Array(3);
    const cases: [() => unknown, string, string][] = [
      [() => gradCheck(5 as never, x, x), 'ERR_TYPE', 'for f'],
      [() => gradCheck(() => 0, new Float32Array(3) as never, x), 'ERR_DTYPE', 'for x'],
      [() => gradCheck(() => 0, x, new Float64Array(2)), 'ERR_SHAPE', 'analytic.length'],
      [() => gradCheck(() => 0, x, x, { checks: 0 }), 'ERR_OPTION', 'options.checks'],
      [() => gradCheck(() => 0, x, x, { h: -1 }), 'ERR_OPTION', 'options.h'],
      [() => gradCheck(() => 0, x, x, { h: '1e-5' as never }), 'ERR_OPTION', 'options.h'],
      [() => gradCheck(() => 0, x, x, { seed: 1.5 }), 'ERR_OPTION', 'options.seed'],
      [() => gradCheck(() => 0, x, x, { step: 1 } as never), 'ERR_OPTION', 'options.step'],
    ];
    for (const [call, code, words] of cases) {
      expect(call, words).toThrow(expect.objectContaining({ code, message: expect.stringMatching(new RegExp(`^Expected .* ${words.replace(/[.[\]]/g, '\\$&')}`)) }));
    }
  });
});
