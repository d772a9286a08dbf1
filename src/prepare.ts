// Validation and shaping shared by the native path and the pure-TypeScript reference. Nothing here
// touches the addon, so the reference (and the fallback mode) can use it without loading it.
import { rangeError, typeError } from './errors.js';
import type { Dtype, FloatArray, Matrix, Reduction, RegConvention } from './types.js';
import {
  checkCols,
  checkLabels,
  checkMatrix,
  checkNonNegativeFinite,
  checkOptionsObject,
  checkRows,
  checkThreads,
  checkVector,
  overlaps,
  checkWeights,
  dtypeOf,
} from './validate.js';

export const LOSS_OPTION_KEYS = [
  'reg',
  'regConvention',
  'threads',
  'classWeights',
  'sampleWeights',
  'ignoreIndex',
  'labelSmoothing',
  'reduction',
  'bias',
] as const;

/** lossAndGradients and lossAndGradientsAsync take these and `out` (the gradients' arrays). */
export const LOSS_CALL_OPTION_KEYS = [...LOSS_OPTION_KEYS, 'out'] as const;

/** The caller's arrays the gradients are written into (options.out), checked. */
export interface GradientOut {
  dW: FloatArray;
  db: FloatArray | null;
}

/** A live typed array of the dtype and length, or checkVector's error (its messages built only then). */
function checkOutArray(name: string, value: unknown, length: number, dtype: Dtype, what: () => string): FloatArray {
  // A detached array has length 0 and every length checked here is at least 1; a view over a
  // resizable ArrayBuffer is refused as for every input (checkVector says so).
  const ok =
    (dtype === 'float32' ? value instanceof Float32Array : value instanceof Float64Array) &&
    (value as FloatArray).length === length &&
    (value as FloatArray & { buffer: { resizable?: boolean } }).buffer.resizable !== true;
  return ok ? (value as FloatArray) : checkVector(name, value, length, dtype, what());
}

/**
 * options.out: { dW: D·K entries, db: K entries (only when the model has a bias) } in the call's
 * dtype. They are written, so they may not share memory with each other or with any input (a
 * gradient written over W, X or the labels would change what is still to be read, and what the
 * caller still holds). Cheap when all is well: a small call is a few microseconds.
 */
function checkOut(value: unknown, dtype: Dtype, D: number, K: number, hasBias: boolean, inputs: Record<string, unknown>): GradientOut {
  const name = 'options.out';
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError('ERR_OPTION', name, 'an object { dW, db } of the arrays to write the gradients into', value);
  }
  const o = checkOptionsObject(name, value, OUT_KEYS);
  const dW = checkOutArray(`${name}.dW`, o.dW, D * K, dtype, () => `D×K = ${D}×${K} gradient entries, row-major as W`);
  let db: FloatArray | null = null;
  if (hasBias) {
    if (o.db === undefined || o.db === null) {
      throw typeError('ERR_OPTION', `${name}.db`, `a ${dtype === 'float32' ? 'Float32Array' : 'Float64Array'} of K = ${K} entries, since the model has a bias b`, o.db);
    }
    db = checkOutArray(`${name}.db`, o.db, K, dtype, () => 'one entry per class, K = W.cols');
  } else if (o.db !== undefined && o.db !== null) {
    throw rangeError('ERR_OPTION', `${name}.db`, 'no db: the model has no bias (b is null)', 'an array');
  }
  const shared = (outName: string, other: string) =>
    rangeError('ERR_OPTION', outName, 'an array of its own (gradients are written into it)', `an array that shares memory with ${other}`);
  const dWBuffer = dW.buffer;
  const dbBuffer = db ? db.buffer : null;
  if (db && overlaps(dW, db, dWBuffer)) throw shared(`${name}.db`, `${name}.dW`);
  for (const inName in inputs) {
    const input = inputs[inName];
    if (!ArrayBuffer.isView(input)) continue;
    if (overlaps(dW, input, dWBuffer)) throw shared(`${name}.dW`, inName);
    if (db && overlaps(db, input, dbBuffer!)) throw shared(`${name}.db`, inName);
  }
  return { dW, db };
}
const OUT_KEYS = ['dW', 'db'] as const;

export function allocate(dtype: Dtype, length: number): FloatArray {
  return dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
}

export interface Model {
  dtype: Dtype;
  D: number;
  K: number;
  W: Matrix;
  b: FloatArray | null;
}

