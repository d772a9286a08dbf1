// options.out: the gradients written into the caller's arrays. The same numbers as without it (bitwise,
// native and reference), every element overwritten, and bad arrays refused before anything is
// written.
import { describe, expect, test } from 'vitest';
import { GradientAccumulator, lossAndGradients, lossAndGradientsAsync, reference, SoftmaxClassifier, type Dtype, type FloatArray } from '../src/index.js';
import { array, bitwiseEqual, randomLabels, randomMatrix, rng } from './helpers.js';

const dtypes: Dtype[] = ['float32', 'float64'];

function problem(dtype: Dtype, N: number, D: number, K: number, seed: number) {
  const next = rng(seed);
  return {
    X: randomMatrix(dtype, N, D, next),
    W: randomMatrix(dtype, D, K, next, 0.1),
    b: randomMatrix(dtype, 1, K, next, 0.1).data,
    y: randomLabels(N, K, next),
  };
}

const poisoned = (dtype: Dtype, length: number) => array(dtype, length).fill(NaN);

describe.each(dtypes)('%s', (dtype) => {
  const impls = [
    ['native', lossAndGradients],
    ['native async', lossAndGradientsAsync],
    ['reference', reference.lossAndGradients],
  ] as const;

  test.each(impls)('%s: the result is the out arrays, holding bitwise what a call without out returns', async (_name, fn) => {
    // Shapes below, at and above a vector width, a prime, the tiny benchmark's, mnist's K.
    for (const [N, D, K] of [[1, 1, 1], [3, 7, 2], [64, 32, 4], [37, 17, 10], [5, 33, 17]] as const) {
      const { X, W, b, y } = problem(dtype, N, D, K, N * 1000 + D * 10 + K);
      for (const bias of [b, null]) {
        for (const reg of [0, 0.25]) {
          const plain = await fn(X, y, W, bias, { reg });
          const out = { dW: poisoned(dtype, D * K), db: bias ? poisoned(dtype, K) : null };
          const r = await fn(X, y, W, bias, { reg, out });
          expect(r.dW.data).toBe(out.dW);
          expect(r.dW.rows).toBe(D);
          expect(r.dW.cols).toBe(K);
          expect(r.db).toBe(out.db);
          expect(r.loss).toBe(plain.loss);
          expect(bitwiseEqual(out.dW, plain.dW.data), `dW N=${N} D=${D} K=${K}`).toBe(true);
          if (bias) expect(bitwiseEqual(out.db!, plain.db!), `db N=${N} D=${D} K=${K}`).toBe(true);
        }
      }
    }
  });

  test('reused across calls, every element is overwritten with the new call\'s values', () => {
    const a = problem(dtype, 50, 20, 6, 1);
    const c = problem(dtype, 50, 20, 6, 2);
    const out = { dW: array(dtype, 120), db: array(dtype, 6) };
    lossAndGradients(a.X, a.y, a.W, a.b, { out });
    const r = lossAndGradients(c.X, c.y, c.W, c.b, { out, reduction: 'sum' });
    const fresh = lossAndGradients(c.X, c.y, c.W, c.b, { reduction: 'sum' });
    expect(bitwiseEqual(r.dW.data, fresh.dW.data)).toBe(true);
    expect(bitwiseEqual(r.db!, fresh.db!)).toBe(true);
  });

  test('reduction none: the per-row losses come back as before', () => {
    const { X, W, b, y } = problem(dtype, 9, 5, 3, 3);
    const out = { dW: array(dtype, 15), db: array(dtype, 3) };
    const r = lossAndGradients(X, y, W, b, { reduction: 'none', out });
    const plain = lossAndGradients(X, y, W, b, { reduction: 'none' });
    expect(bitwiseEqual(r.losses!, plain.losses!)).toBe(true);
    expect(bitwiseEqual(out.dW, plain.dW.data)).toBe(true);
  });
});

