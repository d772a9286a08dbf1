// allocMatrix: zero-filled matrices of either dtype; from 8 MiB on (Linux, native addon) on memory
// advised for huge pages, which the passes read to the same bits as any other array.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { allocMatrix, backend, lossAndGradients, lossAndGradientsAsync, predict, scores, type Dtype } from '../src/index.js';
import { bitwiseEqual, randomLabels, randomMatrix, rng } from './helpers.js';

const MiB = 1024 * 1024;
const dtypes: Dtype[] = ['float32', 'float64'];

/** Bytes of this process's mappings advised for huge pages (VmFlags "hg" in /proc/self/smaps). */
function advisedBytes(): number {
  let total = 0;
  let size = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) size = parseInt(range[2]!, 16) - parseInt(range[1]!, 16);
    else if (line.startsWith('VmFlags:') && / hg/.test(line)) total += size;
  }
  return total;
}

describe('allocMatrix', () => {
  test.each([
    ['float32', 3, 5, Float32Array],
    ['float64', 1, 1, Float64Array],
    ['float32', 2048, 1024, Float32Array], // exactly 8 MiB: advised
    ['float64', 1000, 1049, Float64Array], // just over 8 MiB, rows not a power of two
    ['float32', 1023, 2048, Float32Array], // just under 8 MiB: ordinary
  ] as const)('%s %i × %i: zero-filled, the right type and length, writable to the end', (dtype, rows, cols, Arr) => {
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
  });

  test('float32 is the default dtype', () => {
    expect(allocMatrix(2, 2).data).toBeInstanceOf(Float32Array);
  });

  test.runIf(process.platform === 'linux' && backend().native)(
    'from 8 MiB on, the matrix starts a 2 MiB span and its spans are advised for huge pages',
    () => {
      const before = advisedBytes();
      const small = allocMatrix(1023, 2048); // 8 MiB − 8 KiB
      expect(advisedBytes() - before).toBe(0);
      expect(small.data.byteOffset).toBe(0);
      const m = allocMatrix(4096, 4096); // 64 MiB
      expect(advisedBytes() - before).toBeGreaterThanOrEqual(64 * MiB);
      expect(m.data.byteOffset).toBeLessThan(2 * MiB);
      expect(m.data.buffer.byteLength).toBe(64 * MiB + 2 * MiB);
    },
  );

  test.each(dtypes)('%s: the passes give the same bits on an allocMatrix X as on a plain one', async (dtype) => {
    const next = rng(dtype === 'float32' ? 11 : 12);
    const N = 2731, D = 785, K = 10; // over 8 MiB in both dtypes; prime-ish sizes
    const plain = randomMatrix(dtype, N, D, next);
    const X = allocMatrix(N, D, dtype);
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
    [() => allocMatrix(3, 3, 'int32' as Dtype), TypeError, 'ERR_DTYPE', `Expected 'float32' or 'float64' for dtype but received the string "int32"`],
    [() => allocMatrix(2 ** 30, 2 ** 30, 'float64'), RangeError, 'ERR_TOO_LARGE', 'at most 2^53 bytes'],
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

  test('more than the engine can hold is a clear ERR_TOO_LARGE', () => {
    let caught: unknown;
    try {
      allocMatrix(70000, 70000); // 4.9·10^9 elements: past a typed array's length limit
    } catch (error) {
      caught = error;
    }
    expect((caught as { code: string }).code).toBe('ERR_TOO_LARGE');
    expect((caught as Error).message).toContain('cannot allocate a 70000 × 70000 float32 matrix');
  });
});
