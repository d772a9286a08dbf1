'use strict';
// The benchmark's problem shapes and their deterministic data.

/** The shapes of issue 6 (N rows of X, D features, K classes). */
const SHAPES = [
  { name: 'tiny', N: 64, D: 32, K: 4 },
  { name: 'mnist', N: 60000, D: 784, K: 10 },
  { name: 'cifar', N: 10000, D: 3072, K: 10 },
  { name: 'wideK', N: 4096, D: 512, K: 1000 },
  { name: 'big', N: 200000, D: 256, K: 100 },
];

/** `--quick` (CI): small shapes only; they cover tails (sizes that are no multiple of a vector) and K = 1000. */
const QUICK_SHAPES = [
  { name: 'tiny', N: 64, D: 32, K: 4 },
  { name: 'tails', N: 97, D: 37, K: 17 },
  { name: 'mnist-s', N: 512, D: 784, K: 10 },
  { name: 'wideK-s', N: 16, D: 512, K: 1000 },
];

const DTYPES = ['float32', 'float64'];

/** The regularisation strength every run uses (so the reg path is measured and checked too). */
const REG = 1e-3;

/** Flops of one call of an op: an FMA is 2 flops; lossAndGradients does two N·D·K products. */
function flops(op, s) {
  return (op === 'lossAndGradients' ? 4 : 2) * s.N * s.D * s.K;
}

/** Bytes of X read by one call. */
function bytesOfX(s, dtype) {
  return s.N * s.D * (dtype === 'float32' ? 4 : 8);
}

/** Bytes one call must move at least: X read, plus the N×K scores (or N labels) written by scores (predict). */
function bytesMoved(op, s, dtype) {
  const size = dtype === 'float32' ? 4 : 8;
  if (op === 'scores') return bytesOfX(s, dtype) + s.N * s.K * size;
  if (op === 'predict') return bytesOfX(s, dtype) + s.N * 4;
  return bytesOfX(s, dtype);
}

/** A small, fast, seeded generator (mulberry32): uniform in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The problem for a shape and dtype: X uniform in [−1, 1), W uniform scaled by 3/√D so that the
 * scores have unit spread, b small, labels uniform in [0, K). The same seed gives the same float64
 * values; the float32 problem is those values rounded. allocX(rows, cols, dtype), when given, makes X's
 * matrix (the package's allocMatrix: see README "Use"); otherwise X is a plain typed array.
 */
function makeProblem(s, dtype, seed = 12345, allocX = null) {
  const Arr = dtype === 'float32' ? Float32Array : Float64Array;
  const r = rng(seed ^ (s.N * 31 + s.D * 7 + s.K));
  const X = allocX ? allocX(s.N, s.D, dtype).data : new Arr(s.N * s.D);
  for (let i = 0; i < X.length; i++) X[i] = 2 * r() - 1;
  const scale = 3 / Math.sqrt(s.D);
  const W = new Arr(s.D * s.K);
  for (let i = 0; i < W.length; i++) W[i] = (2 * r() - 1) * scale;
  const b = new Arr(s.K);
  for (let i = 0; i < b.length; i++) b[i] = 0.1 * (2 * r() - 1);
  const y = new Int32Array(s.N);
  for (let i = 0; i < s.N; i++) y[i] = Math.floor(r() * s.K);
  return {
    shape: s,
    dtype,
    X: { data: X, rows: s.N, cols: s.D },
    y,
    W: { data: W, rows: s.D, cols: s.K },
    b,
  };
}

/** The first `rows` rows of a problem, as zero-copy views. */
function rowSubset(p, rows) {
  const n = Math.min(rows, p.shape.N);
  return {
    ...p,
    shape: { ...p.shape, N: n },
    X: { data: p.X.data.subarray(0, n * p.shape.D), rows: n, cols: p.shape.D },
    y: p.y.subarray(0, n),
  };
}

module.exports = { SHAPES, QUICK_SHAPES, DTYPES, REG, flops, bytesOfX, bytesMoved, makeProblem, rowSubset, rng };
