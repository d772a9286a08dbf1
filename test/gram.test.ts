// The labelled Gram matrix Q = (y∘X)(y∘X)ᵀ: the hand example of DESIGN.md §1, the native kernels of
// every ISA this machine runs against the float64 reference (both dtypes, odd sizes, views at odd
// offsets), the bitwise properties (symmetry, row blocks, threads, async), the diagonal, positive
// semi-definiteness, and every validation error.
import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { afterAll, describe, expect, test } from 'vitest';
import { backend, native } from '../src/backend.js';
import { labeledGram, labeledGramAsync, reference, type Dtype, type FloatArray, type Matrix } from '../src/index.js';
import { checkGramArgs } from '../src/validate.js';
import { array, bitwiseEqual, offsetView, randomMatrix, rng } from './helpers.js';

const SUPPORTED = backend().supported;
afterAll(() => {
  native().selectIsa('auto');
});

/** Unit roundoff of each dtype. */
const U: Record<Dtype, number> = { float32: 2 ** -24, float64: 2 ** -53 };
/** The D-chunk after which the kernels sum in float64: 4 KiB of a row (native/kernels/gram.hpp gram_chunk). */
const CHUNK: Record<Dtype, number> = { float32: 1024, float64: 512 };
/** The fewest lanes a dot-form f32 SIMD kernel spreads a chunk over (NEON: 4; scalar sums in f64). */
const MIN_LANES = 4;
/** The longest slice the outer-product f32 kernels (AVX2, AVX-512) sum in one f32 chain (kGramChainOp). */
const OP_SLICE = 256;

/**
 * |Q_native − Q_reference| allowed for entry (i, j), derived from the error analysis of the kernels:
 * a float32 running sum adds at most max(ceil(min(D, CHUNK) / MIN_LANES), min(D, OP_SLICE)) products
 * per chunk (γ_m ≈ m·u relative to Σ|x_i[d] x_j[d]|), the float64 steps (lanes, slices, chunks, the
 * reference's own sum) at most D + 8 roundings of 2^-53; then both sides round y_i y_j s to the dtype
 * once (u·|Q| each).
 */
function entryTolerance(dtype: Dtype, D: number, absdot: number, yy: number, q: number): number {
  const chunks = Math.ceil(D / CHUNK[dtype]);
  const laneTerms =
    dtype === 'float32' ? Math.max(Math.ceil(Math.min(D, CHUNK[dtype]) / MIN_LANES), Math.min(D, OP_SLICE)) + 4 : 0;
  const kernel = chunks * laneTerms * U[dtype] + (D + 8) * U.float64;
  return Math.abs(yy) * kernel * absdot * (1 + 4 * U[dtype]) + 2 * U[dtype] * Math.abs(q) + Number.MIN_VALUE;
}

function absDots(X: Matrix, i: number, j: number): number {
  const D = X.cols;
  let s = 0;
  for (let d = 0; d < D; d++) s += Math.abs(X.data[i * D + d]! * X.data[j * D + d]!);
  return s;
}

function randomY(dtype: Dtype, N: number, next: () => number): FloatArray {
  const y = array(dtype, N);
  // ±1 as in the SVM dual, and some other reals (y is any real here).
  for (let i = 0; i < N; i++) y[i] = i % 5 === 4 ? 3 * next() - 1.5 : next() < 0.5 ? -1 : 1;
  return y;
}

/** Compares with the reference entry by entry; returns the worst |error| / tolerance. */
function expectNearReference(Q: Matrix, X: Matrix, y: FloatArray, rowStart: number, what: string): number {
  const dtype: Dtype = X.data instanceof Float32Array ? 'float32' : 'float64';
  const R = reference.labeledGram(X, y, { rows: [rowStart, rowStart + Q.rows] });
  expect(Q.rows).toBe(R.rows);
  expect(Q.cols).toBe(R.cols);
  expect(Q.data.constructor).toBe(X.data.constructor);
  let worst = 0;
  for (let a = 0; a < Q.rows; a++) {
    for (let j = 0; j < Q.cols; j++) {
      const i = rowStart + a;
      const k = a * Q.cols + j;
      const tol = entryTolerance(dtype, X.cols, absDots(X, i, j), y[i]! * y[j]!, R.data[k]!);
      const err = Math.abs(Q.data[k]! - R.data[k]!);
      if (!(err <= tol)) expect.fail(`${what}: Q[${i}][${j}] = ${Q.data[k]} but the reference is ${R.data[k]} (|error| ${err} > ${tol})`);
      worst = Math.max(worst, err / tol);
    }
  }
  return worst;
}

