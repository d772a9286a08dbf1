// softmax-simd: the softmax linear classifier of CS231n for Node.js, with a fused SIMD native core.
export { backend, setThreads, type BackendInfo } from './backend.js';
export { lossAndGradients, lossAndGradientsAsync, matrix, predict, predictAsync, scores, scoresAsync, softmax } from './linear.js';
export type { CodedError, ErrorCode } from './errors.js';
export type {
  Dtype,
  FloatArray,
  Labels,
  LossCallOptions,
  LossOptions,
  LossResult,
  Matrix,
  Reduction,
  RegConvention,
  Targets,
  ThreadOptions,
} from './types.js';
export * as reference from './reference/index.js';
export {
  SoftmaxClassifier,
  type ClassifierJSON,
  type ClassifierOptions,
  type Optimizer,
  type ProgressEvent,
  type StopReason,
  type TrainError,
  type TrainHistory,
  type TrainOptions,
} from './classifier.js';
export { gradCheck, type GradCheckEntry, type GradCheckOptions, type GradCheckResult } from './gradcheck.js';
export { GradientAccumulator, type AccumulatorOptions, type AccumulatorResult, type AddOptions, type ResultOptions } from './accumulator.js';
export { labeledGram, labeledGramAsync, type GramOptions } from './gram.js';
export { allocMatrix } from './memory.js';
