// allocMatrix: room for a large input, on memory the CPU reads faster (native/memory_hints.cpp).
import { native } from './backend.js';
import { codedError, rangeError, typeError } from './errors.js';
import type { Dtype, Matrix } from './types.js';
import { checkPositiveInteger } from './validate.js';

/** A huge page: 2 MiB. */
const HUGE_PAGE = 2 * 1024 * 1024;

/**
 * From this many bytes on, allocMatrix places the matrix on memory advised for huge pages; below it
 * the page walks saved are few, and the buffer's extra 2 MiB (see allocMatrix) would be a large share.
 */
export const LARGE_MATRIX_BYTES = 4 * HUGE_PAGE;

/**
 * A zero-filled rows × cols matrix to fill with a large X before training on it. On Linux, from
 * LARGE_MATRIX_BYTES on, it sits on whole 2 MiB spans advised for transparent huge pages before
 * anything touched them, so the passes over X take one TLB entry per 2 MiB instead of one per 4 KiB:
 * lossAndGradients on mnist-sized float32 data took 0.89× the time of a `new Float32Array` holding
 * the same values (one thread, Zen 4; README "Large inputs"). Elsewhere it is an ordinary typed array.
 * Either way `data` is a plain Float32Array / Float64Array over an ordinary ArrayBuffer (2 MiB longer
 * than the matrix when advised: the matrix starts at its first 2 MiB boundary, and the pages before
 * it are never touched), collected like any other.
 */
export function allocMatrix(rows: number, cols: number, dtype?: 'float32'): Matrix<Float32Array>;
export function allocMatrix(rows: number, cols: number, dtype: 'float64'): Matrix<Float64Array>;
export function allocMatrix(rows: number, cols: number, dtype?: Dtype): Matrix<Float32Array> | Matrix<Float64Array>;
export function allocMatrix(rows: number, cols: number, dtype: Dtype = 'float32'): Matrix<Float32Array> | Matrix<Float64Array> {
  checkPositiveInteger('rows', rows);
  checkPositiveInteger('cols', cols);
  if (dtype !== 'float32' && dtype !== 'float64') throw typeError('ERR_DTYPE', 'dtype', "'float32' or 'float64'", dtype);
  const Arr = dtype === 'float32' ? Float32Array : Float64Array;
  const length = rows * cols;
  const bytes = length * Arr.BYTES_PER_ELEMENT;
  if (!Number.isSafeInteger(bytes + HUGE_PAGE)) {
    throw rangeError('ERR_TOO_LARGE', 'rows × cols', 'at most 2^53 bytes of data', `${rows} × ${cols} ${dtype} values`);
  }
  const advise = bytes >= LARGE_MATRIX_BYTES ? native().adviseHugePages : undefined;
  try {
    if (!advise) return { data: new Arr(length), rows, cols } as Matrix<Float32Array> | Matrix<Float64Array>;
    const buffer = new ArrayBuffer(bytes + HUGE_PAGE);
    const offset = advise(buffer);
    return { data: new Arr(buffer, offset, length), rows, cols } as Matrix<Float32Array> | Matrix<Float64Array>;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw codedError('ERR_TOO_LARGE', `softmax-simd: cannot allocate a ${rows} × ${cols} ${dtype} matrix (${reason})`);
  }
}
