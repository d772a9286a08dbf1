// Every validation path: the error's class, its code, and the words that name the argument.
import { describe, expect, test } from 'vitest';
import { lossAndGradients, lossAndGradientsAsync, matrix, predict, reference, scores, setThreads, softmax } from '../src/index.js';

const X = { data: new Float32Array(12), rows: 4, cols: 3 };
const W = { data: new Float32Array(6), rows: 3, cols: 2 };
const b = new Float32Array(2);
const y = [0, 1, 1, 0];

function expectError(fn: () => unknown, Cls: ErrorConstructor, code: string, ...words: string[]) {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a throw').toBeInstanceOf(Cls);
  const e = caught as Error & { code?: string };
  expect(e.code).toBe(code);
  expect(e.message).toMatch(/^Expected .+ for .+ but received .+/s);
  for (const w of words) expect(e.message).toContain(w);
}

describe('shapes and dtypes', () => {
  test('data length must be rows × cols (the design example)', () => {
    const bad = { data: new Float32Array(100), rows: 10, cols: 12 };
    expectError(() => lossAndGradients(bad, new Array(10).fill(0), { data: new Float32Array(24), rows: 12, cols: 2 }, b), RangeError, 'ERR_SHAPE',
      'Expected X.data.length = rows × cols = 120 for X but received 100 (Float32Array)');
  });
  test.each([
    ['rows 0', { data: new Float32Array(0), rows: 0, cols: 3 }, 'X.rows'],
    ['rows 1.5', { data: new Float32Array(3), rows: 1.5, cols: 3 }, 'X.rows'],
    ['cols NaN', { data: new Float32Array(3), rows: 1, cols: NaN }, 'X.cols'],
  ])('%s is a RangeError naming the field', (_, m, name) => {
    expectError(() => scores(m as never, W, b), RangeError, 'ERR_SHAPE', name, 'positive safe integer');
  });
  test('rows given as a string is a TypeError', () => {
    expectError(() => scores({ data: new Float32Array(3), rows: '1', cols: 3 } as never, W, b), TypeError, 'ERR_SHAPE', 'X.rows', 'the string "1"');
  });
  test('a non-matrix is a TypeError', () => {
    expectError(() => scores(new Float32Array(12) as never, W, b), TypeError, 'ERR_TYPE', 'X', 'Float32Array');
    expectError(() => scores(null as never, W, b), TypeError, 'ERR_TYPE', 'X', 'null');
  });
  test('data of the wrong kind is a TypeError', () => {
    expectError(() => scores({ data: [1, 2, 3], rows: 1, cols: 3 } as never, W, b), TypeError, 'ERR_DTYPE', 'X.data', 'Float32Array or Float64Array');
    expectError(() => scores({ data: new Int32Array(12), rows: 4, cols: 3 } as never, W, b), TypeError, 'ERR_DTYPE', 'X.data', 'Int32Array');
  });
  test('mixed dtypes are a TypeError naming the odd one', () => {
    expectError(() => lossAndGradients(X, y, { data: new Float64Array(6), rows: 3, cols: 2 } as never, b), TypeError, 'ERR_DTYPE', 'W.data', 'one dtype');
    expectError(() => lossAndGradients(X, y, W, new Float64Array(2) as never), TypeError, 'ERR_DTYPE', 'b', 'Float64Array');
  });
  test('W rows must equal X cols; b length must equal K', () => {
    expectError(() => lossAndGradients(X, y, { data: new Float32Array(8), rows: 4, cols: 2 }, b), RangeError, 'ERR_SHAPE', 'W.rows', 'D = 3');
    expectError(() => lossAndGradients(X, y, W, new Float32Array(3)), RangeError, 'ERR_SHAPE', 'b.length', '2');
  });
  test('a detached buffer is an error', () => {
    const data = new Float32Array(12);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    expectError(() => scores({ data, rows: 4, cols: 3 }, W, b), RangeError, 'ERR_SHAPE', 'X.data', 'detached');
  });
  test('matrix() validates', () => {
    expectError(() => matrix(new Float64Array(5), 2, 3), RangeError, 'ERR_SHAPE', 'rows × cols = 6', '5');
    expect(matrix(new Float64Array(6), 2, 3).rows).toBe(2);
  });
  test('softmax validates its matrix', () => {
    expectError(() => softmax({ data: new Float32Array(5), rows: 2, cols: 3 }), RangeError, 'ERR_SHAPE', 'S');
  });
});

