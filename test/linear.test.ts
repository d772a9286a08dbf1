// The addon against the reference: both dtypes, many shapes, large logits, both reg conventions;
// async equals sync bitwise; runs repeat bitwise; views at any byteOffset and over shared memory.
import { describe, expect, test } from 'vitest';
import {
  lossAndGradients,
  lossAndGradientsAsync,
  predict,
  reference,
  scores,
  softmax,
  type Dtype,
  type FloatArray,
  type Matrix,
} from '../src/index.js';
import { EPS, bitwiseEqual, expectAllClose, lossTolerances, offsetView, randomLabels, randomMatrix, rng, scoreScale, softmaxTolerance } from './helpers.js';

const SIZES = [1, 2, 3, 7, 8, 9, 16, 17, 31, 33, 97, 257];
const DTYPES: Dtype[] = ['float32', 'float64'];

/** A sensible sample of (N, D, K) from SIZES: every size appears in every position. */
function shapes(): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  SIZES.forEach((s, i) => {
    const a = SIZES[(i + 3) % SIZES.length]!;
    const c = SIZES[(i + 7) % SIZES.length]!;
    out.push([s, a % 64 || 1, c % 40 || 1]);
    out.push([a, s, c % 40 || 1]);
    out.push([c, a % 100, s]);
  });
  return out.map(([n, d, k]) => [n, Math.max(1, d), Math.max(1, k)]);
}

function problem(dtype: Dtype, N: number, D: number, K: number, seed: number, logit = 1) {
  const next = rng(seed);
  const X = randomMatrix(dtype, N, D, next);
  // Scale W so that scores reach about `logit` in magnitude.
  const W = randomMatrix(dtype, D, K, next, (2 * logit) / Math.sqrt(D));
  const b = randomMatrix(dtype, 1, K, next, logit).data;
  const y = randomLabels(N, K, next);
  return { X, W, b, y };
}

function expectLossClose(dtype: Dtype, X: Matrix, W: Matrix, b: FloatArray | null, y: Int32Array, opts: { reg?: number; regConvention?: 'full' | 'half' }) {
  const got = lossAndGradients(X, y, W, b, opts);
  const want = reference.lossAndGradients(X, y, W, b, opts);
  const tol = lossTolerances(dtype, X, W, b, opts.reg ?? 0);
  expect(Math.abs(got.loss - want.loss), `loss ${got.loss} vs ${want.loss}`).toBeLessThanOrEqual(tol.loss);
  expectAllClose(got.dW.data, want.dW.data, tol.dW, 'dW');
  if (b) expectAllClose(got.db!, want.db!, tol.db, 'db');
  expect(got.dW.data.constructor).toBe(X.data.constructor);
  return got;
}