/** X (N×D), W (D×K) and b (K, or null for no bias), all of one dtype. */
export function checkModel(X: unknown, W: unknown, b: unknown, xName = 'X'): Model & { X: Matrix } {
  const Xm = checkMatrix(xName, X);
  const dtype = dtypeOf(Xm.data);
  const Wm = checkMatrix('W', W, dtype);
  checkRows('W', Wm, Xm.cols, `W is D×K and ${xName} has D = ${Xm.cols} columns`);
  const K = Wm.cols;
  if (K > 2147483647) throw rangeError('ERR_SHAPE', 'W.cols', 'at most 2³¹ − 1 classes (class indices are int32)', String(K));
  const bias = b === null || b === undefined ? null : checkVector('b', b, K, dtype, 'one bias per class, K = W.cols');
  return { dtype, X: Xm, D: Xm.cols, K, W: Wm, b: bias };
}

/** Loss options after validation, in the form the native pass and the reference both take. */
export interface NormalizedLossOptions {
  reg: number;
  regConvention: RegConvention;
  classWeights: Float64Array | null;
  sampleWeights: Float64Array | null;
  ignoreIndex: number | null;
  labelSmoothing: number;
  reduction: Reduction;
  /** Validated threads option, or undefined for the default. */
  threads: number | undefined;
}

export function checkIgnoreIndex(name: string, v: unknown): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number') throw typeError('ERR_OPTION', name, 'an integer label value', v);
  if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw rangeError('ERR_OPTION', name, 'an integer in the int32 range', String(v));
  }
  return v;
}

export function checkLabelSmoothing(name: string, v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number') throw typeError('ERR_OPTION', name, 'a number in [0, 1]', v);
  if (!(v >= 0 && v <= 1)) throw rangeError('ERR_OPTION', name, 'a number in [0, 1]', String(v));
  return v;
}

export function checkRegConvention(name: string, value: unknown): RegConvention {
  if (value === undefined) return 'full';
  if (value !== 'full' && value !== 'half') {
    throw rangeError('ERR_OPTION', name, "'full' (reg·ΣW²) or 'half' (½·reg·ΣW²)", JSON.stringify(value));
  }
  return value;
}

export function normalizeLossOptions(
  options: unknown,
  N: number,
  K: number,
  name = 'options',
  keys: readonly string[] = LOSS_OPTION_KEYS,
): NormalizedLossOptions {
  const o = checkOptionsObject(name, options, keys);
  const regConvention = checkRegConvention(`${name}.regConvention`, o.regConvention);
  const reduction = o.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw rangeError('ERR_OPTION', `${name}.reduction`, "'mean', 'sum' or 'none'", JSON.stringify(reduction));
  }
  const ignoreIndex = checkIgnoreIndex(`${name}.ignoreIndex`, o.ignoreIndex);
  const labelSmoothing = checkLabelSmoothing(`${name}.labelSmoothing`, o.labelSmoothing);
  return {
    reg: o.reg === undefined ? 0 : checkNonNegativeFinite(`${name}.reg`, o.reg),
    regConvention,
    classWeights: o.classWeights === undefined ? null : checkWeights(`${name}.classWeights`, o.classWeights, K, 'one weight per class'),
    sampleWeights: o.sampleWeights === undefined ? null : checkWeights(`${name}.sampleWeights`, o.sampleWeights, N, 'one weight per row of X'),
    ignoreIndex,
    labelSmoothing,
    reduction,
    threads: o.threads === undefined ? undefined : checkThreads(`${name}.threads`, o.threads),
  };
}

/** Labels (checked, as Int32Array) or probability targets (an N×K matrix in X's dtype). */
export function checkTargets(y: unknown, N: number, K: number, dtype: Dtype, ignoreIndex: number | null): Int32Array | Matrix {
  if (typeof y === 'object' && y !== null && !Array.isArray(y) && !ArrayBuffer.isView(y) && 'data' in y) {
    if (ignoreIndex !== null) {
      throw rangeError('ERR_OPTION', 'options.ignoreIndex', 'no ignoreIndex with probability targets (PyTorch rejects this combination too)', String(ignoreIndex));
    }
    const T = checkMatrix('y (probability targets)', y, dtype);
    checkRows('y (probability targets)', T, N, 'one target row per row of X');
    checkCols('y (probability targets)', T, K, 'one probability per class, K = W.cols');
    return T;
  }
  return checkLabels('y', y, N, K, ignoreIndex ?? undefined);
}

/** What binding/addon.cpp reads for the fused pass: one fixed shape, filled in place. */
export interface NativeLossArgs {
  X: FloatArray;
  N: number;
  D: number;
  K: number;
  W: FloatArray;
  b: FloatArray | null;
  labels: Int32Array | null;
  targets: FloatArray | null;
  classWeights: Float64Array | null;
  sampleWeights: Float64Array | null;
  ignoreIndex: number | null;
  labelSmoothing: number;
  threads: number;
  sums: Float64Array | null;
  rowLosses: FloatArray | null;
}

