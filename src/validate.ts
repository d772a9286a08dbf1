// Validation of every public argument, before any native code runs. Cheap by design: O(N + K) at most
// (labels, weights), never a pass over X; non-finite values in X, W or b are found inside the native
// loss pass instead.
import { rangeError, typeError } from './errors.js';
import type { Dtype, FloatArray, Labels, Matrix } from './types.js';

export const MAX_THREADS = 256;

export function isFloatArray(value: unknown): value is FloatArray {
  return value instanceof Float32Array || value instanceof Float64Array;
}

export function dtypeOf(array: FloatArray): Dtype {
  return array instanceof Float32Array ? 'float32' : 'float64';
}

function isDetached(view: ArrayBufferView): boolean {
  const buffer = view.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  return view.byteLength === 0 && view.byteOffset === 0 && buffer.byteLength === 0;
}

function checkAttached(name: string, view: ArrayBufferView): void {
  if (isDetached(view)) {
    throw rangeError('ERR_SHAPE', name, 'a typed array over a live buffer', 'a typed array whose ArrayBuffer is detached');
  }
  // A resizable ArrayBuffer could shrink under a running async call; a growable SharedArrayBuffer
  // only grows, which is safe.
  const buffer = view.buffer as ArrayBuffer & { resizable?: boolean };
  if (buffer instanceof ArrayBuffer && buffer.resizable === true) {
    throw rangeError('ERR_SHAPE', name, 'a typed array over a fixed-length ArrayBuffer or a SharedArrayBuffer', 'one over a resizable ArrayBuffer');
  }
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number') throw typeError('ERR_SHAPE', name, 'a positive safe integer', value);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw rangeError('ERR_SHAPE', name, 'a positive safe integer', String(value));
  }
  return value;
}

/** A matrix argument: an object { data, rows, cols } with a float typed array of rows × cols values. */
export function checkMatrix(name: string, value: unknown, dtype?: Dtype): Matrix {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError('ERR_TYPE', name, 'a Matrix { data, rows, cols } (use matrix(data, rows, cols))', value);
  }
  // Each field is read once: what is checked is exactly what the native side is handed, even if
  // the object has getters that answer differently the second time.
  const m = value as Partial<Matrix>;
  const rowsValue = m.rows;
  const colsValue = m.cols;
  const data = m.data;
  const rows = checkPositiveInteger(`${name}.rows`, rowsValue);
  const cols = checkPositiveInteger(`${name}.cols`, colsValue);
  if (!isFloatArray(data)) {
    throw typeError('ERR_DTYPE', `${name}.data`, 'a Float32Array or Float64Array', data);
  }
  checkAttached(`${name}.data`, data);
  if (dtype !== undefined && dtypeOf(data) !== dtype) {
    throw typeError('ERR_DTYPE', `${name}.data`, `a ${dtype === 'float32' ? 'Float32Array' : 'Float64Array'} (one dtype for every array of a call)`, data);
  }
  if (data.length !== rows * cols) {
    throw rangeError('ERR_SHAPE', name, `${name}.data.length = rows × cols = ${rows * cols}`, `${data.length} (${data.constructor.name})`);
  }
  return { data, rows, cols };
}

export function checkRows(name: string, m: Matrix, rows: number, what: string): void {
  if (m.rows !== rows) throw rangeError('ERR_SHAPE', `${name}.rows`, `${rows} (${what})`, String(m.rows));
}

export function checkCols(name: string, m: Matrix, cols: number, what: string): void {
  if (m.cols !== cols) throw rangeError('ERR_SHAPE', `${name}.cols`, `${cols} (${what})`, String(m.cols));
}

/** A float vector of `length` values in `dtype`. */
export function checkVector(name: string, value: unknown, length: number, dtype: Dtype, what: string): FloatArray {
  if (!isFloatArray(value)) {
    throw typeError('ERR_DTYPE', name, `a ${dtype === 'float32' ? 'Float32Array' : 'Float64Array'}`, value);
  }
  checkAttached(name, value);
  if (dtypeOf(value) !== dtype) {
    throw typeError('ERR_DTYPE', name, `a ${dtype === 'float32' ? 'Float32Array' : 'Float64Array'} (one dtype for every array of a call)`, value);
  }
  if (value.length !== length) {
    throw rangeError('ERR_SHAPE', `${name}.length`, `${length} (${what})`, `${value.length} (${value.constructor.name})`);
  }
  return value;
}

