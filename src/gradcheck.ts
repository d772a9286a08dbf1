// CS231n's grad_check_sparse: compare an analytic gradient with centered differences at a few
// sampled coordinates, in float64.
import { rangeError, typeError } from './errors.js';
import { Rng } from './classifier.js';
import type { Matrix } from './types.js';
import { checkOptionsObject } from './validate.js';

export interface GradCheckOptions {
  /** How many coordinates to sample (with replacement, as CS231n does); default 10. */
  checks?: number;
  /** The step of the centered difference; default 1e-5. */
  h?: number;
  /** Seeds the choice of coordinates; default 0 (the same coordinates every run). */
  seed?: number;
}

export interface GradCheckEntry {
  /** The flat index into x. */
  index: number;
  numeric: number;
  analytic: number;
  /** |numeric − analytic| / (|numeric| + |analytic|), 0 when both are 0. */
  relativeError: number;
}

export interface GradCheckResult {
  errors: GradCheckEntry[];
  /** The largest relative error (NaN if any was NaN, e.g. a non-finite f). */
  maxRelativeError: number;
}

/**
 * Checks `analytic` (∂f/∂x) against (f(x + h·e_i) − f(x − h·e_i)) / 2h at `checks` sampled indices i.
 * `f` is called with `x` itself, changed in place at one index and restored bit for bit afterwards
 * (also when f throws). x must be float64 (a Float64Array, or a Matrix over one): float32 cannot
 * hold x ± h for a small h.
 */
export function gradCheck(
  f: (x: Float64Array) => number,
  x: Float64Array | Matrix<Float64Array>,
  analytic: ArrayLike<number> | Matrix,
  options?: GradCheckOptions,
): GradCheckResult {
  if (typeof f !== 'function') throw typeError('ERR_TYPE', 'f', 'a function of x returning a number', f);
  const data = flat('x', x);
  if (!(data instanceof Float64Array)) throw typeError('ERR_DTYPE', 'x', 'a Float64Array (or a Matrix over one): the check runs in float64', data);
  const grad = flat('analytic', analytic);
  if (grad.length !== data.length) throw rangeError('ERR_SHAPE', 'analytic.length', `${data.length} (one derivative per element of x)`, String(grad.length));
  const o = checkOptionsObject('options', options, ['checks', 'h', 'seed']);
  const checks = o.checks === undefined ? 10 : o.checks;
  if (typeof checks !== 'number' || !Number.isSafeInteger(checks) || checks < 1) {
    throw (typeof checks === 'number' ? rangeError('ERR_OPTION', 'options.checks', 'a positive integer', String(checks)) : typeError('ERR_OPTION', 'options.checks', 'a positive integer', checks));
  }
  const h = o.h === undefined ? 1e-5 : o.h;
  if (typeof h !== 'number' || !Number.isFinite(h) || h <= 0) {
    throw (typeof h === 'number' ? rangeError('ERR_OPTION', 'options.h', 'a finite number > 0', String(h)) : typeError('ERR_OPTION', 'options.h', 'a finite number > 0', h));
  }
  const seed = o.seed === undefined ? 0 : o.seed;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw (typeof seed === 'number' ? rangeError('ERR_OPTION', 'options.seed', 'a safe integer >= 0', String(seed)) : typeError('ERR_OPTION', 'options.seed', 'a safe integer >= 0', seed));
  }
  if (data.length === 0) throw rangeError('ERR_SHAPE', 'x.length', 'at least one element', '0');

  const rng = new Rng(seed);
  const errors: GradCheckEntry[] = [];
  let maxRelativeError = 0;
  for (let c = 0; c < checks; c++) {
    const index = rng.int(data.length);
    const old = data[index]!;
    let fPlus: number;
    let fMinus: number;
    try {
      data[index] = old + h;
      fPlus = Number(f(data));
      data[index] = old - h;
      fMinus = Number(f(data));
    } finally {
      data[index] = old;
    }
    const numeric = (fPlus - fMinus) / (2 * h);
    const a = Number(grad[index]);
    const denominator = Math.abs(numeric) + Math.abs(a);
    const relativeError = denominator === 0 ? 0 : Math.abs(numeric - a) / denominator;
    errors.push({ index, numeric, analytic: a, relativeError });
    if (Number.isNaN(relativeError) || Number.isNaN(maxRelativeError)) maxRelativeError = NaN;
    else if (relativeError > maxRelativeError) maxRelativeError = relativeError;
  }
  return { errors, maxRelativeError };
}

function flat(name: string, value: unknown): ArrayLike<number> {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return value as unknown as ArrayLike<number>;
  if (Array.isArray(value)) return value as number[];
  if (typeof value === 'object' && value !== null && 'data' in value) {
    const d = (value as { data: unknown }).data;
    if (ArrayBuffer.isView(d) && !(d instanceof DataView)) return d as unknown as ArrayLike<number>;
  }
  throw typeError('ERR_TYPE', name, 'a typed array, a number[] or a Matrix { data, rows, cols }', value);
}