describe('labels', () => {
  test.each([
    [[0, 1, 2, 0], 'y[2]', '2'],
    [[0, 1, -1, 0], 'y[2]', '-1'],
    [[0, 0.5, 1, 0], 'y[1]', '0.5'],
    [[0, NaN, 1, 0], 'y[1]', 'NaN'],
  ])('%j: a RangeError naming the index and the range', (labels, name, got) => {
    expectError(() => lossAndGradients(X, labels, W, b), RangeError, 'ERR_LABEL', name, '[0, 2)', got);
  });
  test('a label that is not a number', () => {
    expectError(() => lossAndGradients(X, [0, '1', 1, 0] as never, W, b), RangeError, 'ERR_LABEL', 'y[1]', 'a string');
  });
  test('wrong count and wrong kind', () => {
    expectError(() => lossAndGradients(X, [0, 1], W, b), RangeError, 'ERR_SHAPE', 'y.length', '4');
    expectError(() => lossAndGradients(X, new Float32Array(4) as never, W, b), TypeError, 'ERR_LABEL', 'y', 'Int32Array');
    expectError(() => lossAndGradients(X, new Int8Array(4) as never, W, b), TypeError, 'ERR_LABEL', 'y', 'Int8Array');
  });
});

describe('options', () => {
  test.each([
    [{ reg: -1 }, RangeError, 'options.reg', '-1'],
    [{ reg: Infinity }, RangeError, 'options.reg', 'Infinity'],
    [{ reg: NaN }, RangeError, 'options.reg', 'NaN'],
    [{ reg: '1' }, TypeError, 'options.reg', 'string'],
    [{ regConvention: 'double' }, RangeError, 'options.regConvention', '"double"'],
    [{ threads: 0 }, RangeError, 'options.threads', '0'],
    [{ threads: 2.5 }, RangeError, 'options.threads', '2.5'],
    [{ threads: 1000 }, RangeError, 'options.threads', '1000'],
    [{ regularization: 1 }, RangeError, 'options.regularization', 'unknown option'],
  ] as const)('%j', (opts, Cls, name, got) => {
    expectError(() => lossAndGradients(X, y, W, b, opts as never), Cls as ErrorConstructor, 'ERR_OPTION', name, got);
  });
  test('options must be an object', () => {
    expectError(() => lossAndGradients(X, y, W, b, 5 as never), TypeError, 'ERR_OPTION', 'options', 'the number 5');
  });
  test('setThreads validates', () => {
    expectError(() => setThreads(0), RangeError, 'ERR_OPTION', 'setThreads', '0');
    expectError(() => setThreads('2' as never), TypeError, 'ERR_OPTION', 'setThreads');
  });
});

describe('non-finite inputs', () => {
  test.each([
    ['NaN in X', () => { const x = new Float32Array(12); x[7] = NaN; return { X: { ...X, data: x }, W, b }; }, 2],
    ['Infinity in X', () => { const x = new Float32Array(12).fill(1); x[3] = Infinity; return { X: { ...X, data: x }, W, b }; }, 1],
    ['-Infinity in b', () => ({ X, W, b: new Float32Array([0, -Infinity]) }), 0],
    ['NaN in W', () => ({ X, W: { ...W, data: new Float32Array([0, 0, NaN, 0, 0, 0]) }, b }), 0],
  ])('%s: RangeError naming the first bad row', (_, make, row) => {
    const p = make();
    expectError(() => lossAndGradients(p.X, y, p.W, p.b), RangeError, 'ERR_NON_FINITE', `row ${row} of X`);
    expectError(() => reference.lossAndGradients(p.X, y, p.W, p.b), RangeError, 'ERR_NON_FINITE', `row ${row} of X`);
  });
  test('scores that overflow float32 (the reference, in float64, does not overflow)', () => {
    const big = { X: { ...X, data: new Float32Array(12).fill(3e38) }, W: { ...W, data: new Float32Array(6).fill(3e38) } };
    expectError(() => lossAndGradients(big.X, y, big.W, b), RangeError, 'ERR_NON_FINITE', 'row 0 of X');
  });
  test('async rejections carry the caller stack', async () => {
    const x = new Float32Array(12);
    x[0] = NaN;
    async function callerFunctionName() {
      return lossAndGradientsAsync({ ...X, data: x }, y, W, b);
    }
    const error = (await callerFunctionName().catch((e: unknown) => e)) as Error & { code: string };
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe('ERR_NON_FINITE');
    expect(error.stack).toContain('callerFunctionName');
    // The same through the addon's job thread (a call with options.out always takes it).
    async function queuedCallerName() {
      return lossAndGradientsAsync({ ...X, data: x }, y, W, b, { out: { dW: new Float32Array(W.data.length), db: new Float32Array(b.length) } });
    }
    const queued = (await queuedCallerName().catch((e: unknown) => e)) as Error & { code: string };
    expect(queued.code).toBe('ERR_NON_FINITE');
    expect(queued.stack).toContain('queuedCallerName');
  });
  test('async validation errors reject (never throw synchronously)', async () => {
    const p = lossAndGradientsAsync(X, [9, 0, 0, 0], W, b);
    await expect(p).rejects.toMatchObject({ code: 'ERR_LABEL' });
  });
});

test('predict validates like scores', () => {
  expectError(() => predict(X, W, new Float32Array(5)), RangeError, 'ERR_SHAPE', 'b.length');
});