/**
 * Labels for N rows and K classes, as an Int32Array the native side can read directly (the user's
 * own array when it already is one, else a copy). Every label is an integer in [0, K), or equals
 * ignoreIndex when one is given.
 */
export function checkLabels(name: string, value: unknown, N: number, K: number, ignoreIndex?: number): Int32Array {
  const ok =
    value instanceof Int32Array ||
    value instanceof Uint32Array ||
    value instanceof Uint16Array ||
    value instanceof Uint8Array ||
    Array.isArray(value);
  if (!ok) {
    throw typeError('ERR_LABEL', name, 'labels as an Int32Array, Uint32Array, Uint16Array, Uint8Array or number[] (or a Matrix of probability targets)', value);
  }
  const labels = value as Labels;
  if (ArrayBuffer.isView(labels)) checkAttached(name, labels);
  if (labels.length !== N) {
    throw rangeError('ERR_SHAPE', `${name}.length`, `${N} (one label per row of X)`, String(labels.length));
  }
  for (let i = 0; i < N; i++) {
    const y = labels[i];
    if (typeof y === 'number' && Number.isInteger(y) && ((y >= 0 && y < K) || y === ignoreIndex)) continue;
    const range = ignoreIndex === undefined ? `[0, ${K})` : `[0, ${K}) or ignoreIndex ${ignoreIndex}`;
    throw rangeError('ERR_LABEL', `${name}[${i}]`, `an integer class index in ${range} (K = ${K} classes)`, typeof y === 'number' ? String(y) : `a ${typeof y}`);
  }
  return labels instanceof Int32Array ? labels : Int32Array.from(labels);
}

export function checkThreads(name: string, value: unknown): number {
  if (typeof value !== 'number') throw typeError('ERR_OPTION', name, `an integer from 1 to ${MAX_THREADS}`, value);
  if (!Number.isInteger(value) || value < 1 || value > MAX_THREADS) {
    throw rangeError('ERR_OPTION', name, `an integer from 1 to ${MAX_THREADS}`, String(value));
  }
  return value;
}

export function checkOptionsObject(name: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw typeError('ERR_OPTION', name, 'an options object', value);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw rangeError('ERR_OPTION', `${name}.${key}`, `one of the options ${known.join(', ')}`, `the unknown option ${JSON.stringify(key)}`);
    }
  }
  return value as Record<string, unknown>;
}

export function checkNonNegativeFinite(name: string, value: unknown): number {
  if (typeof value !== 'number') throw typeError('ERR_OPTION', name, 'a finite number >= 0', value);
  if (!Number.isFinite(value) || value < 0) throw rangeError('ERR_OPTION', name, 'a finite number >= 0', String(value));
  return value;
}

/** Non-negative finite weights: `length` of them, returned as a Float64Array for the native side. */
export function checkWeights(name: string, value: unknown, length: number, what: string): Float64Array {
  const ok = isFloatArray(value) || Array.isArray(value);
  if (!ok) throw typeError('ERR_OPTION', name, `${length} weights as a Float32Array, Float64Array or number[]`, value);
  const w = value as ArrayLike<number>;
  if (ArrayBuffer.isView(w)) checkAttached(name, w as unknown as ArrayBufferView);
  if (w.length !== length) throw rangeError('ERR_OPTION', `${name}.length`, `${length} (${what})`, String(w.length));
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const v = w[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw rangeError('ERR_OPTION', `${name}[${i}]`, 'a finite weight >= 0', typeof v === 'number' ? String(v) : `a ${typeof v}`);
    }
    out[i] = v;
  }
  return out;
}

