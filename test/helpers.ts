// Shared test helpers: seeded data, tolerances derived from the dtype, comparisons.
import { expect } from 'vitest';
import type { Dtype, FloatArray, Matrix } from '../src/index.js';

export const EPS: Record<Dtype, number> = { float32: 2 ** -23, float64: 2 ** -52 };

/** mulberry32: a small seeded PRNG, so every failure reproduces. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function array(dtype: Dtype, length: number): FloatArray {
  return dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
}

export function randomArray(dtype: Dtype, length: number, next: () => number, scale = 1): FloatArray {
  const a = array(dtype, length);
  for (let i = 0; i < length; i++) a[i] = (2 * next() - 1) * scale;
  return a;
}

export function randomMatrix(dtype: Dtype, rows: number, cols: number, next: () => number, scale = 1): Matrix {
  return { data: randomArray(dtype, rows * cols, next, scale), rows, cols };
}

export function randomLabels(N: number, K: number, next: () => number): Int32Array {
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) y[i] = Math.floor(next() * K);
  return y;
}

/** A copy of `a` placed at an element offset inside a larger buffer (a view with byteOffset != 0). */
export function offsetView<T extends FloatArray>(a: T, offsetElements: number): T {
  const Ctor = a.constructor as { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };
  const buffer = new ArrayBuffer((a.length + offsetElements + 3) * Ctor.BYTES_PER_ELEMENT);
  const v = new Ctor(buffer, offsetElements * Ctor.BYTES_PER_ELEMENT, a.length);
  v.set(a);
  return v;
}

/** The largest |score| contribution of a row: max over rows and classes of Σ_d |x_d w_dk| + |b_k|. */
export function scoreScale(X: Matrix, W: Matrix, b: FloatArray | null): number {
  const { rows: N, cols: D } = X;
  const K = W.cols;
  let scale = 0;
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < K; k++) {
      let s = b ? Math.abs(b[k]!) : 0;
      for (let d = 0; d < D; d++) s += Math.abs(X.data[i * D + d]! * W.data[d * K + k]!);
      scale = Math.max(scale, s);
    }
  }
  return scale;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Every element within `tol` (absolute); reports the worst index on failure. */
export function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    if (!(err <= tol) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${actual[worst]} but the reference is ${expected[worst]} (|error| ${worstErr} > tolerance ${tol})`);
  }
}

export function bitwiseEqual(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/**
 * Tolerances for comparing a native loss result with the float64 reference, derived from the dtype:
 * a score carries at most ~(D + 2)·eps·scale of rounding (scale = scoreScale), which moves each
 * probability, the loss and each gradient row by that much relative; dW adds a factor |x|.
 */
export function lossTolerances(dtype: Dtype, X: Matrix, W: Matrix, b: FloatArray | null, reg = 0): { loss: number; dW: number; db: number } {
  const eps = EPS[dtype];
  const s = scoreScale(X, W, b);
  const base = 8 * eps * (s + X.cols + W.cols + 2);
  let sq = 0;
  for (let i = 0; i < W.data.length; i++) sq += W.data[i]! ** 2;
  return {
    loss: base * (1 + s) + 8 * eps * reg * sq,
    dW: base * Math.max(1, maxAbs(X.data)) + 8 * eps * 2 * reg * maxAbs(W.data),
    db: base,
  };
}

/** Softmax rounding: s − max carries eps·|s| absolute error, which moves p by that much relative. */
export function softmaxTolerance(dtype: Dtype, S: Matrix): number {
  return 8 * EPS[dtype] * (S.cols + 2 + maxAbs(S.data));
}
