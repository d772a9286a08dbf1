export type FloatArray = Float32Array | Float64Array;
export type Dtype = 'float32' | 'float64';
export type Labels = Int32Array | Uint32Array | Uint16Array | Uint8Array | readonly number[];

/** A dense row-major matrix over a typed array; `data.length === rows * cols`. */
export interface Matrix<T extends FloatArray = FloatArray> {
  data: T;
  rows: number;
  cols: number;
}

/** Class labels (one per row), or an N×K matrix of probability targets (rows sum to 1). */
export type Targets<T extends FloatArray = FloatArray> = Labels | Matrix<T>;

export type RegConvention = 'full' | 'half';
export type Reduction = 'mean' | 'sum' | 'none';

export interface ThreadOptions {
  /** Threads for this call (default: the value of setThreads, initially os.availableParallelism()). */
  threads?: number;
}

export interface LossOptions extends ThreadOptions {
  /** L2 regularisation strength (default 0). */
  reg?: number;
  /** 'full': reg·ΣW², gradient 2·reg·W (default). 'half': ½·reg·ΣW², gradient reg·W. */
  regConvention?: RegConvention;
  /** Per-class weights w_c (K non-negative finite reals), as PyTorch's `weight`. */
  classWeights?: FloatArray | readonly number[];
  /** Per-row weights s_i (N non-negative finite reals): a row with weight 2 counts as that row twice. */
  sampleWeights?: FloatArray | readonly number[];
  /** Rows whose label equals this value contribute nothing (PyTorch's `ignore_index`). */
  ignoreIndex?: number;
  /** Label smoothing ε in [0, 1]. */
  labelSmoothing?: number;
  /** 'mean' (default), 'sum', or 'none' (also return the per-row losses). */
  reduction?: Reduction;
  /**
   * false: the CS231n "bias trick" — X carries a column of ones and b is passed as null (db is
   * then null). Optional: passing b = null alone means the same; the option makes it explicit and
   * checked.
   */
  bias?: boolean;
}

/** Options of lossAndGradients and lossAndGradientsAsync: LossOptions, and where to write the gradients. */
export interface LossCallOptions<T extends FloatArray = FloatArray> extends LossOptions {
  /**
   * Arrays of the call's dtype to write the gradients into, instead of new ones: dW (D·K entries,
   * row-major as W) and db (K entries; only when the model has a bias). The result's dW.data and db
   * are these arrays. They must not share memory with any input. A loop that reuses them allocates
   * nothing per call for the gradients. An async call writes them when it settles: two calls in
   * flight with the same arrays write the same memory, the later one last.
   */
  out?: { dW: T; db?: T | null };
}

export interface LossResult<T extends FloatArray = FloatArray> {
  loss: number;
  dW: Matrix<T>;
  /** The bias gradient; null when the model has no bias (b passed as null). */
  db: T | null;
  /** The N per-row losses, with reduction 'none' only. */
  losses?: T;
}
