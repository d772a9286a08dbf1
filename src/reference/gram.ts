// The labelled Gram matrix in plain float64 (DESIGN.md §1): Q_ij = y_i y_j x_iᵀ x_j, one entry at a
// time, no symmetry, no blocking. The witness the native kernels are tested against; it imports
// nothing from the native side.
import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { codedError } from '../errors.js';
import type { FloatArray, Matrix } from '../types.js';
import { checkGramArgs } from '../validate.js';

/**
 * Rows [rowStart, rowEnd) of Q, each entry summed in float64 and rounded once to X's dtype, written
 * into `out` when given (X's dtype, (rowEnd − rowStart)·N elements), else into a new array.
 */
export function labeledGramRaw(X: Matrix, y: ArrayLike<number>, rowStart: number, rowEnd: number, out?: FloatArray): Matrix {
  const N = X.rows;
  const D = X.cols;
  const x = X.data;
  const rows = rowEnd - rowStart;
  out ??= X.data instanceof Float32Array ? new Float32Array(rows * N) : new Float64Array(rows * N);
  for (let i = rowStart; i < rowEnd; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += (x[i * D + d] as number) * (x[j * D + d] as number);
      out[(i - rowStart) * N + j] = (y[i] as number) * (y[j] as number) * s;
    }
  }
  return { data: out, rows, cols: N };
}

/** The validated reference: the signature and errors of the package's labeledGram. */
export function labeledGram<T extends FloatArray>(
  X: Matrix<T>,
  y: T,
  options?: { rows?: readonly [number, number]; threads?: number; out?: T },
): Matrix<T> {
  const a = checkGramArgs(X, y, options, Math.min(totalmem(), constants.MAX_LENGTH));
  try {
    return labeledGramRaw(a.X, a.y, a.rowStart, a.rowEnd, a.out) as Matrix<T>;
  } catch (error) {
    if (error instanceof RangeError) throw codedError('ERR_TOO_LARGE', `softmax-simd: cannot allocate Q (${error.message}); compute it in row blocks with options.rows = [start, end]`);
    throw error;
  }
}