function expectBitwiseSymmetric(Q: Matrix, what: string): void {
  const N = Q.rows;
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      if (!Object.is(Q.data[i * N + j], Q.data[j * N + i])) {
        expect.fail(`${what}: Q[${i}][${j}] = ${Q.data[i * N + j]} but Q[${j}][${i}] = ${Q.data[j * N + i]}`);
      }
    }
  }
}

/** vᵀQv ≥ −ε for random v, ε from the entry tolerances and the float64 evaluation of vᵀQv. */
function expectPsd(Q: Matrix, X: Matrix, y: FloatArray, next: () => number, what: string): void {
  const dtype: Dtype = X.data instanceof Float32Array ? 'float32' : 'float64';
  const N = Q.rows;
  for (let trial = 0; trial < 4; trial++) {
    const v = Array.from({ length: N }, () => 2 * next() - 1);
    let quad = 0;
    let eps = 0;
    let absQuad = 0;
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        const q = Q.data[i * N + j]!;
        quad += v[i]! * q * v[j]!;
        absQuad += Math.abs(v[i]! * q * v[j]!);
        eps += Math.abs(v[i]! * v[j]!) * entryTolerance(dtype, X.cols, absDots(X, i, j), y[i]! * y[j]!, q);
      }
    }
    eps += (N * N + 2) * U.float64 * absQuad;
    expect(quad, `${what}: vᵀQv (trial ${trial})`).toBeGreaterThanOrEqual(-eps);
  }
}