describe('bad out arrays: a clear error naming them, and nothing written', () => {
  const dtype: Dtype = 'float32';
  const { X, W, b, y } = problem(dtype, 8, 3, 4, 7);
  const other = 'float64' as Dtype;
  const cases: Array<[string, () => { out: unknown; b?: FloatArray | null }, string]> = [
    ['not an object', () => ({ out: new Float32Array(12) }), 'Expected an object { dW, db } of the arrays to write the gradients into for options.out but received a Float32Array of length 12'],
    ['an unknown key', () => ({ out: { dW: array(dtype, 12), db: array(dtype, 4), dX: 1 } }), 'Expected one of the options dW, db for options.out.dX but received the unknown option "dX"'],
    ['dW missing', () => ({ out: { db: array(dtype, 4) } }), 'Expected a Float32Array for options.out.dW but received undefined'],
    ['dW of the other dtype', () => ({ out: { dW: array(other, 12), db: array(dtype, 4) } }), 'Expected a Float32Array (one dtype for every array of a call) for options.out.dW but received a Float64Array of length 12'],
    ['dW too short', () => ({ out: { dW: array(dtype, 11), db: array(dtype, 4) } }), 'Expected 12 (D×K = 3×4 gradient entries, row-major as W) for options.out.dW.length but received 11 (Float32Array)'],
    ['db missing with a bias', () => ({ out: { dW: array(dtype, 12) } }), 'Expected a Float32Array of K = 4 entries, since the model has a bias b for options.out.db but received undefined'],
    ['db given without a bias', () => ({ out: { dW: array(dtype, 12), db: array(dtype, 4) }, b: null }), 'Expected no db: the model has no bias (b is null) for options.out.db but received an array'],
    ['db too long', () => ({ out: { dW: array(dtype, 12), db: array(dtype, 5) } }), 'Expected 4 (one entry per class, K = W.cols) for options.out.db.length but received 5 (Float32Array)'],
    ['dW is W', () => ({ out: { dW: W.data, db: array(dtype, 4) } }), 'Expected an array of its own (gradients are written into it) for options.out.dW but received an array that shares memory with W'],
    ['db is b', () => ({ out: { dW: array(dtype, 12), db: b } }), 'Expected an array of its own (gradients are written into it) for options.out.db but received an array that shares memory with b'],
    ['dW inside X', () => ({ out: { dW: (X.data as Float32Array).subarray(4, 16), db: array(dtype, 4) } }), 'Expected an array of its own (gradients are written into it) for options.out.dW but received an array that shares memory with X'],
    ['dW and db overlapping', () => {
      const one = array(dtype, 15);
      return { out: { dW: one.subarray(0, 12), db: one.subarray(11, 15) } };
    }, 'Expected an array of its own (gradients are written into it) for options.out.db but received an array that shares memory with options.out.dW'],
  ];

  test.each(cases)('%s', (_name, make, message) => {
    const { out, b: bias } = make();
    const before = new Float32Array(X.data.length + W.data.length + b.length);
    before.set(X.data);
    before.set(W.data, X.data.length);
    before.set(b, X.data.length + W.data.length);
    const written = typeof out === 'object' && out !== null && !ArrayBuffer.isView(out) ? (out as Record<string, unknown>) : {};
    const snapshot = Object.fromEntries(Object.entries(written).map(([k, v]) => [k, ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v]));
    for (const fn of [lossAndGradients, reference.lossAndGradients]) {
      expect(() => fn(X, y, W, bias === undefined ? b : bias, { out } as never)).toThrow(message);
    }
    // Nothing written: neither the inputs nor the out arrays.
    const after = new Float32Array(before.length);
    after.set(X.data);
    after.set(W.data, X.data.length);
    after.set(b, X.data.length + W.data.length);
    expect(bitwiseEqual(after, before)).toBe(true);
    for (const [k, v] of Object.entries(written)) if (ArrayBuffer.isView(v)) expect(Array.from(v as Float32Array)).toEqual(snapshot[k]);
  });

  test('a pass that fails (a non-finite row, found natively): the error, and the out arrays untouched', async () => {
    const bad = { data: Float32Array.from(X.data), rows: X.rows, cols: X.cols };
    bad.data[5 * 3 + 1] = Infinity;
    const message = 'Expected a finite loss (check row 5 of X, and W and b, for NaN or ±Infinity) for row 5 of X but received a loss that is not finite';
    for (const fn of [lossAndGradients, lossAndGradientsAsync, reference.lossAndGradients]) {
      const out = { dW: array(dtype, 12).fill(7), db: array(dtype, 4).fill(7) };
      await expect(async () => fn(bad, y, W, b, { out })).rejects.toThrow(message);
      expect(out.dW.every((v) => v === 7) && out.db.every((v) => v === 7)).toBe(true);
    }
  });

  test('an async call whose out array is detached meanwhile is an error, not a silent loss', async () => {
    const out = { dW: array(dtype, 12), db: array(dtype, 4) };
    const pending = lossAndGradientsAsync(X, y, W, b, { out });
    structuredClone(out.dW.buffer, { transfer: [out.dW.buffer as ArrayBuffer] });
    await expect(pending).rejects.toThrow('Expected a typed array over a live buffer until the call returns for options.out.dW but received one whose ArrayBuffer was detached meanwhile');
  });

  test('a view over a resizable ArrayBuffer is refused, as for every input', () => {
    const resizable = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(64, { maxByteLength: 128 });
    const out = { dW: new Float32Array(resizable, 0, 12), db: array(dtype, 4) };
    expect(() => lossAndGradients(X, y, W, b, { out })).toThrow(
      'Expected a typed array over a fixed-length ArrayBuffer or a SharedArrayBuffer for options.out.dW but received one over a resizable ArrayBuffer',
    );
  });

  test('the accumulator and the classifier take no out option (their gradients are their own)', () => {
    const out = { dW: array(dtype, 12), db: array(dtype, 4) };
    const acc = new GradientAccumulator(W, b);
    expect(() => acc.add(X, y, { out } as never)).toThrow(/out.*unknown option/);
    const clf = new SoftmaxClassifier({ features: 3, classes: 4, dtype });
    expect(() => clf.evaluate(X, y, { out } as never)).toThrow(/options\.out.*unknown option/);
  });
});
