// The softmax classifier of CS231n as a trainable model: W (D×K) and b (K), minibatch optimizers
// (sgd, momentum, adam) over the fused native loss-and-gradient pass, full-batch L-BFGS, and a
// lossless JSON form.
//
// One training loop serves train() and trainAsync(): it is a generator that yields each native call
// it needs (a loss-and-gradients pass, a prediction) and a driver answers them, with the synchronous
// functions or with the ones that run off the event loop. Both give bitwise the same model.
import { codedError, rangeError, typeError, withCallerStack, type CodedError } from './errors.js';
import { lossAndGradients, lossAndGradientsAsync, predict, predictAsync, scores, scoresAsync, softmax } from './linear.js';
import { allocate, checkTargets, normalizeLossOptions, type NormalizedLossOptions, LOSS_OPTION_KEYS } from './prepare.js';
import type { Dtype, FloatArray, LossOptions, LossResult, Matrix, Targets } from './types.js';
import { checkCols, checkMatrix, checkOptionsObject, checkThreads } from './validate.js';

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG: xoshiro128** seeded through splitmix32; normals by Box–Muller.

function splitmix32(state: { x: number }): number {
  state.x = (state.x + 0x9e3779b9) >>> 0;
  let z = state.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128**: 128 bits of state, period 2^128 − 1. Not for cryptography. */
export class Rng {
  private readonly s = new Uint32Array(4);

  constructor(seed: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const st = { x: (lo ^ Math.imul(hi, 0x27d4eb2d)) >>> 0 };
    for (let i = 0; i < 4; i++) this.s[i] = splitmix32(st);
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  static fromState(state: readonly number[]): Rng {
    const r = new Rng(0);
    for (let i = 0; i < 4; i++) r.s[i] = state[i]!;
    return r;
  }

  state(): number[] {
    return Array.from(this.s);
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A standard normal (Box–Muller, one value per pair of uniforms). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Public types.

export type Optimizer = 'sgd' | 'momentum' | 'adam' | 'lbfgs';

export interface ClassifierOptions {
  /** D, the number of features (columns of X). */
  features: number;
  /** K, the number of classes (at least 2). */
  classes: number;
  /** 'float32' (default) or 'float64': the dtype of W, b and every X the model takes. */
  dtype?: Dtype;
  /** Seeds the initial weights (0.001·N(0, 1)) and the shuffling; a random seed when omitted. */
  seed?: number;
  /** Optional names of the K classes (e.g. the original labels of a CSV), kept in toJSON(). */
  labels?: readonly (string | number)[];
}

export interface ProgressEvent {
  /** Steps (optimizer updates) completed in this call, from 1. */
  iteration: number;
  /** Steps this call will take at most. */
  iterations: number;
  /** The epoch this step belongs to, from 1 ('lbfgs': always 1). */
  epoch: number;
  /** The loss computed at this step (minibatch loss before the update; 'lbfgs': full-batch loss). */
  loss: number;
  /** The learning rate of this step (after lrDecay); 'lbfgs': the accepted line-search step. */
  learningRate: number;
  /** Training rows processed per second in this call so far. */
  rowsPerSecond: number;
  /** True on the last step of an epoch (the accuracies are then computed); 'lbfgs': one closing event. */
  epochEnd: boolean;
  trainAccuracy?: number;
  valAccuracy?: number;
  valLoss?: number;
  /** 'lbfgs': the max-norm of the full-batch gradient at the new weights. */
  gradientMaxNorm?: number;
}

export interface TrainOptions extends Omit<LossOptions, 'reduction' | 'bias'> {
  /** 'sgd' (default), 'momentum', 'adam' or 'lbfgs' (full batch). */
  optimizer?: Optimizer;
  /** Step size (default: sgd 0.01, momentum 0.01, adam 0.001); not used by 'lbfgs'. */
  learningRate?: number;
  /** 'mean' (default) or 'sum' of the per-row losses. */
  reduction?: 'mean' | 'sum';
  /** Rows per minibatch (default 200 as CS231n, or N when N < 200; more than N is an error). */
  batchSize?: number;
  /** Passes over the data (default 10); give epochs or iterations, not both. */
  epochs?: number;
  /** Optimizer steps in all; for 'lbfgs' the most iterations (default 100). */
  iterations?: number;
  /** Visit the rows in a fresh seeded order each epoch (default true). */
  shuffle?: boolean;
  /** Multiply the learning rate by this after every epoch (default 1). */
  lrDecay?: number;
  /** 'momentum': the momentum μ in v ← μv − lr·dW (default 0.9). */
  momentum?: number;
  /** 'adam': β₁ (default 0.9). */
  beta1?: number;
  /** 'adam': β₂ (default 0.999). */
  beta2?: number;
  /** 'adam': ε (default 1e-8). */
  epsilon?: number;
  /** Data to measure after every epoch: valAccuracy and valLoss (the same loss options, without sampleWeights). */
  validation?: { X: Matrix; y: Targets };
  /** Stop when the validation loss has not improved for this many epochs, keeping the best weights. */
  patience?: number;
  /** 'lbfgs': stop when the gradient's max-norm is below this (default 1e-5). */
  tolerance?: number;
  /** 'lbfgs': how many correction pairs to keep (default 10). */
  memory?: number;
  /** Called after every step. */
  onProgress?: (event: ProgressEvent) => void;
  /** Stops training between two steps; the call then fails with code ERR_ABORTED. */
  signal?: AbortSignal;
}

export type StopReason = 'completed' | 'converged' | 'early-stopping' | 'line-search-failed';

export interface TrainHistory {
  /** The loss of every step (see ProgressEvent.loss); 'lbfgs': at every iterate, the initial one first. */
  loss: number[];
  /** Accuracy on the training data after every epoch ('lbfgs': once, at the end). */
  trainAccuracy: number[];
  /** Accuracy on options.validation after every epoch (empty without it). */
  valAccuracy: number[];
  /** Loss on options.validation after every epoch (empty without it). */
  valLoss: number[];
  /** Steps taken. */
  iterations: number;
  /** Epochs begun ('lbfgs': 1). */
  epochs: number;
  stopReason: StopReason;
  /** With patience: the epoch (from 1) whose weights the model keeps. */
  bestEpoch?: number;
  /** 'lbfgs': the max-norm of the gradient at the final weights. */
  gradientMaxNorm?: number;
  /** Wall time of the call. */
  seconds: number;
}

/** A training failure (ERR_DIVERGED, ERR_ABORTED) carries the history up to the last completed step. */
export interface TrainError extends CodedError {
  history: TrainHistory;
}

export const CLASSIFIER_FORMAT = 'softmax-simd/classifier';
export const CLASSIFIER_FORMAT_VERSION = 1;

/**
 * The JSON form of a classifier. W (row-major D×K) and b are the little-endian bytes of the dtype's
 * IEEE-754 values in base64, so every value (float32 or float64) round-trips bit for bit.
 */
export interface ClassifierJSON {
  format: typeof CLASSIFIER_FORMAT;
  version: number;
  dtype: Dtype;
  features: number;
  classes: number;
  encoding: 'base64-le';
  W: string;
  b: string;
  seed: number;
  /** The PRNG state, so that a restored model shuffles as the original would. */
  rng: number[];
  labels?: (string | number)[];
}

// ---------------------------------------------------------------------------------------------
// Option checks.

function checkNumber(name: string, value: unknown, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== 'number') throw typeError('ERR_OPTION', name, expected, value);
  if (!ok(value)) throw rangeError('ERR_OPTION', name, expected, String(value));
  return value;
}

const positiveInteger = (v: number) => Number.isSafeInteger(v) && v >= 1;
const positiveFinite = (v: number) => Number.isFinite(v) && v > 0;

const TRAIN_KEYS = [
  'optimizer',
  'learningRate',
  'batchSize',
  'epochs',
  'iterations',
  'shuffle',
  'lrDecay',
  'momentum',
  'beta1',
  'beta2',
  'epsilon',
  'validation',
  'patience',
  'tolerance',
  'memory',
  'onProgress',
  'signal',
  // the loss options, but bias: the classifier always has its own b
  ...LOSS_OPTION_KEYS.filter((key) => key !== 'bias'),
];

/** Options only some optimizers take. */
const ONLY_FOR: Record<string, readonly Optimizer[]> = {
  learningRate: ['sgd', 'momentum', 'adam'],
  batchSize: ['sgd', 'momentum', 'adam'],
  epochs: ['sgd', 'momentum', 'adam'],
  shuffle: ['sgd', 'momentum', 'adam'],
  lrDecay: ['sgd', 'momentum', 'adam'],
  patience: ['sgd', 'momentum', 'adam'],
  momentum: ['momentum'],
  beta1: ['adam'],
  beta2: ['adam'],
  epsilon: ['adam'],
  tolerance: ['lbfgs'],
  memory: ['lbfgs'],
};

const DEFAULT_LR: Record<Optimizer, number> = { sgd: 0.01, momentum: 0.01, adam: 0.001, lbfgs: 1 };

interface Dataset {
  X: Matrix;
  y: Int32Array | Matrix;
  N: number;
}

interface Plan {
  optimizer: Optimizer;
  learningRate: number;
  batchSize: number;
  totalSteps: number;
  stepsPerEpoch: number;
  shuffle: boolean;
  lrDecay: number;
  momentum: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  patience: number | null;
  tolerance: number;
  memory: number;
  train: Dataset;
  validation: Dataset | null;
  loss: NormalizedLossOptions;
  /** Loss options for the library calls, without sampleWeights (gathered per batch). */
  lossOptions: LossOptions;
  validationLossOptions: LossOptions;
  onProgress: ((event: ProgressEvent) => void) | null;
  signal: AbortSignal | null;
  threads: number | undefined;
}

function lossOptionsFrom(n: NormalizedLossOptions): LossOptions {
  const o: LossOptions = { reg: n.reg, regConvention: n.regConvention, labelSmoothing: n.labelSmoothing, reduction: n.reduction };
  if (n.classWeights) o.classWeights = n.classWeights;
  if (n.ignoreIndex !== null) o.ignoreIndex = n.ignoreIndex;
  if (n.threads !== undefined) o.threads = n.threads;
  return o;
}

// ---------------------------------------------------------------------------------------------
// The requests the training generator makes of its driver.

type Request =
  | { kind: 'loss'; X: Matrix; y: Int32Array | Matrix; W: Matrix; b: FloatArray; options: LossOptions }
  | { kind: 'predict'; X: Matrix; W: Matrix; b: FloatArray; threads: number | undefined };

type Response = LossResult | Int32Array;

function serveSync(r: Request): Response {
  if (r.kind === 'loss') return lossAndGradients(r.X, r.y, r.W, r.b, r.options);
  return predict(r.X, r.W, r.b, r.threads === undefined ? undefined : { threads: r.threads });
}

function serveAsync(r: Request): Promise<Response> {
  if (r.kind === 'loss') return lossAndGradientsAsync(r.X, r.y, r.W, r.b, r.options);
  return predictAsync(r.X, r.W, r.b, r.threads === undefined ? undefined : { threads: r.threads });
}

function runSync<R>(gen: Generator<Request, R, Response>): R {
  let input: Response | undefined;
  let failure: { error: unknown } | null = null;
  for (;;) {
    const step = failure ? gen.throw(failure.error) : gen.next(input as Response);
    if (step.done) return step.value;
    failure = null;
    try {
      input = serveSync(step.value);
    } catch (error) {
      failure = { error };
    }
  }
}

/** Resolves on the next turn of the event loop (its check phase). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function runAsync<R>(gen: Generator<Request, R, Response>): Promise<R> {
  let input: Response | undefined;
  let failure: { error: unknown } | null = null;
  for (;;) {
    const step = failure ? gen.throw(failure.error) : gen.next(input as Response);
    if (step.done) return step.value;
    failure = null;
    try {
      // A pass that completes quickly can settle within the same turn of the event loop as the one
      // before it (the addon's completions are drained in a batch), so give the loop a turn first:
      // timers, I/O and an abort() get to run between any two passes.
      await nextTurn();
      input = await serveAsync(step.value);
    } catch (error) {
      failure = { error };
    }
  }
}

function maxNorm(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]!);
    if (!(v <= m)) m = v; // NaN propagates
  }
  return m;
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

/** Accuracy of predictions against labels or probability targets (argmax); ignored rows do not count. */
function accuracyOf(pred: Int32Array, y: Int32Array | Matrix, ignoreIndex: number | null): number {
  let right = 0;
  let counted = 0;
  if (y instanceof Int32Array) {
    for (let i = 0; i < pred.length; i++) {
      if (ignoreIndex !== null && y[i] === ignoreIndex) continue;
      counted++;
      if (pred[i] === y[i]) right++;
    }
  } else {
    const K = y.cols;
    for (let i = 0; i < pred.length; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (y.data[i * K + k]! > y.data[i * K + best]!) best = k;
      counted++;
      if (pred[i] === best) right++;
    }
  }
  return counted === 0 ? 0 : right / counted;
}

function now(): number {
  return performance.now();
}

function abortedError(signal: AbortSignal, iteration: number): Error & CodedError {
  const error = codedError('ERR_ABORTED', `softmax-simd: training was aborted after ${iteration} completed step${iteration === 1 ? '' : 's'}; the model keeps the weights of the last one`);
  error.name = 'AbortError';
  if (signal.reason !== undefined) (error as Error & { cause?: unknown }).cause = signal.reason;
  return error;
}

function divergedError(iteration: number, firstStep: boolean, what: string, cause?: unknown): Error & CodedError {
  const hint = firstStep
    ? 'check X, y and the starting weights for NaN or ±Infinity, or lower the learningRate'
    : 'training diverged: lower the learningRate';
  const error = rangeError('ERR_DIVERGED', `iteration ${iteration}`, `a finite loss and finite weights (${hint}; the model keeps the last finite weights)`, what);
  if (cause !== undefined) (error as Error & { cause?: unknown }).cause = cause;
  return error;
}

function isNonFinite(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_NON_FINITE';
}

// ---------------------------------------------------------------------------------------------

export class SoftmaxClassifier {
  readonly features: number;
  readonly classes: number;
  readonly dtype: Dtype;
  /** The seed the model was made with (a random one when none was given). */
  readonly seed: number;
  /** Names of the classes, when given (e.g. the original CSV labels). */
  readonly labels: readonly (string | number)[] | undefined;

  readonly #W: Matrix;
  readonly #b: FloatArray;
  #rng: Rng;
  #busy = false;

  constructor(options: ClassifierOptions) {
    const o = checkOptionsObject('options', options, ['features', 'classes', 'dtype', 'seed', 'labels']);
    if (options === undefined) throw typeError('ERR_OPTION', 'options', 'an options object { features, classes }', options);
    const features = checkNumber('options.features', o.features, positiveInteger, 'a positive safe integer (D, the number of features)');
    const classes = checkNumber('options.classes', o.classes, (v) => positiveInteger(v) && v >= 2, 'an integer >= 2 (K, the number of classes)');
    const dtype = o.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float64') throw rangeError('ERR_OPTION', 'options.dtype', "'float32' or 'float64'", JSON.stringify(dtype));
    const seed =
      o.seed === undefined
        ? Math.floor(Math.random() * 4294967296)
        : checkNumber('options.seed', o.seed, (v) => Number.isSafeInteger(v) && v >= 0, 'a safe integer >= 0');
    const labels = o.labels === undefined ? undefined : checkClassLabels('options.labels', o.labels, classes);
    if (features * classes > 2 ** 31) throw rangeError('ERR_TOO_LARGE', 'options.features × options.classes', 'at most 2^31 weights', String(features * classes));

    this.features = features;
    this.classes = classes;
    this.dtype = dtype;
    this.seed = seed;
    this.labels = labels;
    this.#rng = new Rng(seed);
    const W = allocate(dtype, features * classes);
    for (let i = 0; i < W.length; i++) W[i] = 0.001 * this.#rng.normal();
    this.#W = Object.freeze({ data: W, rows: features, cols: classes });
    this.#b = allocate(dtype, classes);
  }

  /** The weights, D×K (row d holds feature d's weight for every class). The live matrix. */
  get W(): Matrix {
    return this.#W;
  }

  /** The biases, K values. The live array. */
  get b(): FloatArray {
    return this.#b;
  }

  // ------------------------------------------------------------------ inference

  #checkX(X: unknown, name = 'X'): Matrix {
    const m = checkMatrix(name, X, this.dtype);
    checkCols(name, m, this.features, `the model has D = ${this.features} features`);
    return m;
  }

  /** The predicted class of every row of X. */
  predict(X: Matrix, options?: { threads?: number }): Int32Array {
    return predict(this.#checkX(X), this.#W, this.#b, options);
  }

  predictAsync(X: Matrix, options?: { threads?: number }): Promise<Int32Array> {
    return predictAsync(this.#checkX(X), this.#W, this.#b, options);
  }

  /** Class probabilities of every row: softmax(XW + b), N×K. */
  predictProba(X: Matrix, options?: { threads?: number }): Matrix {
    const S = scores(this.#checkX(X), this.#W, this.#b, options);
    return softmax(S, options);
  }

  async predictProbaAsync(X: Matrix, options?: { threads?: number }): Promise<Matrix> {
    const S = await scoresAsync(this.#checkX(X), this.#W, this.#b, options);
    return softmax(S, options);
  }

  /**
   * The loss (by default the mean data loss, reg 0; pass loss options to change that) and the
   * accuracy on (X, y). Rows whose label is options.ignoreIndex count in neither.
   */
  evaluate(X: Matrix, y: Targets, options?: LossOptions): { loss: number; accuracy: number } {
    const Xm = this.#checkX(X);
    const { loss, options: o } = this.#lossForEvaluate(Xm, y, options);
    const result = lossAndGradients(Xm, y, this.#W, this.#b, loss);
    const pred = predict(Xm, this.#W, this.#b, o.threads === undefined ? undefined : { threads: o.threads });
    return { loss: result.loss, accuracy: accuracyOf(pred, checkTargets(y, Xm.rows, this.classes, this.dtype, o.ignoreIndex), o.ignoreIndex) };
  }

  async evaluateAsync(X: Matrix, y: Targets, options?: LossOptions): Promise<{ loss: number; accuracy: number }> {
    const Xm = this.#checkX(X);
    const { loss, options: o } = this.#lossForEvaluate(Xm, y, options);
    const targets = checkTargets(y, Xm.rows, this.classes, this.dtype, o.ignoreIndex);
    const result = await lossAndGradientsAsync(Xm, y, this.#W, this.#b, loss);
    const pred = await predictAsync(Xm, this.#W, this.#b, o.threads === undefined ? undefined : { threads: o.threads });
    return { loss: result.loss, accuracy: accuracyOf(pred, targets, o.ignoreIndex) };
  }

  #lossForEvaluate(X: Matrix, y: Targets, options: LossOptions | undefined): { loss: LossOptions; options: NormalizedLossOptions } {
    const o = normalizeLossOptions(options, X.rows, this.classes);
    if (o.reduction === 'none') throw rangeError('ERR_OPTION', 'options.reduction', "'mean' or 'sum' (evaluate returns one loss)", "'none'");
    checkTargets(y, X.rows, this.classes, this.dtype, o.ignoreIndex);
    const loss = lossOptionsFrom(o);
    if (o.sampleWeights) loss.sampleWeights = o.sampleWeights;
    return { loss, options: o };
  }

  // ------------------------------------------------------------------ training

  /**
   * Trains from the current weights (a warm start) and returns the history. Blocks the event loop;
   * see trainAsync. Options are all checked before any work: a rejected call changes nothing.
   */
  train(X: Matrix, y: Targets, options?: TrainOptions): TrainHistory {
    const plan = this.#plan(X, y, options);
    this.#busy = true;
    try {
      return runSync(this.#training(plan));
    } finally {
      this.#busy = false;
    }
  }

  /** train() with every pass over the data off the event loop. Accepts options.signal. */
  async trainAsync(X: Matrix, y: Targets, options?: TrainOptions): Promise<TrainHistory> {
    const caller = new Error();
    const plan = this.#plan(X, y, options);
    this.#busy = true;
    try {
      return await runAsync(this.#training(plan));
    } catch (error) {
      throw error instanceof Error ? withCallerStack(error, caller) : error;
    } finally {
      this.#busy = false;
    }
  }

  #plan(X: unknown, y: unknown, options: unknown): Plan {
    if (this.#busy) throw codedError('ERR_STATE', 'softmax-simd: this classifier is already training; wait for that call to finish');
    const o = checkOptionsObject('options', options, TRAIN_KEYS);
    const optimizer = (o.optimizer ?? 'sgd') as Optimizer;
    if (!['sgd', 'momentum', 'adam', 'lbfgs'].includes(optimizer as string)) {
      throw rangeError('ERR_OPTION', 'options.optimizer', "'sgd', 'momentum', 'adam' or 'lbfgs'", typeof optimizer === 'string' ? JSON.stringify(optimizer) : String(optimizer));
    }
    for (const [key, allowed] of Object.entries(ONLY_FOR)) {
      if (o[key] !== undefined && !allowed.includes(optimizer)) {
        throw rangeError('ERR_OPTION', `options.${key}`, `no ${key} with optimizer '${optimizer}' (it is for ${allowed.map((a) => `'${a}'`).join(', ')})`, String(o[key]));
      }
    }

    const Xm = this.#checkX(X);
    const N = Xm.rows;
    const lossKeys: Record<string, unknown> = {};
    for (const key of ['reg', 'regConvention', 'threads', 'classWeights', 'sampleWeights', 'ignoreIndex', 'labelSmoothing', 'reduction']) {
      if (o[key] !== undefined) lossKeys[key] = o[key];
    }
    const loss = normalizeLossOptions(lossKeys, N, this.classes);
    if (loss.reduction === 'none') throw rangeError('ERR_OPTION', 'options.reduction', "'mean' or 'sum' (training needs one loss per step)", "'none'");
    const targets = checkTargets(y, N, this.classes, this.dtype, loss.ignoreIndex);

    const learningRate =
      o.learningRate === undefined ? DEFAULT_LR[optimizer] : checkNumber('options.learningRate', o.learningRate, positiveFinite, 'a finite number > 0');
    const lbfgs = optimizer === 'lbfgs';
    const batchSize = lbfgs
      ? N
      : o.batchSize === undefined
        ? Math.min(200, N)
        : checkNumber('options.batchSize', o.batchSize, (v) => positiveInteger(v) && v <= N, `an integer from 1 to N = ${N} (the rows of X)`);
    if (o.epochs !== undefined && o.iterations !== undefined) {
      throw rangeError('ERR_OPTION', 'options.iterations', 'epochs or iterations, not both', `iterations ${String(o.iterations)} with epochs ${String(o.epochs)}`);
    }
    const stepsPerEpoch = Math.ceil(N / batchSize);
    let totalSteps: number;
    if (o.iterations !== undefined) totalSteps = checkNumber('options.iterations', o.iterations, positiveInteger, 'a positive integer');
    else if (o.epochs !== undefined) totalSteps = stepsPerEpoch * checkNumber('options.epochs', o.epochs, positiveInteger, 'a positive integer');
    else totalSteps = lbfgs ? 100 : stepsPerEpoch * 10;

    if (o.shuffle !== undefined && typeof o.shuffle !== 'boolean') throw typeError('ERR_OPTION', 'options.shuffle', 'a boolean', o.shuffle);
    const lrDecay = o.lrDecay === undefined ? 1 : checkNumber('options.lrDecay', o.lrDecay, (v) => v > 0 && v <= 1, 'a number in (0, 1]');
    const momentum = o.momentum === undefined ? 0.9 : checkNumber('options.momentum', o.momentum, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    const beta1 = o.beta1 === undefined ? 0.9 : checkNumber('options.beta1', o.beta1, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    const beta2 = o.beta2 === undefined ? 0.999 : checkNumber('options.beta2', o.beta2, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    const epsilon = o.epsilon === undefined ? 1e-8 : checkNumber('options.epsilon', o.epsilon, positiveFinite, 'a finite number > 0');
    const tolerance = o.tolerance === undefined ? 1e-5 : checkNumber('options.tolerance', o.tolerance, (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0');
    const memory = o.memory === undefined ? 10 : checkNumber('options.memory', o.memory, (v) => positiveInteger(v) && v <= 1000, 'an integer from 1 to 1000');

    let validation: Dataset | null = null;
    if (o.validation !== undefined) {
      const v = o.validation;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError('ERR_OPTION', 'options.validation', 'an object { X, y }', v);
      checkOptionsObject('options.validation', v, ['X', 'y']);
      const vX = this.#checkX((v as { X?: unknown }).X, 'options.validation.X');
      const vy = checkTargets((v as { y?: unknown }).y, vX.rows, this.classes, this.dtype, loss.ignoreIndex);
      validation = { X: vX, y: vy, N: vX.rows };
    }
    let patience: number | null = null;
    if (o.patience !== undefined) {
      patience = checkNumber('options.patience', o.patience, positiveInteger, 'a positive integer (epochs without improvement)');
      if (!validation) throw rangeError('ERR_OPTION', 'options.patience', 'options.validation as well (early stopping watches the validation loss)', String(patience));
    }
    if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('ERR_OPTION', 'options.onProgress', 'a function', o.onProgress);
    let signal: AbortSignal | null = null;
    if (o.signal !== undefined) {
      const s = o.signal as AbortSignal;
      if (typeof s !== 'object' || s === null || typeof s.aborted !== 'boolean') throw typeError('ERR_OPTION', 'options.signal', 'an AbortSignal', s);
      if (s.aborted) throw abortedError(s, 0);
      signal = s;
    }
    if (o.threads !== undefined) checkThreads('options.threads', o.threads);

    const lossOptions = lossOptionsFrom(loss);
    return {
      optimizer,
      learningRate,
      batchSize,
      totalSteps,
      stepsPerEpoch,
      shuffle: o.shuffle === undefined ? true : (o.shuffle as boolean),
      lrDecay,
      momentum,
      beta1,
      beta2,
      epsilon,
      patience,
      tolerance,
      memory,
      train: { X: Xm, y: targets, N },
      validation,
      loss,
      lossOptions,
      validationLossOptions: lossOptions,
      onProgress: (o.onProgress as ((event: ProgressEvent) => void) | undefined) ?? null,
      signal,
      threads: loss.threads,
    };
  }

  *#training(plan: Plan): Generator<Request, TrainHistory, Response> {
    return plan.optimizer === 'lbfgs' ? yield* this.#lbfgs(plan) : yield* this.#minibatch(plan);
  }

  /** Accuracies (and the validation loss) at the current weights, into the history and the event. */
  *#measure(plan: Plan, history: TrainHistory, event: ProgressEvent): Generator<Request, void, Response> {
    const W = this.#W;
    const b = this.#b;
    const { train, validation, threads } = plan;
    const pred = (yield { kind: 'predict', X: train.X, W, b, threads }) as Int32Array;
    event.trainAccuracy = accuracyOf(pred, train.y, plan.loss.ignoreIndex);
    history.trainAccuracy.push(event.trainAccuracy);
    if (validation) {
      const vr = (yield { kind: 'loss', X: validation.X, y: validation.y, W, b, options: plan.validationLossOptions }) as LossResult;
      const vp = (yield { kind: 'predict', X: validation.X, W, b, threads }) as Int32Array;
      event.valLoss = vr.loss;
      event.valAccuracy = accuracyOf(vp, validation.y, plan.loss.ignoreIndex);
      history.valLoss.push(vr.loss);
      history.valAccuracy.push(event.valAccuracy);
    }
  }

  *#minibatch(plan: Plan): Generator<Request, TrainHistory, Response> {
    const start = now();
    const { train, batchSize: B, totalSteps, stepsPerEpoch, signal } = plan;
    const { N, X } = train;
    const D = this.features;
    const K = this.classes;
    const W = this.#W;
    const b = this.#b;
    const P = D * K;
    const history: TrainHistory = { loss: [], trainAccuracy: [], valAccuracy: [], valLoss: [], iterations: 0, epochs: 0, stopReason: 'completed', seconds: 0 };

    // Buffers made once per call: the batch, the order, the optimizer state, the last weights.
    const order = new Int32Array(N);
    for (let i = 0; i < N; i++) order[i] = i;
    const fullBatch = B === N && !plan.shuffle;
    const xBatch = fullBatch ? X.data : allocate(this.dtype, B * D);
    const labels = train.y instanceof Int32Array ? train.y : null;
    const yLabels = labels && !fullBatch ? new Int32Array(B) : null;
    const yTargets = !labels && !fullBatch ? allocate(this.dtype, B * K) : null;
    const sw = plan.loss.sampleWeights;
    const swBatch = sw && !fullBatch ? new Float64Array(B) : null;
    const state1 = plan.optimizer === 'sgd' ? null : new Float64Array(P + K);
    const state2 = plan.optimizer === 'adam' ? new Float64Array(P + K) : null;
    const prevW = allocate(this.dtype, P);
    const prevB = allocate(this.dtype, K);
    const best = plan.patience !== null ? { W: allocate(this.dtype, P), b: allocate(this.dtype, K), loss: Infinity, epoch: 0 } : null;

    let lr = plan.learningRate;
    let rows = 0;
    let sinceBest = 0;
    let t = 0; // adam's step count

    for (let step = 0; step < totalSteps; step++) {
      if (signal?.aborted) throw this.#fail(abortedError(signal, step), history, start);
      const epochStep = step % stepsPerEpoch;
      const epoch = Math.floor(step / stepsPerEpoch) + 1;
      if (epochStep === 0) {
        history.epochs = epoch;
        if (plan.shuffle) {
          for (let i = N - 1; i > 0; i--) {
            const j = this.#rng.int(i + 1);
            const tmp = order[i]!;
            order[i] = order[j]!;
            order[j] = tmp;
          }
        }
      }
      // Gather the batch rows into the reused buffers (the last batch of an epoch may be short).
      const first = epochStep * B;
      const n = Math.min(B, N - first);
      let Xb: Matrix;
      let yb: Int32Array | Matrix;
      const options: LossOptions = sw ? { ...plan.lossOptions } : plan.lossOptions;
      if (fullBatch) {
        Xb = X;
        yb = train.y;
        if (sw) options.sampleWeights = sw;
      } else {
        for (let r = 0; r < n; r++) {
          const i = order[first + r]!;
          xBatch.set(X.data.subarray(i * D, (i + 1) * D), r * D);
          if (yLabels) yLabels[r] = labels![i]!;
          else yTargets!.set((train.y as Matrix).data.subarray(i * K, (i + 1) * K), r * K);
          if (swBatch) swBatch[r] = sw![i]!;
        }
        Xb = { data: n === B ? xBatch : xBatch.subarray(0, n * D), rows: n, cols: D };
        yb = yLabels ? (n === B ? yLabels : yLabels.subarray(0, n)) : { data: n === B ? yTargets! : yTargets!.subarray(0, n * K), rows: n, cols: K };
        if (swBatch) options.sampleWeights = n === B ? swBatch : swBatch.subarray(0, n);
      }

      let result: LossResult;
      try {
        result = (yield { kind: 'loss', X: Xb, y: yb, W, b, options }) as LossResult;
      } catch (error) {
        if (isNonFinite(error)) throw this.#fail(divergedError(step + 1, step === 0, 'a loss that is not finite', error), history, start);
        throw error;
      }
      if (!Number.isFinite(result.loss)) throw this.#fail(divergedError(step + 1, step === 0, `the loss ${result.loss}`), history, start);

      // The update, undone if it makes any weight non-finite.
      prevW.set(W.data);
      prevB.set(b);
      const dW = result.dW.data;
      const db = result.db!;
      if (plan.optimizer === 'sgd') {
        for (let i = 0; i < P; i++) W.data[i] = W.data[i]! - lr * dW[i]!;
        for (let k = 0; k < K; k++) b[k] = b[k]! - lr * db[k]!;
      } else if (plan.optimizer === 'momentum') {
        const v = state1!;
        const mu = plan.momentum;
        for (let i = 0; i < P; i++) {
          v[i] = mu * v[i]! - lr * dW[i]!;
          W.data[i] = W.data[i]! + v[i]!;
        }
        for (let k = 0; k < K; k++) {
          v[P + k] = mu * v[P + k]! - lr * db[k]!;
          b[k] = b[k]! + v[P + k]!;
        }
      } else {
        const m = state1!;
        const v = state2!;
        const { beta1, beta2, epsilon } = plan;
        t++;
        const c1 = 1 - beta1 ** t;
        const c2 = 1 - beta2 ** t;
        const update = (g: number, j: number): number => {
          m[j] = beta1 * m[j]! + (1 - beta1) * g;
          v[j] = beta2 * v[j]! + (1 - beta2) * g * g;
          return (lr * (m[j]! / c1)) / (Math.sqrt(v[j]! / c2) + epsilon);
        };
        for (let i = 0; i < P; i++) W.data[i] = W.data[i]! - update(dW[i]!, i);
        for (let k = 0; k < K; k++) b[k] = b[k]! - update(db[k]!, P + k);
      }
      if (!allFinite(W.data) || !allFinite(b)) {
        W.data.set(prevW);
        b.set(prevB);
        throw this.#fail(divergedError(step + 1, false, 'weights that are not finite after the update'), history, start);
      }

      history.loss.push(result.loss);
      history.iterations = step + 1;
      rows += n;
      const epochEnd = epochStep === stepsPerEpoch - 1 || step === totalSteps - 1;
      const event: ProgressEvent = {
        iteration: step + 1,
        iterations: totalSteps,
        epoch,
        loss: result.loss,
        learningRate: lr,
        rowsPerSecond: rows / Math.max(1e-9, (now() - start) / 1000),
        epochEnd,
      };
      let stop = false;
      if (epochEnd) {
        yield* this.#measure(plan, history, event);
        if (best && event.valLoss !== undefined) {
          if (event.valLoss < best.loss) {
            best.loss = event.valLoss;
            best.epoch = epoch;
            best.W.set(W.data);
            best.b.set(b);
            sinceBest = 0;
          } else if (++sinceBest >= plan.patience!) {
            stop = true;
          }
        }
        lr *= plan.lrDecay;
      }
      plan.onProgress?.(event);
      if (stop) {
        history.stopReason = 'early-stopping';
        break;
      }
    }
    if (best && best.epoch > 0) {
      W.data.set(best.W);
      b.set(best.b);
      history.bestEpoch = best.epoch;
    }
    history.seconds = (now() - start) / 1000;
    return history;
  }

  /**
   * Full-batch L-BFGS on θ = (W, b): the two-loop recursion gives the direction, a backtracking line
   * search (with quadratic interpolation) finds a step meeting the Armijo condition
   * f(θ + αd) <= f(θ) + c₁·α·∇f·d. θ lives in float64; the loss is evaluated at θ rounded to the
   * model's dtype, which is also the point taken, so every step is measured where it lands.
   */
  *#lbfgs(plan: Plan): Generator<Request, TrainHistory, Response> {
    const start = now();
    const { train, totalSteps, signal, tolerance, memory } = plan;
    const D = this.features;
    const K = this.classes;
    const P = D * K;
    const n = P + K;
    const W = this.#W;
    const b = this.#b;
    const history: TrainHistory = { loss: [], trainAccuracy: [], valAccuracy: [], valLoss: [], iterations: 0, epochs: 1, stopReason: 'completed', seconds: 0 };
    const options: LossOptions = plan.loss.sampleWeights ? { ...plan.lossOptions, sampleWeights: plan.loss.sampleWeights } : plan.lossOptions;

    const x = new Float64Array(n);
    const g = new Float64Array(n);
    const d = new Float64Array(n);
    const xNew = new Float64Array(n);
    const gNew = new Float64Array(n);
    const S: Float64Array[] = [];
    const Y: Float64Array[] = [];
    const rho: number[] = [];
    const alpha = new Float64Array(memory);
    const trialW: Matrix = { data: allocate(this.dtype, P), rows: D, cols: K };
    const trialB = allocate(this.dtype, K);
    const dot = (u: Float64Array, v: Float64Array) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += u[i]! * v[i]!;
      return s;
    };
    const gather = (r: LossResult, into: Float64Array) => {
      into.set(r.dW.data);
      into.set(r.db!, P);
    };

    for (let i = 0; i < P; i++) x[i] = W.data[i]!;
    for (let k = 0; k < K; k++) x[P + k] = b[k]!;
    let first: LossResult;
    try {
      first = (yield { kind: 'loss', X: train.X, y: train.y, W, b, options }) as LossResult;
    } catch (error) {
      if (isNonFinite(error)) throw this.#fail(divergedError(0, true, 'a loss that is not finite at the starting weights', error), history, start);
      throw error;
    }
    let f = first.loss;
    gather(first, g);
    history.loss.push(f);
    let gNorm = maxNorm(g);
    let rows = train.N;

    for (let it = 0; it < totalSteps; it++) {
      if (gNorm < tolerance) {
        history.stopReason = 'converged';
        break;
      }
      if (signal?.aborted) throw this.#fail(abortedError(signal, it), history, start);
      // Two-loop recursion: d = −H·g.
      for (let i = 0; i < n; i++) d[i] = -g[i]!;
      const m = S.length;
      for (let j = m - 1; j >= 0; j--) {
        alpha[j] = rho[j]! * dot(S[j]!, d);
        const yj = Y[j]!;
        for (let i = 0; i < n; i++) d[i] = d[i]! - alpha[j]! * yj[i]!;
      }
      if (m > 0) {
        const gamma = dot(S[m - 1]!, Y[m - 1]!) / dot(Y[m - 1]!, Y[m - 1]!);
        for (let i = 0; i < n; i++) d[i] = d[i]! * gamma;
      }
      for (let j = 0; j < m; j++) {
        const beta = rho[j]! * dot(Y[j]!, d);
        const sj = S[j]!;
        for (let i = 0; i < n; i++) d[i] = d[i]! + (alpha[j]! - beta) * sj[i]!;
      }
      let gd = dot(g, d);
      if (!(gd < 0)) {
        // Not a descent direction (should not happen with positive curvature pairs): restart.
        S.length = 0;
        Y.length = 0;
        rho.length = 0;
        for (let i = 0; i < n; i++) d[i] = -g[i]!;
        gd = dot(g, d);
      }
      let step = S.length === 0 ? Math.min(1, 1 / Math.sqrt(-gd)) : 1;

      // Backtracking line search to the Armijo condition. Near the optimum the decrease it asks for
      // falls below the rounding of the loss itself (≈ ε·|f|), and Armijo then accepts or refuses by
      // noise; there the approximate Wolfe conditions of Hager and Zhang decide from the trial
      // gradient instead: a loss within rounding of f and a directional derivative that has risen
      // from gd to within [σ·gd, (2δ − 1)·gd].
      const c1 = 1e-4;
      const approximatelyWolfe = (r: LossResult, f0: number, gd0: number): boolean => {
        if (!(Math.abs(r.loss - f0) <= 16 * Number.EPSILON * Math.max(1, Math.abs(f0)))) return false;
        let gdNew = 0;
        for (let i = 0; i < P; i++) gdNew += r.dW.data[i]! * d[i]!;
        for (let k = 0; k < K; k++) gdNew += r.db![k]! * d[P + k]!;
        return gdNew >= 0.9 * gd0 && gdNew <= (2 * 0.1 - 1) * gd0;
      };
      let accepted: LossResult | null = null;
      let fNew = NaN;
      for (let tries = 0; tries < 40; tries++) {
        for (let i = 0; i < P; i++) trialW.data[i] = x[i]! + step * d[i]!;
        for (let k = 0; k < K; k++) trialB[k] = x[P + k]! + step * d[P + k]!;
        let r: LossResult | null = null;
        try {
          r = (yield { kind: 'loss', X: train.X, y: train.y, W: trialW, b: trialB, options }) as LossResult;
        } catch (error) {
          if (!isNonFinite(error)) throw error;
        }
        rows += train.N;
        if (r && Number.isFinite(r.loss) && (r.loss <= f + c1 * step * gd || approximatelyWolfe(r, f, gd))) {
          accepted = r;
          fNew = r.loss;
          break;
        }
        // Minimiser of the quadratic through f, f'(0) = gd and f(step), kept within [0.1, 0.5]·step.
        const fs = r ? r.loss : NaN;
        const q = Number.isFinite(fs) ? (-gd * step * step) / (2 * (fs - f - gd * step)) : 0.5 * step;
        step = Math.min(0.5 * step, Math.max(0.1 * step, q));
      }
      if (!accepted) {
        history.stopReason = 'line-search-failed';
        break;
      }
      for (let i = 0; i < P; i++) xNew[i] = trialW.data[i]!;
      for (let k = 0; k < K; k++) xNew[P + k] = trialB[k]!;
      gather(accepted, gNew);
      const s = new Float64Array(n);
      const yv = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        s[i] = xNew[i]! - x[i]!;
        yv[i] = gNew[i]! - g[i]!;
      }
      const sy = dot(s, yv);
      if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(yv, yv))) {
        if (S.length === memory) {
          S.shift();
          Y.shift();
          rho.shift();
        }
        S.push(s);
        Y.push(yv);
        rho.push(1 / sy);
      }
      x.set(xNew);
      g.set(gNew);
      f = fNew;
      gNorm = maxNorm(g);
      W.data.set(trialW.data);
      b.set(trialB);
      history.loss.push(f);
      history.iterations = it + 1;
      history.gradientMaxNorm = gNorm;
      const event: ProgressEvent = {
        iteration: it + 1,
        iterations: totalSteps,
        epoch: 1,
        loss: f,
        learningRate: step,
        rowsPerSecond: rows / Math.max(1e-9, (now() - start) / 1000),
        epochEnd: false,
        gradientMaxNorm: gNorm,
      };
      plan.onProgress?.(event);
    }
    if (gNorm < tolerance) history.stopReason = 'converged';
    history.gradientMaxNorm = gNorm;
    const last: ProgressEvent = {
      iteration: history.iterations,
      iterations: totalSteps,
      epoch: 1,
      loss: f,
      learningRate: 0,
      rowsPerSecond: rows / Math.max(1e-9, (now() - start) / 1000),
      epochEnd: true,
      gradientMaxNorm: gNorm,
    };
    yield* this.#measure(plan, history, last);
    plan.onProgress?.(last); // the closing event, with the accuracies
    history.seconds = (now() - start) / 1000;
    return history;
  }

  #fail(error: Error & CodedError, history: TrainHistory, start: number): TrainError {
    history.seconds = (now() - start) / 1000;
    return Object.assign(error, { history });
  }

  // ------------------------------------------------------------------ serialisation

  /** The model as JSON-ready data (see ClassifierJSON): lossless, with a format version. */
  toJSON(): ClassifierJSON {
    const json: ClassifierJSON = {
      format: CLASSIFIER_FORMAT,
      version: CLASSIFIER_FORMAT_VERSION,
      dtype: this.dtype,
      features: this.features,
      classes: this.classes,
      encoding: 'base64-le',
      W: encodeFloats(this.#W.data),
      b: encodeFloats(this.#b),
      seed: this.seed,
      rng: this.#rng.state(),
    };
    if (this.labels) json.labels = [...this.labels];
    return json;
  }

  /** A classifier from toJSON()'s data (or its JSON text), checked field by field. Unknown fields are ignored. */
  static fromJSON(json: ClassifierJSON | string): SoftmaxClassifier {
    let data: unknown = json;
    if (typeof json === 'string') {
      try {
        data = JSON.parse(json);
      } catch (error) {
        throw rangeError('ERR_TYPE', 'json', 'JSON text of a softmax-simd classifier', `text that does not parse (${(error as Error).message})`);
      }
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw typeError('ERR_TYPE', 'json', 'a classifier object from toJSON()', data);
    const j = data as Record<string, unknown>;
    if (j.format !== CLASSIFIER_FORMAT) throw rangeError('ERR_OPTION', 'json.format', JSON.stringify(CLASSIFIER_FORMAT), JSON.stringify(j.format) ?? 'undefined');
    if (j.version !== CLASSIFIER_FORMAT_VERSION) {
      throw rangeError('ERR_OPTION', 'json.version', `${CLASSIFIER_FORMAT_VERSION} (the format version this softmax-simd reads)`, JSON.stringify(j.version) ?? 'undefined');
    }
    if (j.encoding !== 'base64-le') throw rangeError('ERR_OPTION', 'json.encoding', "'base64-le'", JSON.stringify(j.encoding) ?? 'undefined');
    if (j.rng !== undefined && !(Array.isArray(j.rng) && j.rng.length === 4 && j.rng.every((v) => Number.isInteger(v) && v >= 0 && v < 4294967296) && j.rng.some((v) => v !== 0))) {
      throw rangeError('ERR_OPTION', 'json.rng', 'four unsigned 32-bit integers, not all 0', JSON.stringify(j.rng));
    }
    const model = new SoftmaxClassifier({
      features: j.features as number,
      classes: j.classes as number,
      dtype: j.dtype as Dtype,
      seed: j.seed as number,
      ...(j.labels === undefined ? {} : { labels: j.labels as (string | number)[] }),
    });
    decodeFloats('json.W', j.W, model.#W.data);
    decodeFloats('json.b', j.b, model.#b);
    if (j.rng !== undefined) model.#rng = Rng.fromState(j.rng as number[]);
    return model;
  }
}

function checkClassLabels(name: string, value: unknown, K: number): (string | number)[] {
  if (!Array.isArray(value)) throw typeError('ERR_OPTION', name, `an array of ${K} class names (strings or numbers)`, value);
  if (value.length !== K) throw rangeError('ERR_OPTION', `${name}.length`, `${K} (one name per class)`, String(value.length));
  const seen = new Set<string | number>();
  value.forEach((v, i) => {
    if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) throw typeError('ERR_OPTION', `${name}[${i}]`, 'a string or a finite number', v);
    if (seen.has(v)) throw rangeError('ERR_OPTION', `${name}[${i}]`, 'a name no other class has', JSON.stringify(v));
    seen.add(v);
  });
  return [...value] as (string | number)[];
}

function encodeFloats(a: FloatArray): string {
  const bytes = new Uint8Array(a.length * a.BYTES_PER_ELEMENT);
  const view = new DataView(bytes.buffer);
  if (a instanceof Float32Array) for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i]!, true);
  else for (let i = 0; i < a.length; i++) view.setFloat64(i * 8, a[i]!, true);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function decodeFloats(name: string, value: unknown, into: FloatArray): void {
  if (typeof value !== 'string') throw typeError('ERR_TYPE', name, 'base64 text', value);
  const bytes = Buffer.from(value, 'base64');
  const size = into.BYTES_PER_ELEMENT;
  if (bytes.length !== into.length * size || bytes.toString('base64') !== value.replace(/\s+/g, '')) {
    throw rangeError('ERR_SHAPE', name, `base64 of ${into.length} × ${size} = ${into.length * size} bytes`, `${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < into.length; i++) {
    const v = size === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
    if (!Number.isFinite(v)) throw rangeError('ERR_NON_FINITE', `${name}[${i}]`, 'a finite weight', String(v));
    into[i] = v;
  }
}