describe('labeledGram: the hand example of DESIGN.md §1', () => {
  const expected = [5, -11, -1, -11, 25, 3, -1, 3, 1];
  for (const dtype of ['float32', 'float64'] as const) {
    const make = (a: number[]) => (dtype === 'float32' ? new Float32Array(a) : new Float64Array(a));
    const X = { data: make([1, 2, 3, 4, -1, 0]), rows: 3, cols: 2 };
    const y = make([1, -1, 1]);
    test(`${dtype}: native, async and reference give Q = [[5,−11,−1],[−11,25,3],[−1,3,1]]`, async () => {
      const Q = labeledGram(X, y);
      expect(Q.rows).toBe(3);
      expect(Q.cols).toBe(3);
      expect(Q.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
      expect(Array.from(Q.data)).toEqual(expected);
      expect(Array.from((await labeledGramAsync(X, y)).data)).toEqual(expected);
      expect(Array.from(reference.labeledGram(X, y).data)).toEqual(expected);
      expect(Array.from(labeledGram(X, y, { rows: [1, 2] }).data)).toEqual([-11, 25, 3]);
    });
  }
});

describe.each(SUPPORTED)('labeledGram with ISA %s', (isa) => {
  const select = () => {
    native().selectIsa(isa);
    expect(backend().isa).toBe(isa);
  };

  for (const dtype of ['float32', 'float64'] as const) {
    test(`${dtype}: odd sizes against the float64 reference, views at odd offsets, symmetry, diagonal`, () => {
      select();
      const next = rng(dtype === 'float32' ? 71 : 72);
      const sizes = [1, 2, 3, 7, 8, 9, 17, 31, 97];
      for (const N of sizes) {
        for (const D of sizes) {
          const X0 = randomMatrix(dtype, N, D, next);
          const X = { data: offsetView(X0.data, 1 + ((N + D) % 3)), rows: N, cols: D };
          const y = offsetView(randomY(dtype, N, next), 3);
          const Q = labeledGram(X, y, { threads: 2 });
          const what = `${isa} ${dtype} N=${N} D=${D}`;
          expectNearReference(Q, X, y, 0, what);
          expectBitwiseSymmetric(Q, what);
          for (let i = 0; i < N; i++) {
            // The diagonal y_i²‖x_i‖²: non-negative exactly (a sum of squares in any order).
            let sq = 0;
            for (let d = 0; d < D; d++) sq += X.data[i * D + d]! ** 2;
            const qii = Q.data[i * N + i]!;
            expect(qii, `${what}: Q[${i}][${i}] >= 0`).toBeGreaterThanOrEqual(0);
            const tol = entryTolerance(dtype, D, sq, y[i]! ** 2, y[i]! ** 2 * sq);
            expect(Math.abs(qii - y[i]! ** 2 * sq), `${what}: Q[${i}][${i}] = y_i²‖x_i‖²`).toBeLessThanOrEqual(tol);
          }
        }
      }
    });

    test(`${dtype}: long rows (several D-chunks) and several tiles against the reference; PSD`, () => {
      select();
      const next = rng(dtype === 'float32' ? 81 : 82);
      for (const [N, D] of [
        [13, 1100],
        [9, 2100],
        [40, 513],
        [250, 33],
      ] as const) {
        const X = randomMatrix(dtype, N, D, next);
        const y = randomY(dtype, N, next);
        const Q = labeledGram(X, y);
        const what = `${isa} ${dtype} N=${N} D=${D}`;
        expectNearReference(Q, X, y, 0, what);
        expectBitwiseSymmetric(Q, what);
        expectPsd(Q, X, y, next, what);
      }
    });

    test(`${dtype}: row blocks stitch into the full Q bitwise; threads and async change nothing`, async () => {
      select();
      const next = rng(dtype === 'float32' ? 91 : 92);
      for (const [N, D] of [
        [97, 31],
        [420, 19],
      ] as const) {
        const X = randomMatrix(dtype, N, D, next);
        const y = randomY(dtype, N, next);
        const Q = labeledGram(X, y, { threads: 1 });
        expect(bitwiseEqual(labeledGram(X, y, { threads: 2 }).data, Q.data), 'threads 2').toBe(true);
        expect(bitwiseEqual(labeledGram(X, y, { threads: 7 }).data, Q.data), 'threads 7').toBe(true);
        expect(bitwiseEqual((await labeledGramAsync(X, y)).data, Q.data), 'async').toBe(true);
        for (const step of [1, 13, 200]) {
          const parts: number[] = [];
          for (let start = 0; start < N; start += step) {
            const end = Math.min(N, start + step);
            const block = start % 2 === 0 ? labeledGram(X, y, { rows: [start, end] }) : await labeledGramAsync(X, y, { rows: [start, end] });
            expect(block.rows).toBe(end - start);
            expect(block.cols).toBe(N);
            parts.push(...block.data);
          }
          expect(bitwiseEqual(parts, Q.data), `${isa} ${dtype} N=${N}: row blocks of ${step}`).toBe(true);
        }
      }
    });

    test(`${dtype}: Q does not depend on where X's data starts (the aligned copy of X changes no bit)`, () => {
      select();
      const next = rng(dtype === 'float32' ? 101 : 102);
      // 64 rows and more are copied to line-aligned rows when X is not on a line (native/gram.cpp);
      // fewer are read in place. Every start within a cache line, both ways, must give the same bits.
      for (const [N, D] of [
        [97, 16],
        [70, 100],
        [40, 33],
      ] as const) {
        const X0 = randomMatrix(dtype, N, D, next);
        const y = randomY(dtype, N, next);
        const Q = labeledGram(X0, y, { threads: 2 });
        expectNearReference(Q, X0, y, 0, `${isa} ${dtype} N=${N} D=${D}`);
        const lanesPerLine = 64 / X0.data.BYTES_PER_ELEMENT;
        for (let shift = 1; shift < lanesPerLine; shift++) {
          const X = { data: offsetView(X0.data, shift), rows: N, cols: D };
          expect(bitwiseEqual(labeledGram(X, y, { threads: 2 }).data, Q.data), `${isa} ${dtype} N=${N} D=${D} X shifted by ${shift}`).toBe(true);
          expect(bitwiseEqual(labeledGram(X, y, { threads: 1, rows: [3, N] }).data, Q.data.subarray(3 * N)), `rows [3, N), shift ${shift}`).toBe(true);
        }
      }
    });
  }
});

describe('labeledGram: validation errors', () => {
  const X = { data: new Float32Array([1, 2, 3, 4, -1, 0]), rows: 3, cols: 2 };
  const y = new Float32Array([1, -1, 1]);
  // X's data and the room after it in one buffer, for the aliasing cases of options.out.
  const SHARED = new Float32Array(15);
  SHARED.set(X.data);
  const SHARED_X = { data: SHARED.subarray(0, 6), rows: 3, cols: 2 };
  type Args = [unknown, unknown, unknown?];
  const cases: [string, Args, typeof TypeError | typeof RangeError, string, RegExp][] = [
    ['X not a matrix', [new Float32Array(4), y], TypeError, 'ERR_TYPE', /for X but/],
    ['X of the wrong size', [{ data: new Float32Array(5), rows: 3, cols: 2 }, y], RangeError, 'ERR_SHAPE', /X\.data\.length = rows × cols = 6/],
    ['y not a typed array', [X, [1, -1, 1]], TypeError, 'ERR_DTYPE', /for y but received an Array/],
    ['y in the other dtype', [X, new Float64Array([1, -1, 1])], TypeError, 'ERR_DTYPE', /Float32Array.*for y but/],
    ['y too short', [X, new Float32Array(2)], RangeError, 'ERR_SHAPE', /for y\.length but received 2/],
    ['y not finite', [X, new Float32Array([1, -1, NaN])], RangeError, 'ERR_NON_FINITE', /finite real .* for y\[2\] but received NaN/],
    ['y infinite', [X, new Float32Array([Infinity, 1, 1])], RangeError, 'ERR_NON_FINITE', /for y\[0\] but received Infinity/],
    ['options not an object', [X, y, 3], TypeError, 'ERR_OPTION', /options object for options/],
    ['unknown option', [X, y, { row: [0, 1] }], RangeError, 'ERR_OPTION', /for options\.row but/],
    ['rows not a pair', [X, y, { rows: 2 }], TypeError, 'ERR_OPTION', /for options\.rows but received the number 2/],
    ['rows of strings', [X, y, { rows: ['0', '1'] }], TypeError, 'ERR_OPTION', /for options\.rows/],
    ['rows empty', [X, y, { rows: [2, 2] }], RangeError, 'ERR_OPTION', /0 ≤ start < end ≤ N = 3 for options\.rows but received \[2, 2\]/],
    ['rows negative', [X, y, { rows: [-1, 2] }], RangeError, 'ERR_OPTION', /options\.rows but received \[-1, 2\]/],
    ['rows past N', [X, y, { rows: [0, 4] }], RangeError, 'ERR_OPTION', /options\.rows but received \[0, 4\]/],
    ['rows fractional', [X, y, { rows: [0.5, 2] }], RangeError, 'ERR_OPTION', /options\.rows but received \[0\.5, 2\]/],
    ['threads 0', [X, y, { threads: 0 }], RangeError, 'ERR_OPTION', /options\.threads/],
    ['out not a typed array', [X, y, { out: new Array(9).fill(0) }], TypeError, 'ERR_DTYPE', /a Float32Array for options\.out but received an Array/],
    ['out in the other dtype', [X, y, { out: new Float64Array(9) }], TypeError, 'ERR_DTYPE', /Float32Array \(one dtype for every array of a call\) for options\.out but/],
    ['out too short', [X, y, { out: new Float32Array(8) }], RangeError, 'ERR_SHAPE', /9 \(the \(end − start\) × N = 3 × 3 entries of the result\) for options\.out\.length but received 8/],
    ['out too long for the row block', [X, y, { rows: [1, 2], out: new Float32Array(9) }], RangeError, 'ERR_SHAPE', /3 \(the \(end − start\) × N = 1 × 3 entries of the result\) for options\.out\.length but received 9/],
    ['out overlapping X', [SHARED_X, y, { out: SHARED.subarray(5, 14) }], RangeError, 'ERR_OPTION', /a buffer that shares no memory with X or y for options\.out but received a view overlapping X\.data/],
    ['out overlapping y', [X, SHARED.subarray(0, 3), { out: SHARED.subarray(2, 11) }], RangeError, 'ERR_OPTION', /received a view overlapping y/],
  ];
  const fns: [string, (...a: Args) => unknown][] = [
    ['labeledGram', (...a) => labeledGram(...(a as [never, never, never]))],
    ['reference.labeledGram', (...a) => reference.labeledGram(...(a as [never, never, never]))],
  ];
  test.each(cases)('%s', (_name, args, Class, code, words) => {
    for (const [fname, fn] of fns) {
      let error: unknown;
      try {
        fn(...args);
      } catch (e) {
        error = e;
      }
      expect(error, fname).toBeInstanceOf(Class);
      expect((error as { code: string }).code, fname).toBe(code);
      expect((error as Error).message, fname).toMatch(words);
    }
  });

  test('a rejected call leaves options.out as it was', async () => {
    const out = new Float32Array(9).fill(7);
    expect(() => labeledGram(X, new Float32Array([1, NaN, 1]), { out })).toThrow(RangeError);
    expect(() => labeledGram(X, y, { out, rows: [0, 4] })).toThrow(RangeError);
    await expect(labeledGramAsync(X, new Float32Array([1, NaN, 1]), { out })).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
    const alias = SHARED.subarray(5, 14);
    const before = Array.from(SHARED);
    expect(() => labeledGram(SHARED_X, y, { out: alias })).toThrow(RangeError);
    expect(Array.from(out)).toEqual(new Array(9).fill(7));
    expect(Array.from(SHARED)).toEqual(before);
  });

  test('the same errors reject the async form, with the caller stack', async () => {
    const error = await labeledGramAsync(X, new Float32Array([1, NaN, 1])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as { code: string }).code).toBe('ERR_NON_FINITE');
    expect((error as Error).stack).toMatch(/gram\.test\.ts/);
  });

  test('a Q of more than 2³¹ − 1 elements is ERR_TOO_LARGE and suggests options.rows', async () => {
    const N = 50_000;
    const maxBytes = Math.min(totalmem(), constants.MAX_LENGTH);
    const big = { data: new Float32Array(N), rows: N, cols: 1 };
    const yy = new Float32Array(N).fill(1);
    for (const call of [() => labeledGram(big, yy), () => reference.labeledGram(big, yy)]) {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RangeError);
      expect((error as { code: string }).code).toBe('ERR_TOO_LARGE');
      const rows = Number(/options\.rows = \[start, end\], at most (\d+) rows per call/.exec((error as Error).message)?.[1]);
      // The suggestion is the largest block within both limits: 2³¹ − 1 elements, and the bytes.
      expect(rows).toBeGreaterThanOrEqual(1);
      expect(rows * N).toBeLessThanOrEqual(2 ** 31 - 1);
      expect((rows + 1) * N > Math.min(2 ** 31 - 1, maxBytes / 4)).toBe(true);
      expect((error as Error).message).toMatch(/received 2500000000 elements/);
    }
    await expect(labeledGramAsync(big, yy)).rejects.toMatchObject({ code: 'ERR_TOO_LARGE' });
    // The suggested block works.
    const block = labeledGram(big, yy, { rows: [0, 3] });
    expect(block.rows).toBe(3);
    expect(block.cols).toBe(N);
  });

  test('a Q of more bytes than the machine could allocate is ERR_TOO_LARGE', () => {
    try {
      checkGramArgs(X, y, undefined, 35);
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
      expect((e as { code: string }).code).toBe('ERR_TOO_LARGE');
      expect((e as Error).message).toMatch(/received 9 elements \(36 bytes\)/);
      expect((e as Error).message).toMatch(/at most 2 rows per call/);
    }
    expect(checkGramArgs(X, y, undefined, 36).rowEnd).toBe(3);
  });
});

