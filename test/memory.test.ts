// allocMatrix: zero-filled matrices of either dtype; from 32 MiB on (Linux, native addon) on memory
// advised for huge pages, which the passes read to the same bits as any other array.
import { existsSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { describe, expect, test } from 'vitest';
import { allocMatrix, backend, lossAndGradients, lossAndGradientsAsync, predict, scores, type Dtype } from '../src/index.js';
import { bitwiseEqual, randomLabels, randomMatrix, rng } from './helpers.js';

const MiB = 1024 * 1024;
const dtypes: Dtype[] = ['float32', 'float64'];

// A kernel built without transparent huge pages refuses the advice (allocMatrix then makes a plain array).
const advising = process.platform === 'linux' && backend().native && existsSync('/sys/kernel/mm/transparent_hugepage/enabled');

/** This process's mappings advised for huge pages (VmFlags "hg" in /proc/self/smaps), by address range → bytes. */
function advisedMappings(): Map<string, number> {
  const out = new Map<string, number>();
  let range = '';
  let size = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) {
      range = `${m[1]}-${m[2]}`;
      size = parseInt(m[2]!, 16) - parseInt(m[1]!, 16);
    } else if (line.startsWith('VmFlags:') && / hg/.test(line)) out.set(range, size);
  }
  return out;
}

/**
 * True when the matrix is allocMatrix's advised form: a buffer of whole 2 MiB spans, 2 to 4 MiB
 * longer than the matrix, which starts within its first 2 MiB (at the first 2 MiB boundary of the
 * memory: kernel_test checks that address, which JavaScript cannot see).
 */
function isAdvisedForm(data: ArrayBufferView): boolean {
  const extra = data.buffer.byteLength - data.byteLength;
  return data.buffer.byteLength % (2 * MiB) === 0 && extra >= 2 * MiB && extra < 4 * MiB && data.byteOffset < 2 * MiB;
}

describe('allocMatrix', () => {
  test.each([
    ['float32', 3, 5, Float32Array, false],
    ['float64', 1, 1, Float64Array, false],
    ['float32', 4096, 2048, Float32Array, true], // exactly 32 MiB: advised
    ['float64', 1000, 4195, Float64Array, true], // just over 32 MiB, rows not a power of two
    ['float32', 4095, 2048, Float32Array, false], // just under 32 MiB: an ordinary array
  ] as const)('%s %i × %i: zero-filled, the right type and length, writable to the end (advised: %s)', (dtype, rows, cols, Arr, advised) => {
    const m = allocMatrix(rows, cols, dtype);
    expect(m.rows).toBe(rows);
    expect(m.cols).toBe(cols);
    expect(m.data).toBeInstanceOf(Arr);
    expect(m.data.length).toBe(rows * cols);
    expect(m.data.every((v) => v === 0)).toBe(true);
    m.data[0] = -1;
    m.data[m.data.length - 1] = 7.5;
    expect(m.data[m.data.length - 1]).toBe(7.5);
    if (m.data.length > 1) expect(m.data[0]).toBe(-1);
    if (advised && advising) {
      expect(isAdvisedForm(m.data)).toBe(true);
    } else {
      expect(m.data.byteOffset).toBe(0);
      expect(m.data.buffer.byteLength).toBe(m.data.byteLength);
    }
  });

  test('float32 is the default dtype', () => {
    expect(allocMatrix(2, 2).data).toBeInstanceOf(Float32Array);
  });

  // glibc's own huge-page tunable advises every large allocation itself: nothing to tell apart then.
  const glibcAdvises = (process.env.GLIBC_TUNABLES ?? '').includes('hugetlb');
  test.runIf(advising && !glibcAdvises)('from 32 MiB on, the matrix lies in a new mapping advised for huge pages; under it, none is made', () => {
    const before = advisedMappings();
    const fresh = () => [...advisedMappings()].filter(([range]) => !before.has(range));
    allocMatrix(4095, 2048); // 32 MiB − 8 KiB
    expect(fresh()).toEqual([]);
    const m = allocMatrix(4096, 4096); // 64 MiB
    const added = fresh();
    expect(added.some(([, bytes]) => bytes >= 64 * MiB), JSON.stringify(added)).toBe(true);
    expect(isAdvisedForm(m.data)).toBe(true);
  });

  test.each(dtypes)('%s: the passes give the same bits on an allocMatrix X as on a plain one', async (dtype) => {
    const next = rng(dtype === 'float32' ? 11 : 12);
    const N = dtype === 'float32' ? 10711 : 5357, D = 785, K = 10; // just over 32 MiB: advised; odd sizes
    const plain = randomMatrix(dtype, N, D, next);
    const X = allocMatrix(N, D, dtype);
    if (advising) expect(isAdvisedForm(X.data)).toBe(true);
    X.data.set(plain.data);
    const W = randomMatrix(dtype, D, K, next, 0.1);
    const b = randomMatrix(dtype, 1, K, next, 0.1).data;
    const y = randomLabels(N, K, next);
    for (const threads of [1, 2, 3]) {
      const a = lossAndGradients(plain, y, W, b, { threads, reg: 1e-3 });
      const h = lossAndGradients(X, y, W, b, { threads, reg: 1e-3 });
      expect(h.loss).toBe(a.loss);
      expect(bitwiseEqual(h.dW.data, a.dW.data)).toBe(true);
      expect(bitwiseEqual(h.db!, a.db!)).toBe(true);
    }
    const queued = await lossAndGradientsAsync(X, y, W, b, { reg: 1e-3 });
    expect(queued.loss).toBe(lossAndGradients(plain, y, W, b, { reg: 1e-3 }).loss);
    expect(bitwiseEqual(scores(X, W, b).data, scores(plain, W, b).data)).toBe(true);
    expect(predict(X, W, b)).toEqual(predict(plain, W, b));
  });

  test.each([
    [() => allocMatrix(0, 3), RangeError, 'ERR_SHAPE', 'for rows but received 0'],
    [() => allocMatrix(3, 1.5), RangeError, 'ERR_SHAPE', 'for cols but received 1.5'],
    [() => allocMatrix('3' as unknown as number, 3), TypeError, 'ERR_SHAPE', 'for rows but received the string "3"'],
    [() => allocMatrix(3, 3, 'int32' as Dtype), RangeError, 'ERR_DTYPE', `Expected 'float32' or 'float64' for dtype but received the string "int32"`],
    [() => allocMatrix(3, 3, 32 as unknown as Dtype), TypeError, 'ERR_DTYPE', `Expected 'float32' or 'float64' for dtype but received the number 32`],
    [() => allocMatrix(2 ** 30, 2 ** 30, 'float64'), RangeError, 'ERR_TOO_LARGE', 'Expected a matrix of fewer than 2^53 bytes for rows × cols but received 1073741824 × 1073741824 float64 values'],
  ] as const)('bad arguments: %#', (fn, Cls, code, words) => {
    let caught: unknown;
    try {
      fn();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Cls);
    expect((caught as { code: string }).code).toBe(code);
    expect((caught as Error).message).toContain(words);
  });

  test("more than the machine's memory is a clear ERR_TOO_LARGE, before any allocation", () => {
    let caught: unknown;
    try {
      allocMatrix(2 ** 24, 2 ** 22); // 2^48 bytes
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RangeError);
    expect((caught as { code: string }).code).toBe('ERR_TOO_LARGE');
    expect((caught as Error).message).toBe(
      `Expected a matrix that fits in this machine's memory (${totalmem()} bytes) for rows × cols but received 16777216 × 4194304 float32 values (281474976710656 bytes)`,
    );
  });
});
