// The public operations of the softmax linear classifier: validate, hand zero-copy views to the
// addon, shape its raw float64 sums into the result.
import { native, threadsFor } from './backend.js';
import { codedError, rangeError, withCallerStack } from './errors.js';
import { decodeOutcome } from './loader.js';
import { allocate, checkModel, finalizeSums, prepareLoss, sumsLength, targetRowError, type GradientOut, type PreparedLoss } from './prepare.js';
import type { FloatArray, LossCallOptions, LossResult, Matrix, Targets } from './types.js';
import { checkMatrix, checkOptionsObject, dtypeOf } from './validate.js';

/** Wraps a typed array as a validated row-major matrix (no copy). */
export function matrix<T extends FloatArray>(data: T, rows: number, cols: number): Matrix<T> {
  return checkMatrix('matrix(data, rows, cols)', { data, rows, cols }) as Matrix<T>;
}

/** Status codes of native/linear.hpp LossStatus. */
const STATUS_NON_FINITE = 1;
const STATUS_BAD_LABEL = 2;
const STATUS_BAD_TARGET = 3;
const STATUS_NO_MEMORY = 4;

export function outcomeError(code: number, prepared: PreparedLoss, xName = 'X'): Error | null {
  if (code === 0) return null;
  const outcome = decodeOutcome(code);
  const row = outcome.row;
  switch (outcome.status) {
    case 0:
      return null;
    case STATUS_NON_FINITE:
      return rangeError(
        'ERR_NON_FINITE',
        `row ${row} of ${xName}`,
        `a finite loss (check row ${row} of ${xName}, and W and b, for NaN or ±Infinity)`,
        'a loss that is not finite',
      );
    case STATUS_BAD_LABEL:
      return rangeError('ERR_LABEL', `y[${row}]`, `a class index in [0, ${prepared.K})`, 'a label outside it');
    case STATUS_BAD_TARGET:
      return targetRowError(prepared.y as Matrix, row);
    case STATUS_NO_MEMORY:
      return codedError('ERR_NATIVE', 'softmax-simd: out of memory for the scratch buffers of this call');
    default:
      return codedError('ERR_NATIVE', `softmax-simd: unknown native status ${outcome.status}`);
  }
}

/**
 * The raw sums of sync calls: one call is over (its sums read into the result) before the next can
 * start, so they share one buffer, kept while small. A fresh Float64Array costs about 1 µs, a large
 * share of a small call; async calls, which overlap, each get their own.
 */
let syncSums = new Float64Array(0);
const SYNC_SUMS_MAX_LENGTH = 1 << 16;

function sumsBuffer(length: number, sync: boolean): Float64Array {
  if (!sync || length > SYNC_SUMS_MAX_LENGTH) return new Float64Array(length);
  if (syncSums.length < length) syncSums = new Float64Array(length);
  return syncSums;
}

function nativeArgs(p: PreparedLoss, sync: boolean): { args: PreparedLoss['args']; sums: Float64Array; rowLosses: FloatArray | null } {
  const sums = sumsBuffer(sumsLength(p.D, p.K), sync);
  const rowLosses = p.options.reduction === 'none' ? allocate(p.dtype, p.N) : null;
  const args = p.args;
  args.threads = threadsFor(p.options.threads);
  args.sums = sums;
  args.rowLosses = rowLosses;
  return { args, sums, rowLosses };
}

/** options.out of an async call could have been transferred (detached) while the pass ran. */
function checkOutAlive(out: GradientOut, D: number, K: number): void {
  for (const [name, array, length] of [['options.out.dW', out.dW, D * K], ['options.out.db', out.db, K]] as const) {
    if (array && array.length !== length) {
      throw rangeError('ERR_SHAPE', name, 'a typed array over a live buffer until the call returns', 'one whose ArrayBuffer was detached meanwhile');
    }
  }
}

function lossResult(p: PreparedLoss, sums: Float64Array, rowLosses: FloatArray | null): LossResult {
  const o = p.options;
  if (p.out) checkOutAlive(p.out, p.D, p.K);
  const r = finalizeSums(sums, p.dtype, p.D, p.K, p.W.data, p.b !== null, o.reduction, o.reg, o.regConvention, p.out, native());
  const result: LossResult = { loss: r.loss, dW: r.dW, db: r.db };
  if (rowLosses) result.losses = rowLosses;
  return result;
}

/**
 * Mean (by default) cross-entropy loss of the softmax classifier and its gradients, in one pass over X.
 * `y` is N labels in [0, K), or an N×K Matrix of probability targets. Pass b = null for a model
 * without bias (the CS231n "bias trick": X carries a column of ones); db is then null.
 */
export function lossAndGradients<T extends FloatArray>(
  X: Matrix<T>,
  y: Targets<T>,
  W: Matrix<T>,
  b: T | null,
  options?: LossCallOptions<T>,
): LossResult<T> {
  const p = prepareLoss(X, y, W, b, options, true);
  const { args, sums, rowLosses } = nativeArgs(p, true);
  const error = outcomeError(native().lossGrad(args), p);
  if (error) throw error;
  return lossResult(p, sums, rowLosses) as LossResult<T>;
}