export interface PreparedLoss {
  dtype: Dtype;
  N: number;
  D: number;
  K: number;
  X: Matrix;
  W: Matrix;
  b: FloatArray | null;
  y: Int32Array | Matrix;
  options: NormalizedLossOptions;
  /** The object the binding reads; the caller sets threads, sums and rowLosses before the call. */
  args: NativeLossArgs;
  /** options.out, when given (lossAndGradients and lossAndGradientsAsync only). */
  out: GradientOut | null;
}

/**
 * `bias: false` names the CS231n "bias trick" mode (X carries a column of ones, so the model has no
 * separate b): b must then be null. `bias: true` asks for b. Without the option, b decides.
 */
function checkBiasOption(options: unknown, b: unknown): void {
  if (typeof options !== 'object' || options === null || !('bias' in options)) return;
  const bias = (options as { bias?: unknown }).bias;
  if (bias === undefined) return;
  if (typeof bias !== 'boolean') throw typeError('ERR_OPTION', 'options.bias', 'true or false', bias);
  const hasB = b !== null && b !== undefined;
  if (bias !== hasB) {
    throw rangeError(
      'ERR_OPTION',
      'b',
      bias ? 'a bias vector b, since options.bias is true' : 'b = null, since options.bias is false (X carries the column of ones)',
      hasB ? 'a bias vector' : String(b),
    );
  }
}

/** `allowOut`: options.out is accepted (the functions that return gradients to the caller). */
export function prepareLoss(X: unknown, y: unknown, W: unknown, b: unknown, options: unknown, allowOut = false): PreparedLoss {
  checkBiasOption(options, b);
  const model = checkModel(X, W, b);
  const N = model.X.rows;
  const o = normalizeLossOptions(options, N, model.K, 'options', allowOut ? LOSS_CALL_OPTION_KEYS : LOSS_OPTION_KEYS);
  const targets = checkTargets(y, N, model.K, model.dtype, o.ignoreIndex);
  const given = options as { out?: unknown; classWeights?: unknown; sampleWeights?: unknown } | undefined;
  const out =
    allowOut && given?.out !== undefined
      ? checkOut(given.out, model.dtype, model.D, model.K, model.b !== null, {
          X: model.X.data,
          W: model.W.data,
          b: model.b,
          y: targets instanceof Int32Array ? y : targets.data,
          'options.classWeights': given.classWeights,
          'options.sampleWeights': given.sampleWeights,
        })
      : null;
  const args: NativeLossArgs = {
    X: model.X.data,
    N,
    D: model.D,
    K: model.K,
    W: model.W.data,
    b: model.b,
    labels: targets instanceof Int32Array ? targets : null,
    targets: targets instanceof Int32Array ? null : targets.data,
    classWeights: o.classWeights,
    sampleWeights: o.sampleWeights,
    ignoreIndex: o.ignoreIndex,
    labelSmoothing: o.labelSmoothing,
    threads: o.threads ?? 1,
    sums: null,
    rowLosses: null,
  };
  // A literal of fixed shape, not a spread of model: V8 builds spread copies through a slow path.
  return { dtype: model.dtype, N, D: model.D, K: model.K, X: model.X, W: model.W, b: model.b, y: targets, options: o, args, out };
}

export function sumsLength(D: number, K: number): number {
  return 2 + D * K + K;
}

/**
 * Σ W[i]² in a fixed order: four partial sums s[i mod 4] over the whole groups of four, the rest
 * added to s[0] in order, then (s[0] + s[1]) + (s[2] + s[3]). The addon's sumOfSquares
 * (native/finalize.cpp) adds in this order too, so either gives the same bits; four chains also
 * run about twice as fast here as one (cifar's 30,720 weights: 22–39 µs against 57–66).
 */
export function sumOfSquares(W: FloatArray): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = W.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a = W[i]!;
    const b = W[i + 1]!;
    const c = W[i + 2]!;
    const d = W[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (; i < n; i++) s0 += W[i]! * W[i]!;
  return s0 + s1 + (s2 + s3);
}

/** The arguments of the addon's finalizeGradients: dW from the pass's sums, as finalizeSums' loop. */
export interface NativeFinalizeArgs {
  sums: Float64Array;
  W: FloatArray;
  dW: FloatArray;
  scale: number;
  divisor: number;
  gradCoef: number;
}

