// The pure-TypeScript reference: the mathematics of DESIGN.md §1 written as plainly as possible, in
// float64 throughout, one row at a time. It is the independent witness the tests compare the native
// kernels against, so it shares no code with them and optimises nothing.
import type { Dtype, FloatArray, Matrix, Reduction, RegConvention } from '../types.js';

export interface ReferenceLossOptions {
  reg: number;
  regConvention: RegConvention;
  classWeights: ArrayLike<number> | null;
  sampleWeights: ArrayLike<number> | null;
  ignoreIndex: number | null;
  labelSmoothing: number;
  reduction: Reduction;
}

function dtypeOf(a: FloatArray): Dtype {
  return a instanceof Float32Array ? 'float32' : 'float64';
}

function like(a: FloatArray, length: number): FloatArray {
  return dtypeOf(a) === 'float32' ? new Float32Array(length) : new Float64Array(length);
}

function at(a: ArrayLike<number>, i: number): number {
  return a[i] as number;
}

/** The scores of row i, f_j = x_i · w_j + b_j, in float64. */
function rowScores(X: Matrix, W: Matrix, b: FloatArray | null, i: number): number[] {
  const D = X.cols;
  const K = W.cols;
  const f: number[] = [];
  for (let j = 0; j < K; j++) {
    let s = b ? at(b, j) : 0;
    for (let d = 0; d < D; d++) s += at(X.data, i * D + d) * at(W.data, d * K + j);
    f.push(s);
  }
  return f;
}

/** log Σ exp(f_j), shifted by the maximum so it never overflows. */
function logSumExp(f: number[]): number {
  const m = Math.max(...f);
  let s = 0;
  for (const v of f) s += Math.exp(v - m);
  return m + Math.log(s);
}

export function scores(X: Matrix, W: Matrix, b: FloatArray | null): Matrix {
  const N = X.rows;
  const K = W.cols;
  const out = like(X.data, N * K);
  for (let i = 0; i < N; i++) {
    const f = rowScores(X, W, b, i);
    for (let j = 0; j < K; j++) out[i * K + j] = at(f, j);
  }
  return { data: out, rows: N, cols: K };
}

export function softmax(S: Matrix): Matrix {
  const { rows, cols } = S;
  const out = like(S.data, rows * cols);
  for (let i = 0; i < rows; i++) {
    const f: number[] = [];
    for (let j = 0; j < cols; j++) f.push(at(S.data, i * cols + j));
    const lse = logSumExp(f);
    for (let j = 0; j < cols; j++) out[i * cols + j] = Math.exp(at(f, j) - lse);
  }
  return { data: out, rows, cols };
}

/** argmax per row; ties go to the lowest index, and a NaN score never wins over a number. */
export function predict(X: Matrix, W: Matrix, b: FloatArray | null): Int32Array {
  const out = new Int32Array(X.rows);
  for (let i = 0; i < X.rows; i++) {
    const f = rowScores(X, W, b, i);
    let best = 0;
    for (let j = 1; j < f.length; j++) {
      const better = at(f, j) > at(f, best) || (Number.isNaN(at(f, best)) && !Number.isNaN(at(f, j)));
      if (better) best = j;
    }
    out[i] = best;
  }
  return out;
}

export interface ReferenceLossResult {
  loss: number;
  dW: Matrix;
  db: FloatArray | null;
  losses?: FloatArray;
  /** Σ of the rows' losses and Σ of their weights (the 'mean' denominator), before reduction. */
  lossSum: number;
  weightSum: number;
  /** The first row with a non-finite score or loss, or -1. */
  firstNonFiniteRow: number;
}

/**
 * Cross-entropy of the softmax classifier with PyTorch's options, row by row:
 *   labels:  ℓ_i = s_i·[(1−ε)·w_{y}·(lse − f_y) + (ε/K)·Σ_c w_c·(lse − f_c)],  weight_i = s_i·w_{y}
 *   targets: ℓ_i = s_i·Σ_c w_c·t'_c·(lse − f_c), t' = (1−ε)·t + ε/K,          weight_i = s_i
 *   ignored rows (y_i = ignoreIndex): ℓ_i = 0, weight_i = 0.
 * 'mean' divides the sums by Σ weight_i (0 when it is 0), 'sum' and 'none' do not. Then
 * reg·ΣW² ('full', gradient 2·reg·W) or ½·reg·ΣW² ('half', gradient reg·W) is added.
 */