/**
 * lossAndGradients off the event loop: the pass runs on the addon's threads and the Promise settles
 * on this thread (a call of at most 65,536 multiply-adds, N·D·K, without options.out runs at once
 * on this thread instead: shorter than the hand-off). The inputs stay referenced until it settles;
 * do not modify them meanwhile.
 */
export async function lossAndGradientsAsync<T extends FloatArray>(
  X: Matrix<T>,
  y: Targets<T>,
  W: Matrix<T>,
  b: T | null,
  options?: LossCallOptions<T>,
): Promise<LossResult<T>> {
  const caller = new Error();
  const p = prepareLoss(X, y, W, b, options, true);
  const { args, sums, rowLosses } = nativeArgs(p, false);
  // A small call may run at once (binding/addon.cpp kInlineAsyncWork) and so settle before calls
  // made earlier; one with options.out keeps the queue: calls in flight with the same out arrays
  // write them in the order they were made (README).
  const outcome = await native().lossGradAsync(args, !p.out);
  const error = outcomeError(outcome, p);
  if (error) throw withCallerStack(error, caller);
  return lossResult(p, sums, rowLosses) as LossResult<T>;
}

const THREAD_ONLY = ['threads'] as const;

function checkScoresArgs(X: unknown, W: unknown, b: unknown, options: unknown) {
  const model = checkModel(X, W, b);
  const o = checkOptionsObject('options', options, THREAD_ONLY);
  return { model, threads: threadsFor(o.threads) };
}

/** S = XW + b (N×K). b may be null (no bias). */
export function scores<T extends FloatArray>(X: Matrix<T>, W: Matrix<T>, b: T | null, options?: { threads?: number }): Matrix<T> {
  const { model, threads } = checkScoresArgs(X, W, b, options);
  const N = model.X.rows;
  const out = allocate(model.dtype, N * model.K);
  native().scores({ X: model.X.data, N, D: model.D, W: model.W.data, K: model.K, b: model.b, out, threads });
  return { data: out, rows: N, cols: model.K } as Matrix<T>;
}

/**
 * scores() off the event loop (a call of at most 65,536 multiply-adds, N·D·K, runs at once on this
 * thread instead: shorter than the hand-off). The inputs stay referenced until it settles; do not
 * modify them meanwhile.
 */
export async function scoresAsync<T extends FloatArray>(X: Matrix<T>, W: Matrix<T>, b: T | null, options?: { threads?: number }): Promise<Matrix<T>> {
  const caller = new Error();
  const { model, threads } = checkScoresArgs(X, W, b, options);
  const N = model.X.rows;
  const out = allocate(model.dtype, N * model.K);
  const ok = await native().scoresAsync({ X: model.X.data, N, D: model.D, W: model.W.data, K: model.K, b: model.b, out, threads });
  if (!ok) throw withCallerStack(codedError('ERR_NATIVE', 'softmax-simd: out of memory'), caller);
  return { data: out, rows: N, cols: model.K } as Matrix<T>;
}

/** Row-wise numerically stable softmax of S (N×K), into a new matrix. */
export function softmax<T extends FloatArray>(S: Matrix<T>, options?: { threads?: number }): Matrix<T> {
  const m = checkMatrix('S', S);
  const o = checkOptionsObject('options', options, THREAD_ONLY);
  const out = allocate(dtypeOf(m.data), m.data.length);
  native().softmax({ S: m.data, N: m.rows, K: m.cols, out, threads: threadsFor(o.threads) });
  return { data: out, rows: m.rows, cols: m.cols } as Matrix<T>;
}

/** The predicted class of every row: argmax of XW + b, ties to the lowest index. */
export function predict<T extends FloatArray>(X: Matrix<T>, W: Matrix<T>, b: T | null, options?: { threads?: number }): Int32Array {
  const { model, threads } = checkScoresArgs(X, W, b, options);
  const out = new Int32Array(model.X.rows);
  native().predict({ X: model.X.data, N: model.X.rows, D: model.D, W: model.W.data, K: model.K, b: model.b, out, threads });
  return out;
}

/**
 * predict() off the event loop (a call of at most 65,536 multiply-adds, N·D·K, runs at once on this
 * thread instead). The inputs stay referenced until it settles; do not modify them meanwhile.
 */
export async function predictAsync<T extends FloatArray>(X: Matrix<T>, W: Matrix<T>, b: T | null, options?: { threads?: number }): Promise<Int32Array> {
  const caller = new Error();
  const { model, threads } = checkScoresArgs(X, W, b, options);
  const out = new Int32Array(model.X.rows);
  const ok = await native().predictAsync({ X: model.X.data, N: model.X.rows, D: model.D, W: model.W.data, K: model.K, b: model.b, out, threads });
  if (!ok) throw withCallerStack(codedError('ERR_NATIVE', 'softmax-simd: out of memory'), caller);
  return out;
}

