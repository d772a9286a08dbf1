// The labelled Gram matrix of the SVM dual, Q = (y∘X)(y∘X)ᵀ (DESIGN.md §1), or a block of its
// rows: validate, allocate Q, hand zero-copy views to the addon (binding/gram.cpp).
import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { native, threadsFor } from './backend.js';
import { codedError, rangeError, withCallerStack } from './errors.js';
import { allocate } from './prepare.js';
import { labeledGramRaw } from './reference/gram.js';
import type { FloatArray, Matrix } from './types.js';
import { checkGramArgs, type GramArgs } from './validate.js';

export interface GramOptions {
  /** Only rows [start, end) of Q: a (end − start)×N block, for a Q too large to hold at once. */
  rows?: readonly [number, number];
  /** Threads for this call (default: the value of setThreads). */
  threads?: number;
  /**
   * Write the result here instead of a fresh array: X's dtype, exactly (end − start)·N elements,
   * sharing no memory with X or y; the returned Matrix's data is this array. Reusing one buffer
   * across calls (row blocks of a large Q, say) saves the allocation and the page faults of a fresh
   * result, which for a 64 MiB Q cost as much as a fifth of the call.
   */
  out?: FloatArray;
}

interface PreparedGram {
  args: GramArgs;
  out: FloatArray;
  native: Record<string, unknown>;
}

function prepare(X: unknown, y: unknown, options: unknown): PreparedGram {
  const args = checkGramArgs(X, y, options, Math.min(totalmem(), constants.MAX_LENGTH));
  const rows = args.rowEnd - args.rowStart;
  let out: FloatArray;
  try {
    out = args.out ?? allocate(args.dtype, rows * args.N);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw rangeError(
      'ERR_TOO_LARGE',
      `the result of labeledGram (rows [${args.rowStart}, ${args.rowEnd}) of the ${args.N}×${args.N} Q)`,
      'a block this process can allocate; compute Q in smaller row blocks with options.rows = [start, end]',
      `an allocation failure (${error.message})`,
    );
  }
  const nativeArgs = {
    X: args.X.data,
    N: args.N,
    D: args.D,
    y: args.y,
    rowStart: args.rowStart,
    rowEnd: args.rowEnd,
    out,
    threads: threadsFor(args.threads),
  };
  return { args, out, native: nativeArgs };
}

function result<T extends FloatArray>(p: PreparedGram): Matrix<T> {
  return { data: p.out as T, rows: p.args.rowEnd - p.args.rowStart, cols: p.args.N };
}

function fallback(p: PreparedGram): void {
  labeledGramRaw(p.args.X, p.args.y, p.args.rowStart, p.args.rowEnd, p.out);
}

const noMemory = () => codedError('ERR_NATIVE', 'softmax-simd: out of memory for the scratch buffers of labeledGram');

/**
 * The labelled Gram matrix Q_ij = y_i y_j x_iᵀ x_j of X (N×D) and y (N reals, usually ±1, in X's
 * dtype): N×N, symmetric (bitwise) and positive semi-definite; or, with options.rows = [start, end],
 * only those rows of it ((end − start)×N), so that a Q too large for memory can be streamed.
 */
export function labeledGram<T extends FloatArray>(X: Matrix<T>, y: T, options?: GramOptions): Matrix<T> {
  const p = prepare(X, y, options);
  const addon = native();
  if (addon.labeledGram) {
    if (!addon.labeledGram(p.native)) throw noMemory();
  } else {
    fallback(p);
  }
  return result<T>(p);
}

/** labeledGram off the event loop. The inputs stay referenced until it settles; do not modify them meanwhile. */
export async function labeledGramAsync<T extends FloatArray>(X: Matrix<T>, y: T, options?: GramOptions): Promise<Matrix<T>> {
  const caller = new Error();
  const p = prepare(X, y, options);
  const addon = native();
  if (addon.labeledGramAsync) {
    if (!(await addon.labeledGramAsync(p.native))) throw withCallerStack(noMemory(), caller);
  } else {
    fallback(p);
  }
  return result<T>(p);
}