/** The addon's stand-ins for the loops of finalizeSums (src/loader.ts NativeAddon), when it has them. */
export interface FinalizeAddon {
  finalizeGradients?: ((args: NativeFinalizeArgs) => void) | undefined;
  sumOfSquares?: ((W: FloatArray) => number) | undefined;
}

/**
 * From this many elements of W on, finalizeSums hands its loops to the addon (in JavaScript dW's
 * loop costs 1.5–2.8 ns an element here, cifar's 30,720 in 45–85 µs, and Σ W² 0.7–1.3 ns; a
 * native call costs well under a microsecond).
 */
const NATIVE_LOOPS_MIN = 1024;

/** The regularisation term and its gradient coefficient for each convention. */
export function regularization(W: FloatArray, reg: number, convention: RegConvention, addon: FinalizeAddon | null = null): { term: number; gradCoef: number } {
  if (reg === 0) return { term: 0, gradCoef: 0 };
  const sq = addon?.sumOfSquares && W.length >= NATIVE_LOOPS_MIN ? addon.sumOfSquares(W) : sumOfSquares(W);
  return convention === 'full' ? { term: reg * sq, gradCoef: 2 * reg } : { term: 0.5 * reg * sq, gradCoef: reg };
}

/**
 * The loss and gradients from the pass's float64 sums: the data term divided by its weight for
 * 'mean' (a total weight of 0 — every row ignored — gives a data term of 0 and zero gradients),
 * plus the regularisation of W (never of b). The addon's loops (from NATIVE_LOOPS_MIN elements on)
 * compute operation for operation as the loops here do, so the bits do not depend on which ran.
 */
export function finalizeSums(
  sums: Float64Array,
  dtype: Dtype,
  D: number,
  K: number,
  W: FloatArray,
  hasBias: boolean,
  reduction: Reduction,
  reg: number,
  regConvention: RegConvention,
  out: GradientOut | null = null,
  addon: FinalizeAddon | null = null,
): { loss: number; dW: Matrix; db: FloatArray | null } {
  const weight = sums[1]!;
  // Divide (never multiply by 1/weight): a tiny total weight must not turn into an infinite scale.
  const divisor = reduction === 'mean' && weight > 0 ? weight : 1;
  const scale = reduction === 'mean' && !(weight > 0) ? 0 : 1;
  const { term, gradCoef } = regularization(W, reg, regConvention, addon);
  // options.out saves the new arrays (a typed array over 64 bytes gets its own ArrayBuffer).
  const dW = out ? out.dW : allocate(dtype, D * K);
  if (addon?.finalizeGradients && D * K >= NATIVE_LOOPS_MIN) addon.finalizeGradients({ sums, W, dW, scale, divisor, gradCoef });
  else for (let i = 0; i < D * K; i++) dW[i] = (sums[2 + i]! * scale) / divisor + gradCoef * W[i]!;
  let db: FloatArray | null = null;
  if (hasBias) {
    db = out?.db ?? allocate(dtype, K);
    for (let k = 0; k < K; k++) db[k] = (sums[2 + D * K + k]! * scale) / divisor;
  }
  return { loss: (sums[0]! * scale) / divisor + term, dW: { data: dW, rows: D, cols: K }, db };
}


/** The tolerance a probability-target row's sum must meet: the dtype's rounding of K terms (as native/linear.cpp). */
export function targetTolerance(dtype: Dtype, K: number): number {
  return 8 * K * (dtype === 'float32' ? 2 ** -23 : 2 ** -52);
}

export function targetRowError(T: Matrix, row: number): RangeError {
  const values = Array.from(T.data.subarray(row * T.cols, (row + 1) * T.cols));
  const sum = values.reduce((a, v) => a + v, 0);
  return rangeError(
    'ERR_TARGET',
    `row ${row} of y (probability targets)`,
    'finite non-negative probabilities summing to 1 within the dtype rounding',
    `values summing to ${sum}${values.some((v) => !(v >= 0)) ? ' with a negative or NaN entry' : ''}`,
  );
}

/** The first target row that is not a probability distribution, or -1 (used by the reference). */
export function firstBadTargetRow(T: Matrix): number {
  const tol = targetTolerance(dtypeOf(T.data), T.cols);
  for (let i = 0; i < T.rows; i++) {
    let sum = 0;
    for (let k = 0; k < T.cols; k++) {
      const v = T.data[i * T.cols + k]!;
      if (!(v >= 0) || !Number.isFinite(v)) return i;
      sum += v;
    }
    if (!(Math.abs(sum - 1) <= tol)) return i;
  }
  return -1;
}
