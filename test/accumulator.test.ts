// GradientAccumulator: chunks equal one call; merge equals accumulation; bytes round-trip; a
// rejected add or merge changes nothing.
import { describe, expect, test } from 'vitest';
import { GradientAccumulator, lossAndGradients, type Dtype, type FloatArray, type Matrix } from '../src/index.js';
import { bitwiseEqual, expectAllClose, lossTolerances, randomLabels, randomMatrix, rng } from './helpers.js';

function data(dtype: Dtype, N: number, D: number, K: number, seed: number) {
  const next = rng(seed);
  return {
    X: randomMatrix(dtype, N, D, next),
    W: randomMatrix(dtype, D, K, next, 0.5),
    b: randomMatrix(dtype, 1, K, next).data,
    y: randomLabels(N, K, next),
  };
}

function rowsOf(X: Matrix, start: number, end: number): Matrix {
  return { data: X.data.subarray(start * X.cols, end * X.cols) as FloatArray, rows: end - start, cols: X.cols };
}

function addInChunks(acc: GradientAccumulator, X: Matrix, y: Int32Array, sizes: number[]) {
  let at = 0;
  let i = 0;
  while (at < X.rows) {
    const n = Math.min(sizes[i++ % sizes.length]!, X.rows - at);
    acc.add(rowsOf(X, at, at + n), y.subarray(at, at + n));
    at += n;
  }
}

describe.each(['float32', 'float64'] as const)('GradientAccumulator (%s)', (dtype) => {
  const N = 97;
  const { X, W, b, y } = data(dtype, N, 13, 5, 21);
  const whole = lossAndGradients(X, y, W, b, { reg: 0.05 });
  const tol = lossTolerances(dtype, X, W, b, 0.05);

  test.each([
    ['chunks of 1 row', [1]],
    ['chunks of odd sizes', [7, 3, 11, 1, 29]],
    ['one chunk of everything', [N]],
  ])('%s equal one call on all rows', (_, sizes) => {
    const acc = new GradientAccumulator(W, b, { reg: 0.05 });
    addInChunks(acc, X, y, sizes);
    expect(acc.count).toBe(N);
    const r = acc.result();
    expect(r.count).toBe(N);
    expect(Math.abs(r.loss - whole.loss)).toBeLessThanOrEqual(tol.loss);
    expectAllClose(r.dW.data, whole.dW.data, tol.dW, 'dW');
    expectAllClose(r.db!, whole.db!, tol.db, 'db');
  });

  test('merge equals accumulation, and bytes round-trip bit for bit', () => {
    const a = new GradientAccumulator(W, b);
    const c = new GradientAccumulator(W, b);
    a.add(rowsOf(X, 0, 40), y.subarray(0, 40));
    c.add(rowsOf(X, 40, N), y.subarray(40, N));
    const serial = new GradientAccumulator(W, b);
    serial.add(rowsOf(X, 0, 40), y.subarray(0, 40));
    serial.add(rowsOf(X, 40, N), y.subarray(40, N));
    const merged = GradientAccumulator.fromBytes(a.toBytes()).merge(GradientAccumulator.fromBytes(c.toBytes()));
    const r1 = merged.result({ reg: 0.05 });
    const r2 = serial.result({ reg: 0.05 });
    expect(Object.is(r1.loss, r2.loss)).toBe(true);
    expect(bitwiseEqual(r1.dW.data, r2.dW.data)).toBe(true);
    expect(bitwiseEqual(r1.db!, r2.db!)).toBe(true);
    const back = GradientAccumulator.fromBytes(serial.toBytes());
    expect(bitwiseEqual(back.toBytes(), serial.toBytes())).toBe(true);
    expect(back.count).toBe(N);
    expect(back.dtype).toBe(dtype);
  });

  test('the accumulator keeps its own copy of W and b', () => {
    const Wc = { ...W, data: W.data.slice() };
    const acc = new GradientAccumulator(Wc, b);
    Wc.data.fill(0);
    acc.add(X, y);
    const r = acc.result();
    expect(Object.is(r.loss, lossAndGradients(X, y, W, b).loss)).toBe(true);
  });
});

