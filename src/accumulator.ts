// Sums of the loss and its gradients over any number of chunks of rows, at one fixed W and b: for
// datasets larger than memory (stream the chunks) and for shards computed elsewhere (merge, or ship
// the state as bytes). The numerator and the denominator of the mean are kept apart, so the mean over
// many chunks is exact with weights and ignored rows, never a mean of means.
import { native, threadsFor } from './backend.js';
import { codedError, rangeError, typeError, withCallerStack } from './errors.js';
import { outcomeError } from './linear.js';
import { checkIgnoreIndex, checkLabelSmoothing, checkRegConvention, finalizeSums, prepareLoss, sumsLength, type PreparedLoss } from './prepare.js';
import type { Dtype, FloatArray, Matrix, RegConvention, Targets } from './types.js';
import { checkMatrix, checkNonNegativeFinite, checkOptionsObject, checkThreads, checkVector, checkWeights, dtypeOf } from './validate.js';

export interface AccumulatorOptions {
  /** Default reg for result() (default 0). */
  reg?: number;
  /** Default regConvention for result() (default 'full'). */
  regConvention?: RegConvention;
  classWeights?: FloatArray | readonly number[];
  ignoreIndex?: number;
  labelSmoothing?: number;
  threads?: number;
}

export interface AddOptions {
  sampleWeights?: FloatArray | readonly number[];
  threads?: number;
}

export interface ResultOptions {
  reg?: number;
  regConvention?: RegConvention;
  /** 'mean' (default): divided by the total weight of the rows added; 'sum': the plain sums. */
  reduction?: 'mean' | 'sum';
}

export interface AccumulatorResult<T extends FloatArray = FloatArray> {
  loss: number;
  dW: Matrix<T>;
  db: T | null;
  /** Rows added (ignored rows included). */
  count: number;
  /** The total weight of the rows added: the 'mean' denominator (the count, without weights). */
  weight: number;
}

const CONSTRUCTOR_KEYS = ['reg', 'regConvention', 'classWeights', 'ignoreIndex', 'labelSmoothing', 'threads'] as const;
const ADD_KEYS = ['sampleWeights', 'threads'] as const;
const RESULT_KEYS = ['reg', 'regConvention', 'reduction'] as const;

const MAGIC = 0x43434158; // "XACC" little-endian
const FORMAT_VERSION = 1;

function copyOf<T extends FloatArray>(a: T): T {
  return a.slice() as T;
}