/** The validated arguments of labeledGram(X, y, options): rows [rowStart, rowEnd) of Q, N×N. */
export interface GramArgs {
  dtype: Dtype;
  X: Matrix;
  y: FloatArray;
  N: number;
  D: number;
  rowStart: number;
  rowEnd: number;
  /** The validated threads option, or undefined for the default. */
  threads: number | undefined;
  /** The caller's buffer for the result (options.out), or undefined to allocate one. */
  out: FloatArray | undefined;
}

export const GRAM_OPTION_KEYS = ['rows', 'threads', 'out'] as const;

/**
 * Whether two views share any byte of memory. `aBuffer`: a's buffer, for a caller that checks a
 * against many views (a typed array's getters cost tens of ns each in a µs-long call).
 */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView, aBuffer: ArrayBufferLike = a.buffer): boolean {
  return aBuffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** The most elements one result may hold (the Node-API typed-array limit this package keeps). */
export const MAX_RESULT_ELEMENTS = 2 ** 31 - 1;

/**
 * X (N×D), y (N finite reals in X's dtype) and options { rows?: [start, end], threads? } of
 * labeledGram; a result of more than MAX_RESULT_ELEMENTS elements or `maxBytes` bytes is refused
 * with a suggestion of `rows`.
 */
export function checkGramArgs(X: unknown, y: unknown, options: unknown, maxBytes: number): GramArgs {
  const Xm = checkMatrix('X', X);
  const dtype = dtypeOf(Xm.data);
  const N = Xm.rows;
  const yv = checkVector('y', y, N, dtype, 'one real per row of X');
  for (let i = 0; i < N; i++) {
    const v = yv[i]!;
    if (!Number.isFinite(v)) throw rangeError('ERR_NON_FINITE', `y[${i}]`, 'a finite real (usually ±1)', String(v));
  }
  const o = checkOptionsObject('options', options, GRAM_OPTION_KEYS);
  let rowStart = 0;
  let rowEnd = N;
  if (o.rows !== undefined) {
    const r = o.rows;
    const expected = `a row range [start, end] of Q: integers with 0 ≤ start < end ≤ N = ${N}`;
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'number' || typeof r[1] !== 'number') {
      throw typeError('ERR_OPTION', 'options.rows', expected, r);
    }
    const [start, end] = r as [number, number];
    if (!Number.isInteger(start) || !Number.isInteger(end) || !(start >= 0 && start < end && end <= N)) {
      throw rangeError('ERR_OPTION', 'options.rows', expected, `[${start}, ${end}]`);
    }
    rowStart = start;
    rowEnd = end;
  }
  const threads = o.threads === undefined ? undefined : checkThreads('options.threads', o.threads);
  const bytesPer = dtype === 'float32' ? 4 : 8;
  const elements = (rowEnd - rowStart) * N;
  if (elements > MAX_RESULT_ELEMENTS || elements * bytesPer > maxBytes) {
    const maxRows = Math.max(1, Math.floor(Math.min(MAX_RESULT_ELEMENTS, maxBytes / bytesPer) / N));
    throw rangeError(
      'ERR_TOO_LARGE',
      `the result of labeledGram (rows [${rowStart}, ${rowEnd}) of the ${N}×${N} Q, ${dtype})`,
      `at most ${MAX_RESULT_ELEMENTS} elements and ${maxBytes} bytes (what this process could allocate for one array); ` +
        `compute Q in row blocks with options.rows = [start, end], at most ${maxRows} rows per call`,
      `${elements} elements (${elements * bytesPer} bytes)`,
    );
  }
  let out: FloatArray | undefined;
  if (o.out !== undefined) {
    out = checkVector('options.out', o.out, elements, dtype, `the (end − start) × N = ${rowEnd - rowStart} × ${N} entries of the result`);
    // Q is written while X and y are read: a buffer over either would corrupt the result as it is made.
    for (const [name, input] of [['X.data', Xm.data], ['y', yv]] as const) {
      if (overlaps(out, input)) {
        throw rangeError('ERR_OPTION', 'options.out', `a buffer that shares no memory with X or y`, `a view overlapping ${name}`);
      }
    }
  }
  return { dtype, X: Xm, y: yv, N, D: Xm.cols, rowStart, rowEnd, threads, out };
}