describe('GradientAccumulator: refusals change nothing', () => {
  const { X, W, b, y } = data('float64', 20, 4, 3, 5);

  test('result() with no rows is an error', () => {
    const acc = new GradientAccumulator(W, b);
    expect(() => acc.result()).toThrow(expect.objectContaining({ code: 'ERR_STATE' }));
  });

  test('a rejected add (bad label, wrong D, wrong dtype, non-finite row) leaves the state as it was', () => {
    const acc = new GradientAccumulator(W, b);
    acc.add(X, y);
    const before = acc.toBytes();
    const badY = Int32Array.from(y);
    badY[3] = 7;
    expect(() => acc.add(X, badY)).toThrow(expect.objectContaining({ code: 'ERR_LABEL' }));
    expect(() => acc.add({ data: new Float64Array(10), rows: 2, cols: 5 }, [0, 1])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => acc.add({ data: new Float32Array(8), rows: 2, cols: 4 } as never, [0, 1])).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    const nan = X.data.slice();
    nan[4 * 17 + 1] = NaN;
    expect(() => acc.add({ ...X, data: nan }, y)).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', message: expect.stringContaining('row 17') }));
    expect(bitwiseEqual(acc.toBytes(), before)).toBe(true);
  });

  test('a rejected async add leaves the state as it was', async () => {
    const acc = new GradientAccumulator(W, b);
    acc.add(X, y);
    const before = acc.toBytes();
    const nan = X.data.slice();
    nan[0] = Infinity;
    await expect(acc.addAsync({ ...X, data: nan }, y)).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
    expect(bitwiseEqual(acc.toBytes(), before)).toBe(true);
  });

  test('merge refuses sums at other weights, shapes, dtypes or options, and changes nothing', () => {
    const acc = new GradientAccumulator(W, b);
    acc.add(X, y);
    const before = acc.toBytes();
    const W2 = { ...W, data: W.data.slice() };
    W2.data[0]! += 1e-12;
    for (const [other, what] of [
      [new GradientAccumulator(W2, b), 'weights W'],
      [new GradientAccumulator(W, null), 'bias b'],
      [new GradientAccumulator({ data: new Float64Array(8), rows: 4, cols: 2 }, null), 'shape'],
      [new GradientAccumulator({ data: Float32Array.from(W.data), rows: 4, cols: 3 }, Float32Array.from(b)), 'dtype'],
      [new GradientAccumulator(W, b, { labelSmoothing: 0.1 }), 'labelSmoothing'],
    ] as const) {
      expect(() => acc.merge(other as never)).toThrow(expect.objectContaining({ code: 'ERR_STATE', message: expect.stringContaining(what) }));
    }
    expect(bitwiseEqual(acc.toBytes(), before)).toBe(true);
  });

  test('fromBytes refuses corrupted and truncated bytes', () => {
    const acc = new GradientAccumulator(W, b);
    acc.add(X, y);
    const bytes = acc.toBytes();
    const flipped = bytes.slice();
    flipped[100]! ^= 1;
    expect(() => GradientAccumulator.fromBytes(flipped)).toThrow(expect.objectContaining({ code: 'ERR_STATE', message: expect.stringContaining('checksum') }));
    expect(() => GradientAccumulator.fromBytes(bytes.subarray(0, 30))).toThrow(expect.objectContaining({ code: 'ERR_STATE' }));
  });

  test('fromBytes refuses well-formed bytes whose sums are not finite or whose count is not a row count', () => {
    const acc = new GradientAccumulator(W, b);
    acc.add(X, y);
    const bytes = acc.toBytes();
    // The format's checksum (FNV-1a over everything before it), recomputed as a forger would.
    const fnv1a = (u: Uint8Array) => {
      let h = 0x811c9dc5;
      for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193) >>> 0;
      return h >>> 0;
    };
    const forged = (edit: (v: DataView, sumsAt: number) => void) => {
      const copy = bytes.slice();
      const v = new DataView(copy.buffer);
      edit(v, copy.length - 4 - (2 + W.rows * W.cols + W.cols) * 8);
      v.setUint32(copy.length - 4, fnv1a(copy.subarray(0, copy.length - 4)), true);
      return copy;
    };
    // The unedited bytes, re-signed, still load: the forging itself is sound.
    expect(GradientAccumulator.fromBytes(forged(() => {})).count).toBe(acc.count);
    for (const [what, edit] of [
      ['a NaN loss sum', (v: DataView, at: number) => v.setFloat64(at, NaN, true)],
      ['an infinite dW sum', (v: DataView, at: number) => v.setFloat64(at + 8 * 5, Infinity, true)],
      ['a negative count', (v: DataView) => v.setFloat64(32, -3, true)],
      ['a fractional count', (v: DataView) => v.setFloat64(32, 2.5, true)],
    ] as const) {
      expect(() => GradientAccumulator.fromBytes(forged(edit)), what).toThrow(expect.objectContaining({ code: 'ERR_STATE', message: expect.stringContaining('not finite') }));
    }
  });

  test('reset() forgets rows; an addAsync that was running is discarded with ERR_STATE', async () => {
    const acc = new GradientAccumulator(W, b);
    const pending = acc.addAsync(X, y);
    acc.reset();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_STATE' });
    expect(acc.count).toBe(0);
    await acc.addAsync(X, y);
    expect(acc.count).toBe(20);
    expect(Object.is(acc.result().loss, lossAndGradients(X, y, W, b).loss)).toBe(true);
  });
});

test('adds in flight are absorbed in the order they were made, even small ones after a large one', async () => {
  // The large chunk's work goes through the addon's queue; the small ones (64 × 32 × 4 multiply-adds)
  // would be quick enough to run at once, but an accumulator's adds keep their order: the sums are
  // bitwise those of the same adds made one after another.
  const large = data('float64', 20_000, 32, 4, 41); // float64: its sums round when added (float32's add exactly)
  const smallA = { X: rowsOf(large.X, 0, 64), y: large.y.subarray(0, 64) };
  const smallB = { X: rowsOf(large.X, 64, 128), y: large.y.subarray(64, 128) };
  const inFlight = new GradientAccumulator(large.W, large.b);
  await Promise.all([inFlight.addAsync(large.X, large.y), inFlight.addAsync(smallA.X, smallA.y), inFlight.addAsync(smallB.X, smallB.y)]);
  const inTurn = new GradientAccumulator(large.W, large.b);
  for (const c of [large, smallA, smallB]) inTurn.add(c.X, c.y);
  expect(bitwiseEqual(inFlight.toBytes(), inTurn.toBytes())).toBe(true);
  // The order shows in the bits (else this test could not tell the orders apart).
  const smallFirst = new GradientAccumulator(large.W, large.b);
  for (const c of [smallA, smallB, large]) smallFirst.add(c.X, c.y);
  expect(bitwiseEqual(smallFirst.toBytes(), inTurn.toBytes())).toBe(false);
});