function sameBits(a: FloatArray | Float64Array | null, b: FloatArray | Float64Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.constructor !== b.constructor || a.length !== b.length) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** FNV-1a over bytes: detects a corrupted or truncated state in fromBytes. */
function checksum(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class GradientAccumulator<T extends FloatArray = FloatArray> {
  readonly dtype: Dtype;
  readonly features: number;
  readonly classes: number;
  #W: T;
  #b: T | null;
  #reg: number;
  #regConvention: RegConvention;
  #classWeights: Float64Array | null;
  #ignoreIndex: number | null;
  #labelSmoothing: number;
  #threads: number | undefined;
  #sums: Float64Array;
  #count = 0;
  #generation = 0;

  /**
   * Starts empty at weights W (D×K) and bias b (K, or null for none); both are copied, so later
   * changes to the caller's arrays do not mix sums taken at different weights.
   */
  constructor(W: Matrix<T>, b: T | null, options?: AccumulatorOptions) {
    const Wm = checkMatrix('W', W);
    const dtype = dtypeOf(Wm.data);
    const bias = b === null || b === undefined ? null : checkVector('b', b, Wm.cols, dtype, 'one bias per class, K = W.cols');
    const o = checkOptionsObject('options', options, CONSTRUCTOR_KEYS);
    this.dtype = dtype;
    this.features = Wm.rows;
    this.classes = Wm.cols;
    this.#W = copyOf(Wm.data as T);
    this.#b = bias ? copyOf(bias as T) : null;
    this.#reg = o.reg === undefined ? 0 : checkNonNegativeFinite('options.reg', o.reg);
    this.#regConvention = checkRegConvention('options.regConvention', o.regConvention);
    this.#classWeights = o.classWeights === undefined ? null : checkWeights('options.classWeights', o.classWeights, Wm.cols, 'one weight per class');
    this.#ignoreIndex = checkIgnoreIndex('options.ignoreIndex', o.ignoreIndex);
    this.#labelSmoothing = checkLabelSmoothing('options.labelSmoothing', o.labelSmoothing);
    this.#threads = o.threads === undefined ? undefined : checkThreads('options.threads', o.threads);
    this.#sums = new Float64Array(sumsLength(this.features, this.classes));
  }

  /** Rows added so far. */
  get count(): number {
    return this.#count;
  }

  /** The weights the sums are taken at (a copy). */
  get W(): Matrix<T> {
    return { data: copyOf(this.#W), rows: this.features, cols: this.classes };
  }

  get b(): T | null {
    return this.#b ? copyOf(this.#b) : null;
  }

  #prepare(X: unknown, y: unknown, options: unknown): PreparedLoss {
    const o = checkOptionsObject('options', options, ADD_KEYS);
    const Xm = checkMatrix('X', X);
    if (dtypeOf(Xm.data) !== this.dtype) {
      throw typeError('ERR_DTYPE', 'X.data', `a ${this.dtype === 'float32' ? 'Float32Array' : 'Float64Array'} (this accumulator's dtype)`, Xm.data);
    }
    if (Xm.cols !== this.features) {
      throw rangeError('ERR_SHAPE', 'X.cols', `${this.features} (the accumulator's D)`, String(Xm.cols));
    }
    const lossOptions: Record<string, unknown> = { reduction: 'sum', labelSmoothing: this.#labelSmoothing };
    if (this.#classWeights) lossOptions.classWeights = this.#classWeights;
    if (this.#ignoreIndex !== null) lossOptions.ignoreIndex = this.#ignoreIndex;
    if (o.sampleWeights !== undefined) lossOptions.sampleWeights = o.sampleWeights;
    const threads = o.threads ?? this.#threads;
    if (threads !== undefined) lossOptions.threads = threads;
    const W = { data: this.#W, rows: this.features, cols: this.classes };
    return prepareLoss(Xm, y, W, this.#b, lossOptions);
  }

  #absorb(sums: Float64Array, rows: number): void {
    for (let i = 0; i < sums.length; i++) this.#sums[i]! += sums[i]!;
    this.#count += rows;
  }

  /** Adds the loss and gradient sums of the rows of X (labels or probability targets y). */
  add(X: Matrix<T>, y: Targets<T>, options?: AddOptions): this {
    const p = this.#prepare(X, y, options);
    const sums = new Float64Array(this.#sums.length);
    const error = outcomeError(native().lossGrad(Object.assign(p.args, { threads: threadsFor(p.options.threads), sums })), p);
    if (error) throw error;
    this.#absorb(sums, p.N);
    return this;
  }

  /**
   * add() off the event loop. The sums join the accumulator when the Promise settles; a reset() in
   * between discards them (the Promise rejects with ERR_STATE). Do not modify X or y meanwhile.
   */
  async addAsync(X: Matrix<T>, y: Targets<T>, options?: AddOptions): Promise<this> {
    const caller = new Error();
    const p = this.#prepare(X, y, options);
    const generation = this.#generation;
    const sums = new Float64Array(this.#sums.length);
    // Through the queue even when small: adds in flight are absorbed in the order they were made.
    const outcome = await native().lossGradAsync(Object.assign(p.args, { threads: threadsFor(p.options.threads), sums }));
    const error = outcomeError(outcome, p);
    if (error) throw withCallerStack(error, caller);
    if (generation !== this.#generation) {
      throw withCallerStack(codedError('ERR_STATE', 'softmax-simd: the accumulator was reset while addAsync was running; its rows were not added'), caller);
    }
    this.#absorb(sums, p.N);
    return this;
  }

  /** Adds another accumulator's sums; both must be taken at the same W, b, dtype and loss options. */
  merge(other: GradientAccumulator<T>): this {
    if (!(other instanceof GradientAccumulator)) {
      throw typeError('ERR_TYPE', 'other', 'a GradientAccumulator', other);
    }
    const mismatch = this.#mismatch(other);
    if (mismatch) throw rangeError('ERR_STATE', 'other', `an accumulator with the same ${mismatch}`, `one with a different ${mismatch}`);
    this.#absorb(other.#sums, other.#count);
    return this;
  }

  #mismatch(other: GradientAccumulator<T>): string | null {
    if (other.dtype !== this.dtype) return 'dtype';
    if (other.features !== this.features || other.classes !== this.classes) return 'shape (D×K)';
    if (!sameBits(other.#W, this.#W)) return 'weights W';
    if (!sameBits(other.#b, this.#b)) return 'bias b';
    if (!sameBits(other.#classWeights, this.#classWeights)) return 'classWeights';
    if (other.#ignoreIndex !== this.#ignoreIndex) return 'ignoreIndex';
    if (!Object.is(other.#labelSmoothing, this.#labelSmoothing)) return 'labelSmoothing';
    return null;
  }

  /** The mean (or summed) loss and gradients over every row added, plus the regularisation of W. */
  result(options?: ResultOptions): AccumulatorResult<T> {
    const o = checkOptionsObject('options', options, RESULT_KEYS);
    if (this.#count === 0) {
      throw codedError('ERR_STATE', 'softmax-simd: result() of an accumulator with no rows (the mean over no rows is undefined); add rows first');
    }
    const reg = o.reg === undefined ? this.#reg : checkNonNegativeFinite('options.reg', o.reg);
    const convention = o.regConvention === undefined ? this.#regConvention : checkRegConvention('options.regConvention', o.regConvention);
    const reduction = o.reduction ?? 'mean';
    if (reduction !== 'mean' && reduction !== 'sum') {
      throw rangeError('ERR_OPTION', 'options.reduction', "'mean' or 'sum'", JSON.stringify(reduction));
    }
    const r = finalizeSums(this.#sums, this.dtype, this.features, this.classes, this.#W, this.#b !== null, reduction, reg, convention, null, native());
    return { loss: r.loss, dW: r.dW as Matrix<T>, db: r.db as T | null, count: this.#count, weight: this.#sums[1]! };
  }

  /** Forgets every row added (W, b and options stay). */
  reset(): void {
    this.#sums.fill(0);
    this.#count = 0;
    this.#generation++;
  }

  /**
   * The whole state as bytes (little-endian): format version, dtype, shape, W, b, loss options,
   * row count and the float64 sums, with a checksum. fromBytes needs nothing else.
   */
  toBytes(): Uint8Array {
    const D = this.features;
    const K = this.classes;
    const elem = this.dtype === 'float32' ? 4 : 8;
    const header = 48;
    const cw = this.#classWeights ? K * 8 : 0;
    const length = header + cw + D * K * elem + (this.#b ? K * elem : 0) + this.#sums.length * 8 + 4;
    const bytes = new Uint8Array(length);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, FORMAT_VERSION, true);
    view.setUint8(8, this.dtype === 'float32' ? 0 : 1);
    view.setUint8(9, this.#b ? 1 : 0);
    view.setUint8(10, this.#classWeights ? 1 : 0);
    view.setUint8(11, this.#ignoreIndex === null ? 0 : 1);
    view.setUint32(12, D, true);
    view.setUint32(16, K, true);
    view.setInt32(20, this.#ignoreIndex ?? 0, true);
    view.setFloat64(24, this.#labelSmoothing, true);
    view.setFloat64(32, this.#count, true);
    view.setFloat64(40, this.#reg, true);
    // regConvention rides in the high bit of the flags byte 10
    if (this.#regConvention === 'half') view.setUint8(10, view.getUint8(10) | 0x80);
    let at = header;
    const put = (a: FloatArray, float32: boolean) => {
      for (let i = 0; i < a.length; i++, at += float32 ? 4 : 8) {
        if (float32) view.setFloat32(at, a[i]!, true);
        else view.setFloat64(at, a[i]!, true);
      }
    };
    if (this.#classWeights) put(this.#classWeights, false);
    put(this.#W, elem === 4);
    if (this.#b) put(this.#b, elem === 4);
    put(this.#sums, false);
    view.setUint32(at, checksum(bytes.subarray(0, at)), true);
    return bytes;
  }

  static fromBytes(bytes: Uint8Array): GradientAccumulator {
    if (!(bytes instanceof Uint8Array)) throw typeError('ERR_TYPE', 'bytes', 'a Uint8Array from toBytes()', bytes);
    const bad = (what: string) => rangeError('ERR_STATE', 'bytes', 'the bytes of GradientAccumulator#toBytes()', what);
    if (bytes.length < 52) throw bad(`only ${bytes.length} bytes`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== MAGIC) throw bad('bytes without its signature');
    if (view.getUint32(4, true) !== FORMAT_VERSION) throw bad(`format version ${view.getUint32(4, true)} (this version reads ${FORMAT_VERSION})`);
    const end = bytes.length - 4;
    if (view.getUint32(end, true) !== checksum(bytes.subarray(0, end))) throw bad('bytes whose checksum does not match (corrupted or truncated)');
    const float32 = view.getUint8(8) === 0;
    const hasBias = view.getUint8(9) === 1;
    const flags = view.getUint8(10);
    const hasCw = (flags & 1) === 1;
    const half = (flags & 0x80) !== 0;
    const hasIgnore = view.getUint8(11) === 1;
    const D = view.getUint32(12, true);
    const K = view.getUint32(16, true);
    const elem = float32 ? 4 : 8;
    const expected = 48 + (hasCw ? K * 8 : 0) + D * K * elem + (hasBias ? K * elem : 0) + sumsLength(D, K) * 8 + 4;
    if (D < 1 || K < 1 || expected !== bytes.length) throw bad(`a length of ${bytes.length} bytes that does not fit D = ${D}, K = ${K}`);
    let at = 48;
    const take = (n: number, f32: boolean) => {
      const a = f32 ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++, at += f32 ? 4 : 8) a[i] = f32 ? view.getFloat32(at, true) : view.getFloat64(at, true);
      return a;
    };
    const cw = hasCw ? take(K, false) : null;
    const W = take(D * K, float32);
    const b = hasBias ? take(K, float32) : null;
    const sums = take(sumsLength(D, K), false) as Float64Array;
    const count = view.getFloat64(32, true);
    // The checksum guards against corruption, not against bytes made by hand: no pass leaves a sum
    // that is not finite (non-finite rows are refused) or a negative or fractional count.
    if (!sums.every((v) => Number.isFinite(v)) || !Number.isSafeInteger(count) || count < 0) {
      throw bad('sums that are not finite or a row count that is not a whole number ≥ 0 (no pass leaves these)');
    }
    const options: AccumulatorOptions = {
      reg: view.getFloat64(40, true),
      regConvention: half ? 'half' : 'full',
      labelSmoothing: view.getFloat64(24, true),
    };
    if (cw) options.classWeights = cw;
    if (hasIgnore) options.ignoreIndex = view.getInt32(20, true);
    const acc = new GradientAccumulator({ data: W, rows: D, cols: K }, b, options);
    acc.#sums.set(sums);
    acc.#count = count;
    return acc;
  }
}