export function lossAndGradients(
  X: Matrix,
  y: ArrayLike<number> | Matrix,
  W: Matrix,
  b: FloatArray | null,
  o: ReferenceLossOptions,
): ReferenceLossResult {
  const N = X.rows;
  const D = X.cols;
  const K = W.cols;
  const eps = o.labelSmoothing;
  const cw = (c: number) => (o.classWeights ? at(o.classWeights, c) : 1);
  const sw = (i: number) => (o.sampleWeights ? at(o.sampleWeights, i) : 1);
  const targets = 'data' in y ? (y as Matrix) : null;
  const labels = targets ? null : (y as ArrayLike<number>);

  const dW = new Array<number>(D * K).fill(0);
  const db = new Array<number>(K).fill(0);
  const losses = new Array<number>(N).fill(0);
  let lossSum = 0;
  let weightSum = 0;
  let firstNonFiniteRow = -1;

  for (let i = 0; i < N; i++) {
    const f = rowScores(X, W, b, i);
    if (firstNonFiniteRow < 0 && !f.every(Number.isFinite)) firstNonFiniteRow = i;
    const lse = logSumExp(f);
    const p = f.map((v) => Math.exp(v - lse));
    const s = sw(i);
    // dℓ_i/df_c, for this row's formula
    const g = new Array<number>(K).fill(0);
    let li = 0;
    if (labels) {
      const yi = at(labels, i);
      if (o.ignoreIndex !== null && yi === o.ignoreIndex) continue;
      const wy = cw(yi);
      let smooth = 0;
      let cwSum = 0;
      for (let c = 0; c < K; c++) {
        if (cw(c) !== 0) smooth += cw(c) * (lse - at(f, c));
        cwSum += cw(c);
      }
      li = s * ((1 - eps) * wy * (lse - at(f, yi)) + (eps / K) * (eps === 0 ? 0 : smooth));
      for (let c = 0; c < K; c++) {
        const hard = (1 - eps) * wy * (at(p, c) - (c === yi ? 1 : 0));
        const soft = (eps / K) * (at(p, c) * cwSum - cw(c));
        g[c] = s * (hard + soft);
      }
      weightSum += s * wy;
    } else {
      const t = targets as Matrix;
      let tw = 0;
      for (let c = 0; c < K; c++) {
        const tc = (1 - eps) * at(t.data, i * K + c) + eps / K;
        if (cw(c) * tc !== 0) li += cw(c) * tc * (lse - at(f, c));
        tw += cw(c) * tc;
      }
      li *= s;
      for (let c = 0; c < K; c++) {
        const tc = (1 - eps) * at(t.data, i * K + c) + eps / K;
        g[c] = s * (at(p, c) * tw - cw(c) * tc);
      }
      weightSum += s;
    }
    if (firstNonFiniteRow < 0 && (!Number.isFinite(li) || !f.every(Number.isFinite))) firstNonFiniteRow = i;
    losses[i] = li;
    lossSum += li;
    for (let c = 0; c < K; c++) {
      db[c] = at(db, c) + at(g, c);
      for (let d = 0; d < D; d++) dW[d * K + c] = at(dW, d * K + c) + at(X.data, i * D + d) * at(g, c);
    }
  }

  const mean = o.reduction === 'mean';
  const divisor = mean && weightSum > 0 ? weightSum : 1;
  const scale = mean && !(weightSum > 0) ? 0 : 1;
  let sq = 0;
  for (let j = 0; j < D * K; j++) sq += at(W.data, j) ** 2;
  const regTerm = o.regConvention === 'full' ? o.reg * sq : 0.5 * o.reg * sq;
  const regGrad = o.regConvention === 'full' ? 2 * o.reg : o.reg;

  const dWout = like(X.data, D * K);
  for (let j = 0; j < D * K; j++) dWout[j] = (at(dW, j) * scale) / divisor + regGrad * at(W.data, j);
  let dbOut: FloatArray | null = null;
  if (b) {
    dbOut = like(X.data, K);
    for (let c = 0; c < K; c++) dbOut[c] = (at(db, c) * scale) / divisor;
  }
  const result: ReferenceLossResult = {
    loss: (lossSum * scale) / divisor + regTerm,
    dW: { data: dWout, rows: D, cols: K },
    db: dbOut,
    lossSum,
    weightSum,
    firstNonFiniteRow,
  };
  if (o.reduction === 'none') {
    const l = like(X.data, N);
    for (let i = 0; i < N; i++) l[i] = at(losses, i);
    result.losses = l;
  }
  return result;
}
