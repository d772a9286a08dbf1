// The reference with the public signatures: the same validation as the native functions, then the
// plain float64 implementations of ./linear.ts. Imports nothing from the native side.
import { rangeError } from '../errors.js';
import { checkModel, firstBadTargetRow, prepareLoss, targetRowError } from '../prepare.js';
import type { FloatArray, LossCallOptions, LossResult, Matrix, Targets } from '../types.js';
import { checkMatrix, checkOptionsObject } from '../validate.js';
import * as raw from './linear.js';

const THREAD_ONLY = ['threads'] as const;

export function scores<T extends FloatArray>(X: Matrix<T>, W: Matrix<T>, b: T | null, options?: { threads?: number }): Matrix<T> {
  const m = checkModel(X, W, b);
  checkOptionsObject('options', options, THREAD_ONLY);
  return raw.scores(m.X, m.W, m.b) as Matrix<T>;
}

export function softmax<T extends FloatArray>(S: Matrix<T>, options?: { threads?: number }): Matrix<T> {
  const m = checkMatrix('S', S);
  checkOptionsObject('options', options, THREAD_ONLY);
  return raw.softmax(m) as Matrix<T>;
}

export function predict<T extends FloatArray>(X: Matrix<T>, W: Matrix<T>, b: T | null, options?: { threads?: number }): Int32Array {
  const m = checkModel(X, W, b);
  checkOptionsObject('options', options, THREAD_ONLY);
  return raw.predict(m.X, m.W, m.b);
}

export function lossAndGradients<T extends FloatArray>(
  X: Matrix<T>,
  y: Targets<T>,
  W: Matrix<T>,
  b: T | null,
  options?: LossCallOptions<T>,
): LossResult<T> {
  const p = prepareLoss(X, y, W, b, options, true);
  if (!(p.y instanceof Int32Array)) {
    const bad = firstBadTargetRow(p.y);
    if (bad >= 0) throw targetRowError(p.y, bad);
  }
  const r = raw.lossAndGradients(p.X, p.y, p.W, p.b, p.options);
  if (r.firstNonFiniteRow >= 0) {
    const row = r.firstNonFiniteRow;
    throw rangeError('ERR_NON_FINITE', `row ${row} of X`, `a finite loss (check row ${row} of X, and W and b, for NaN or ±Infinity)`, 'a loss that is not finite');
  }
  let dW = r.dW as Matrix<T>;
  let db = r.db as T | null;
  if (p.out) {
    p.out.dW.set(dW.data);
    dW = { data: p.out.dW as T, rows: dW.rows, cols: dW.cols };
    if (db && p.out.db) db = (p.out.db.set(db), p.out.db as T);
  }
  const result: LossResult<T> = { loss: r.loss, dW, db };
  if (r.losses) result.losses = r.losses as T;
  return result;
}

export async function lossAndGradientsAsync<T extends FloatArray>(
  X: Matrix<T>,
  y: Targets<T>,
  W: Matrix<T>,
  b: T | null,
  options?: LossCallOptions<T>,
): Promise<LossResult<T>> {
  return lossAndGradients(X, y, W, b, options);
}
export { labeledGram } from './gram.js';