describe('labeledGram: options.out', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    test(`${dtype}: the result is written into out, bitwise as a fresh one, whole and in reused row blocks`, async () => {
      const next = rng(4242);
      const N = 37;
      const X = randomMatrix(dtype, N, 19, next);
      const y = randomY(dtype, N, next);
      const Q = labeledGram(X, y);
      const out = array(dtype, N * N).fill(7);
      const R = labeledGram(X, y, { out });
      expect(R.data).toBe(out);
      expect([R.rows, R.cols]).toEqual([N, N]);
      expect(bitwiseEqual(out, Q.data)).toBe(true);
      // One block buffer reused for every block, sync and async: each block is the rows of Q.
      const block = array(dtype, 10 * N).fill(-3);
      for (let start = 0; start + 10 <= N; start += 10) {
        const B = start % 20 === 0 ? labeledGram(X, y, { rows: [start, start + 10], out: block }) : await labeledGramAsync(X, y, { rows: [start, start + 10], out: block });
        expect(B.data).toBe(block);
        expect(bitwiseEqual(block, Q.data.subarray(start * N, (start + 10) * N)), `rows ${start}..${start + 10}`).toBe(true);
      }
      // The reference honours out too.
      const refOut = array(dtype, N * N);
      const ref = reference.labeledGram(X, y, { out: refOut });
      expect(ref.data).toBe(refOut);
      expect(bitwiseEqual(refOut, reference.labeledGram(X, y).data)).toBe(true);
    });
  }

  test('out may share a buffer with X when the bytes do not overlap', () => {
    const shared = new Float64Array(6 + 9);
    shared.set([1, 2, 3, 4, -1, 0]);
    const X = { data: shared.subarray(0, 6), rows: 3, cols: 2 };
    const y = new Float64Array([1, -1, 1]);
    const Q = labeledGram(X, y, { out: shared.subarray(6) });
    // The hand example of DESIGN.md §1 (as in the first test): Q = [[5, −11, −1], [−11, 25, 3], [−1, 3, 1]].
    expect(Array.from(Q.data)).toEqual([5, -11, -1, -11, 25, 3, -1, 3, 1]);
    expect(Array.from(shared.subarray(0, 6))).toEqual([1, 2, 3, 4, -1, 0]);
  });
});
