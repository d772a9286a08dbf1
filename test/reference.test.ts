// The reference against values derived by hand (DESIGN.md §1) and against finite differences.
import { describe, expect, test } from 'vitest';
import { reference } from '../src/index.js';
import { randomLabels, randomMatrix, rng } from './helpers.js';

const f64 = (a: number[]) => new Float64Array(a);
const f32 = (a: number[]) => new Float32Array(a);

describe('reference: hand-derived values', () => {
  test('all K scores equal: L = ln K and dS = (1/K − onehot)/N', () => {
    // W = 0 and b = 0 make every score 0; with X = identity rows, dW rows are the rows of dS.
    const N = 3;
    const K = 10;
    const X = { data: f64([1, 0, 0, 0, 1, 0, 0, 0, 1]), rows: N, cols: N };
    const W = { data: new Float64Array(N * K), rows: N, cols: K };
    const y = [0, 4, 9];
    const r = reference.lossAndGradients(X, y, W, new Float64Array(K));
    expect(r.loss).toBeCloseTo(2.302585093, 9);
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < K; k++) {
        const expected = (1 / K - (k === y[i] ? 1 : 0)) / N;
        expect(r.dW.data[i * K + k]).toBeCloseTo(expected, 15);
      }
    }
    for (let k = 0; k < K; k++) {
      const expected = y.reduce((acc, yi) => acc + (1 / K - (k === yi ? 1 : 0)), 0) / N;
      expect(r.db![k]).toBeCloseTo(expected, 15);
    }
  });

  test('f = [123, 456, 789], y = 0 gives L = 666 exactly, in float64 and float32', () => {
    for (const make of [f64, f32]) {
      const X = { data: make([1]), rows: 1, cols: 1 };
      const W = { data: make([0, 0, 0]), rows: 1, cols: 3 };
      const r = reference.lossAndGradients(X, [0], W, make([123, 456, 789]));
      expect(r.loss).toBe(666);
    }
  });

  test('softmax([1, −2, 0]) = [0.7053845127, 0.0351190270, 0.2594964603]', () => {
    const p = reference.softmax({ data: f64([1, -2, 0]), rows: 1, cols: 3 });
    expect(p.data[0]).toBeCloseTo(0.7053845127, 10);
    expect(p.data[1]).toBeCloseTo(0.035119027, 10);
    expect(p.data[2]).toBeCloseTo(0.2594964603, 10);
  });

  test('scores and predict by hand; ties go to the lowest index', () => {
    const X = { data: f64([1, 2, 3, 4]), rows: 2, cols: 2 };
    const W = { data: f64([1, 0, 1, 0, 1, 1]), rows: 2, cols: 3 };
    const S = reference.scores(X, W, f64([0, 0, -10]));
    expect(Array.from(S.data)).toEqual([1, 2, -7, 3, 4, -3]);
    expect(Array.from(reference.predict(X, W, f64([0, 0, -10])))).toEqual([1, 1]);
    expect(Array.from(reference.predict(X, { data: new Float64Array(6), rows: 2, cols: 3 }, null))).toEqual([0, 0]);
  });

  test('regularisation: full adds reg·ΣW² (gradient 2·reg·W), half adds ½·reg·ΣW² (gradient reg·W)', () => {
    const X = { data: f64([0]), rows: 1, cols: 1 };
    const W = { data: f64([3, -1]), rows: 1, cols: 2 };
    const base = reference.lossAndGradients(X, [0], W, null);
    expect(base.loss).toBeCloseTo(Math.log(2), 15);
    const full = reference.lossAndGradients(X, [0], W, null, { reg: 0.5 });
    expect(full.loss - base.loss).toBeCloseTo(0.5 * 10, 12);
    expect(Array.from(full.dW.data)).toEqual([2 * 0.5 * 3, 2 * 0.5 * -1]);
    const half = reference.lossAndGradients(X, [0], W, null, { reg: 0.5, regConvention: 'half' });
    expect(half.loss - base.loss).toBeCloseTo(0.25 * 10, 12);
    expect(Array.from(half.dW.data)).toEqual([0.5 * 3, 0.5 * -1]);
    expect(full.db).toBeNull();
  });
});

describe('reference: gradients against centred finite differences (float64)', () => {
  for (const regConvention of ['full', 'half'] as const) {
    test(`dW and db, regConvention ${regConvention}`, () => {
      const next = rng(7);
      const N = 9;
      const D = 5;
      const K = 4;
      const X = randomMatrix('float64', N, D, next);
      const W = randomMatrix('float64', D, K, next, 0.5);
      const b = randomMatrix('float64', 1, K, next).data;
      const y = randomLabels(N, K, next);
      const opts = { reg: 0.1, regConvention };
      const r = reference.lossAndGradients(X, y, W, b, opts);
      const h = 1e-5;
      let worst = 0;
      const check = (arr: Float64Array, i: number, analytic: number) => {
        const old = arr[i]!;
        arr[i] = old + h;
        const plus = reference.lossAndGradients(X, y, W, b, opts).loss;
        arr[i] = old - h;
        const minus = reference.lossAndGradients(X, y, W, b, opts).loss;
        arr[i] = old;
        const numeric = (plus - minus) / (2 * h);
        const rel = Math.abs(numeric - analytic) / Math.max(1e-300, Math.abs(numeric) + Math.abs(analytic));
        worst = Math.max(worst, rel);
      };
      for (let i = 0; i < D * K; i++) check(W.data as Float64Array, i, r.dW.data[i]!);
      for (let k = 0; k < K; k++) check(b as Float64Array, k, r.db![k]!);
      expect(worst).toBeLessThan(1e-7);
    });
  }
});