describe.each(DTYPES)('lossAndGradients matches the reference (%s)', (dtype) => {
  test.each(shapes())('N=%i D=%i K=%i', (N, D, K) => {
    const { X, W, b, y } = problem(dtype, N, D, K, N * 1000 + D * 10 + K);
    expectLossClose(dtype, X, W, b, y, {});
  });

  test.each([
    [33, 17, 10],
    [257, 31, 3],
    [9, 97, 17],
  ])('large logits (|f| ~ 1e3), N=%i D=%i K=%i', (N, D, K) => {
    const { X, W, b, y } = problem(dtype, N, D, K, 99, 1000);
    expect(scoreScale(X, W, b)).toBeGreaterThan(500);
    expectLossClose(dtype, X, W, b, y, {});
  });

  test.each(['full', 'half'] as const)('reg = 0.3, regConvention %s, and no bias', (regConvention) => {
    const { X, W, b, y } = problem(dtype, 31, 9, 7, 5);
    expectLossClose(dtype, X, W, b, y, { reg: 0.3, regConvention });
    const noBias = expectLossClose(dtype, X, W, null, y, { reg: 0.3, regConvention });
    expect(noBias.db).toBeNull();
  });

  test('f = [123, 456, 789], y = 0 gives L = 666 exactly', () => {
    const make = (a: number[]) => (dtype === 'float32' ? new Float32Array(a) : new Float64Array(a));
    const r = lossAndGradients({ data: make([1]), rows: 1, cols: 1 }, [0], { data: make([0, 0, 0]), rows: 1, cols: 3 }, make([123, 456, 789]));
    expect(r.loss).toBe(666);
    // db = p − onehot(0), with p = (e^−666, e^−333, 1) rounded to the dtype (float32: 0, 0, 1)
    const p1 = dtype === 'float32' ? 0 : Math.exp(-333);
    expect(Array.from(r.db!)).toEqual([-1, p1, 1]);
  });

  test('all scores equal: L = ln K, dS = (1/K − onehot)/N', () => {
    const K = 10;
    const make = (n: number) => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
    const X = { data: make(4).fill(1), rows: 2, cols: 2 };
    const r = lossAndGradients(X, [3, 3], { data: make(2 * K), rows: 2, cols: K }, make(K));
    expect(Math.abs(r.loss - Math.LN10)).toBeLessThanOrEqual(4 * EPS[dtype]);
    for (let k = 0; k < K; k++) expect(Math.abs(r.db![k]! - (1 / K - (k === 3 ? 1 : 0)))).toBeLessThanOrEqual(4 * EPS[dtype]);
  });

  test('scores, softmax and predict match the reference', () => {
    for (const [N, D, K] of [[1, 1, 1], [17, 9, 10], [97, 33, 3], [8, 257, 17]] as const) {
      const { X, W, b } = problem(dtype, N, D, K, N + D + K, 5);
      const S = scores(X, W, b);
      const Sref = reference.scores(X, W, b);
      const tolS = 4 * EPS[dtype] * (D + 2) * scoreScale(X, W, b);
      expectAllClose(S.data, Sref.data, tolS, 'scores');
      expectAllClose(softmax(S).data, reference.softmax(S).data, softmaxTolerance(dtype, S), 'softmax');
      // predict may differ from the reference only where the two best scores are within rounding
      const p = predict(X, W, b);
      const pref = reference.predict(X, W, b);
      for (let i = 0; i < N; i++) {
        if (p[i] !== pref[i]) expect(Math.abs(Sref.data[i * K + p[i]!]! - Sref.data[i * K + pref[i]!]!)).toBeLessThanOrEqual(2 * tolS);
      }
    }
  });
});

describe('reproducibility and views', () => {
  test.each(DTYPES)('async equals sync bitwise, and two runs are bitwise equal (%s)', async (dtype) => {
    const { X, W, b, y } = problem(dtype, 3001, 41, 10, 3);
    const a = lossAndGradients(X, y, W, b, { reg: 0.01 });
    const again = lossAndGradients(X, y, W, b, { reg: 0.01 });
    const c = await lossAndGradientsAsync(X, y, W, b, { reg: 0.01 });
    for (const other of [again, c]) {
      expect(Object.is(other.loss, a.loss)).toBe(true);
      expect(bitwiseEqual(other.dW.data, a.dW.data)).toBe(true);
      expect(bitwiseEqual(other.db!, a.db!)).toBe(true);
    }
  });

  test.each(DTYPES)('typed-array views at non-zero, unaligned byteOffsets give the same result (%s)', (dtype) => {
    const { X, W, b, y } = problem(dtype, 101, 19, 10, 11);
    const base = lossAndGradients(X, y, W, b);
    for (const offset of [1, 3, 5]) {
      const Xv = { data: offsetView(X.data, offset), rows: X.rows, cols: X.cols };
      const Wv = { data: offsetView(W.data, offset + 1), rows: W.rows, cols: W.cols };
      const bv = offsetView(b, offset + 2);
      expect(Xv.data.byteOffset % 32).not.toBe(0);
      const r = lossAndGradients(Xv, y, Wv, bv);
      expect(Object.is(r.loss, base.loss)).toBe(true);
      expect(bitwiseEqual(r.dW.data, base.dW.data)).toBe(true);
      const S = scores(Xv, Wv, bv);
      expect(bitwiseEqual(S.data, scores(X, W, b).data)).toBe(true);
    }
  });

  test('typed arrays over a SharedArrayBuffer are accepted', () => {
    const { X, W, b, y } = problem('float32', 50, 7, 4, 12);
    const shared = new Float32Array(new SharedArrayBuffer(X.data.byteLength + 8), 8, X.data.length);
    shared.set(X.data);
    const r = lossAndGradients({ data: shared, rows: 50, cols: 7 }, y, W, b);
    expect(Object.is(r.loss, lossAndGradients(X, y, W, b).loss)).toBe(true);
  });

  test('labels of every accepted type give the same result', () => {
    const { X, W, b, y } = problem('float64', 40, 5, 6, 13);
    const base = lossAndGradients(X, y, W, b);
    for (const labels of [Array.from(y), Uint8Array.from(y), Uint16Array.from(y), Uint32Array.from(y)]) {
      expect(lossAndGradients(X, labels, W, b).loss).toBe(base.loss);
    }
  });
});
