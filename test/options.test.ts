// PyTorch's cross_entropy options, fused into the native pass: against the reference, against values
// derived by hand, against finite differences, and accumulated over chunks.
import { describe, expect, test } from 'vitest';
import { GradientAccumulator, lossAndGradients, reference, type Dtype, type LossOptions, type Matrix } from '../src/index.js';
import { bitwiseEqual, expectAllClose, lossTolerances, randomLabels, randomMatrix, rng } from './helpers.js';

const LN = Math.log;
const f64 = (a: number[]) => new Float64Array(a);

// Two rows, D = 1, K = 2: scores are [1, 0] for row 0 and [−1, 0] for row 1.
const X = { data: f64([1, -1]), rows: 2, cols: 1 };
const W = { data: f64([1, 0]), rows: 1, cols: 2 };
const b = f64([0, 0]);
const lse0 = LN(Math.E + 1); // row 0
const lse1 = LN(Math.exp(-1) + 1); // row 1

function both(y: number[] | Matrix, o: LossOptions) {
  return [lossAndGradients(X, y as never, W, b, o), reference.lossAndGradients(X, y as never, W, b, o)] as const;
}

describe('values derived by hand', () => {
  test('classWeights: mean divides by Σ w_{y_i}', () => {
    for (const r of both([0, 1], { classWeights: [1, 3] })) {
      expect(r.loss).toBeCloseTo((1 * (lse0 - 1) + 3 * (lse1 - 0)) / (1 + 3), 14);
    }
  });
  test('sampleWeights: mean divides by Σ s_i; a row of weight 2 counts as that row twice', () => {
    for (const r of both([0, 0], { sampleWeights: [2, 1] })) {
      expect(r.loss).toBeCloseTo((2 * (lse0 - 1) + 1 * (lse1 + 1)) / 3, 14);
    }
    const twice = lossAndGradients({ data: f64([1, 1, -1]), rows: 3, cols: 1 }, [0, 0, 0], W, b);
    const weighted = lossAndGradients(X, [0, 0], W, b, { sampleWeights: [2, 1] });
    expect(weighted.loss).toBeCloseTo(twice.loss, 15);
    expectAllClose(weighted.dW.data, twice.dW.data, 1e-15, 'dW');
    expectAllClose(weighted.db!, twice.db!, 1e-15, 'db');
  });
  test('sample and class weights together: the denominator is Σ s_i·w_{y_i}', () => {
    for (const r of both([0, 1], { sampleWeights: [2, 0.5], classWeights: [3, 5] })) {
      expect(r.loss).toBeCloseTo((2 * 3 * (lse0 - 1) + 0.5 * 5 * lse1) / (2 * 3 + 0.5 * 5), 14);
    }
  });
  test('ignoreIndex: ignored rows contribute nothing, to the loss or the denominator', () => {
    for (const r of both([0, -100], { ignoreIndex: -100 })) expect(r.loss).toBeCloseTo(lse0 - 1, 15);
  });
  test('every row ignored: a data term of 0 with zero gradients (PyTorch gives NaN); reg still added', () => {
    for (const r of both([7, 7], { ignoreIndex: 7, reg: 0.5 })) {
      expect(r.loss).toBeCloseTo(0.5 * 1, 15);
      expect(Array.from(r.dW.data)).toEqual([2 * 0.5 * 1, 0]);
      expect(Array.from(r.db!)).toEqual([0, 0]);
    }
  });
  test('labelSmoothing ε: (1 − ε)·nll + ε/K·Σ_c(−log p_c)', () => {
    const eps = 0.2;
    const row0 = (1 - eps) * (lse0 - 1) + (eps / 2) * (lse0 - 1 + lse0);
    const row1 = (1 - eps) * (lse1 + 1) + (eps / 2) * (lse1 + 1 + lse1);
    for (const r of both([0, 0], { labelSmoothing: eps })) expect(r.loss).toBeCloseTo((row0 + row1) / 2, 14);
  });
  test('labelSmoothing with classWeights: ε/K·Σ_c w_c(−log p_c), mean over Σ w_{y_i}', () => {
    const eps = 0.3;
    const w = [2, 0.5];
    const row0 = (1 - eps) * w[0]! * (lse0 - 1) + (eps / 2) * (w[0]! * (lse0 - 1) + w[1]! * lse0);
    const row1 = (1 - eps) * w[1]! * lse1 + (eps / 2) * (w[0]! * (lse1 + 1) + w[1]! * lse1);
    for (const r of both([0, 1], { labelSmoothing: eps, classWeights: w })) expect(r.loss).toBeCloseTo((row0 + row1) / (w[0]! + w[1]!), 14);
  });
  test('probability targets: Σ_c −t_c log p_c, mean over N (also with class weights)', () => {
    const T = { data: f64([0.25, 0.75, 1, 0]), rows: 2, cols: 2 };
    for (const r of both(T, {})) expect(r.loss).toBeCloseTo((0.25 * (lse0 - 1) + 0.75 * lse0 + (lse1 + 1)) / 2, 14);
    for (const r of both(T, { classWeights: [2, 1] })) expect(r.loss).toBeCloseTo((0.5 * (lse0 - 1) + 0.75 * lse0 + 2 * (lse1 + 1)) / 2, 14);
  });
  test("reduction 'sum' and 'none'", () => {
    for (const r of both([0, 0], { reduction: 'sum', reg: 0.5 })) expect(r.loss).toBeCloseTo(lse0 - 1 + lse1 + 1 + 0.5, 14);
    for (const r of both([0, 0], { reduction: 'none', reg: 0.5 })) {
      expect(r.losses!.length).toBe(2);
      expect(r.losses![0]).toBeCloseTo(lse0 - 1, 15);
      expect(r.losses![1]).toBeCloseTo(lse1 + 1, 15);
      expect(r.loss).toBeCloseTo(r.losses![0]! + r.losses![1]! + 0.5, 15);
    }
  });
});

function randomProblem(dtype: Dtype, N: number, D: number, K: number, seed: number) {
  const next = rng(seed);
  const X = randomMatrix(dtype, N, D, next);
  const W = randomMatrix(dtype, D, K, next, 1);
  const b = randomMatrix(dtype, 1, K, next).data;
  const y = randomLabels(N, K, next);
  const T = randomMatrix(dtype, N, K, next);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += T.data[i * K + k] = Math.abs(T.data[i * K + k]!) + 0.01;
    for (let k = 0; k < K; k++) T.data[i * K + k]! /= s;
  }
  const cw = Array.from({ length: K }, () => 0.2 + 2 * next());
  const sw = Array.from({ length: N }, (_, i) => (i % 5 === 0 ? 0 : 0.1 + 3 * next()));
  const ignored = Int32Array.from(y, (v, i) => (i % 4 === 1 ? -1 : v));
  return { X, W, b, y, T, cw, sw, ignored };
}

const COMBINATIONS: Array<[string, (p: ReturnType<typeof randomProblem>) => { y: unknown; o: LossOptions }]> = [
  ['classWeights', (p) => ({ y: p.y, o: { classWeights: p.cw } })],
  ['sampleWeights', (p) => ({ y: p.y, o: { sampleWeights: p.sw } })],
  ['ignoreIndex', (p) => ({ y: p.ignored, o: { ignoreIndex: -1 } })],
  ['labelSmoothing', (p) => ({ y: p.y, o: { labelSmoothing: 0.15 } })],
  ['reduction sum', (p) => ({ y: p.y, o: { reduction: 'sum' } })],
  ['reduction none', (p) => ({ y: p.y, o: { reduction: 'none', reg: 0.01 } })],
  ['targets', (p) => ({ y: p.T, o: {} })],
  ['targets + classWeights + sampleWeights + smoothing', (p) => ({ y: p.T, o: { classWeights: p.cw, sampleWeights: p.sw, labelSmoothing: 0.1 } })],
  ['everything with labels', (p) => ({ y: p.ignored, o: { classWeights: p.cw, sampleWeights: p.sw, ignoreIndex: -1, labelSmoothing: 0.2, reg: 0.02, regConvention: 'half' } })],
  ['everything, no bias', (p) => ({ y: p.ignored, o: { classWeights: p.cw, sampleWeights: p.sw, ignoreIndex: -1, labelSmoothing: 0.2, reduction: 'sum' } })],
];

describe.each(['float32', 'float64'] as const)('against the reference (%s)', (dtype) => {
  test.each(COMBINATIONS)('%s', (name, make) => {
    const p = randomProblem(dtype, 157, 19, 10, 4242);
    const { y, o } = make(p);
    const bias = name.includes('no bias') ? null : p.b;
    const got = lossAndGradients(p.X, y as never, p.W, bias, o);
    const want = reference.lossAndGradients(p.X, y as never, p.W, bias, o);
    // weights scale the sums: widen the tolerance by the largest weight product
    const scale = o.reduction === 'sum' || o.reduction === 'none' ? p.X.rows * 6 * 3 : 6;
    const tol = lossTolerances(dtype, p.X, p.W, bias, o.reg ?? 0);
    expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(tol.loss * scale);
    expectAllClose(got.dW.data, want.dW.data, tol.dW * scale, 'dW');
    if (bias) expectAllClose(got.db!, want.db!, tol.db * scale, 'db');
    else expect(got.db).toBeNull();
    if (o.reduction === 'none') expectAllClose(got.losses!, want.losses!, tol.loss * 6, 'losses');
  });
});

describe('float64 gradient check with every option on', () => {
  test.each(COMBINATIONS)('%s', (name, make) => {
    const p = randomProblem('float64', 11, 4, 3, 77);
    const { y, o } = make(p);
    const bias = name.includes('no bias') ? null : p.b;
    const r = lossAndGradients(p.X, y as never, p.W, bias, o);
    const h = 1e-6;
    let worst = 0;
    const check = (arr: Float64Array, i: number, analytic: number) => {
      const old = arr[i]!;
      arr[i] = old + h;
      const plus = lossAndGradients(p.X, y as never, p.W, bias, o).loss;
      arr[i] = old - h;
      const minus = lossAndGradients(p.X, y as never, p.W, bias, o).loss;
      arr[i] = old;
      const numeric = (plus - minus) / (2 * h);
      if (numeric === 0 && analytic === 0) return;
      worst = Math.max(worst, Math.abs(numeric - analytic) / (Math.abs(numeric) + Math.abs(analytic)));
    };
    p.W.data.forEach((_, i) => check(p.W.data as Float64Array, i, r.dW.data[i]!));
    if (bias) bias.forEach((_, k) => check(bias as Float64Array, k, r.db![k]!));
    expect(worst).toBeLessThan(1e-7);
  });
});

describe('accumulation over chunks equals one call, with every option on', () => {
  test.each(['float32', 'float64'] as const)('%s', (dtype) => {
    const p = randomProblem(dtype, 90, 7, 5, 99);
    const opts = { classWeights: p.cw, ignoreIndex: -1, labelSmoothing: 0.1 };
    const whole = lossAndGradients(p.X, p.ignored, p.W, p.b, { ...opts, sampleWeights: p.sw, reg: 0.03 });
    const acc = new GradientAccumulator(p.W, p.b, { ...opts, reg: 0.03 });
    for (const [s, e] of [[0, 1], [1, 33], [33, 34], [34, 90]] as const) {
      acc.add({ data: p.X.data.subarray(s * 7, e * 7), rows: e - s, cols: 7 }, p.ignored.subarray(s, e), { sampleWeights: p.sw.slice(s, e) });
    }
    const r = acc.result();
    const tol = lossTolerances(dtype, p.X, p.W, p.b, 0.03);
    expect(Math.abs(r.loss - whole.loss)).toBeLessThanOrEqual(tol.loss * 6);
    expectAllClose(r.dW.data, whole.dW.data, tol.dW * 6, 'dW');
    expectAllClose(r.db!, whole.db!, tol.db * 6, 'db');
    // probability targets through the accumulator, too
    const accT = new GradientAccumulator(p.W, p.b);
    accT.add({ data: p.X.data.subarray(0, 40 * 7), rows: 40, cols: 7 }, { data: p.T.data.subarray(0, 40 * 5), rows: 40, cols: 5 });
    accT.add({ data: p.X.data.subarray(40 * 7), rows: 50, cols: 7 }, { data: p.T.data.subarray(40 * 5), rows: 50, cols: 5 });
    const wholeT = lossAndGradients(p.X, p.T, p.W, p.b);
    expect(Math.abs(accT.result().loss - wholeT.loss)).toBeLessThanOrEqual(tol.loss);
    expect(bitwiseEqual(accT.result().dW.data, accT.result().dW.data)).toBe(true);
  });
});

describe('validation of the options', () => {
  const p = randomProblem('float64', 6, 3, 4, 1);
  const cases: Array<[string, () => unknown, string, string]> = [
    ['classWeights length', () => lossAndGradients(p.X, p.y, p.W, p.b, { classWeights: [1, 2] }), 'ERR_OPTION', 'options.classWeights.length'],
    ['negative class weight', () => lossAndGradients(p.X, p.y, p.W, p.b, { classWeights: [1, -2, 1, 1] }), 'ERR_OPTION', 'options.classWeights[1]'],
    ['NaN sample weight', () => lossAndGradients(p.X, p.y, p.W, p.b, { sampleWeights: [1, 1, NaN, 1, 1, 1] }), 'ERR_OPTION', 'options.sampleWeights[2]'],
    ['sampleWeights length', () => lossAndGradients(p.X, p.y, p.W, p.b, { sampleWeights: [1] }), 'ERR_OPTION', 'options.sampleWeights.length'],
    ['labelSmoothing > 1', () => lossAndGradients(p.X, p.y, p.W, p.b, { labelSmoothing: 1.5 }), 'ERR_OPTION', 'options.labelSmoothing'],
    ['ignoreIndex not an integer', () => lossAndGradients(p.X, p.y, p.W, p.b, { ignoreIndex: 0.5 }), 'ERR_OPTION', 'options.ignoreIndex'],
    ['unknown reduction', () => lossAndGradients(p.X, p.y, p.W, p.b, { reduction: 'avg' as never }), 'ERR_OPTION', 'options.reduction'],
    ['ignoreIndex with targets', () => lossAndGradients(p.X, p.T, p.W, p.b, { ignoreIndex: 0 }), 'ERR_OPTION', 'PyTorch'],
    ['targets of the wrong shape', () => lossAndGradients(p.X, { data: new Float64Array(12), rows: 6, cols: 2 }, p.W, p.b), 'ERR_SHAPE', 'y (probability targets).cols'],
    ['targets of the wrong dtype', () => lossAndGradients(p.X, { data: new Float32Array(24), rows: 6, cols: 4 } as never, p.W, p.b), 'ERR_DTYPE', 'y (probability targets).data'],
  ];
  test.each(cases)('%s', (_, fn, code, words) => {
    expect(fn).toThrow(expect.objectContaining({ code, message: expect.stringContaining(words) }));
  });
  test('target rows that do not sum to 1, or hold a negative value, name the row', () => {
    const T = { data: p.T.data.slice(), rows: 6, cols: 4 };
    T.data[3 * 4 + 1]! += 0.01;
    expect(() => lossAndGradients(p.X, T, p.W, p.b)).toThrow(expect.objectContaining({ code: 'ERR_TARGET', message: expect.stringContaining('row 3 of y') }));
    const N = { data: p.T.data.slice(), rows: 6, cols: 4 };
    N.data[8] = -N.data[8]!;
    N.data[9]! += 2 * Math.abs(N.data[8]!);
    expect(() => lossAndGradients(p.X, N, p.W, p.b)).toThrow(expect.objectContaining({ code: 'ERR_TARGET', message: expect.stringContaining('row 2 of y') }));
    // within the dtype's rounding is accepted
    const ok = { data: p.T.data.slice(), rows: 6, cols: 4 };
    ok.data[0]! += 1e-15;
    expect(() => lossAndGradients(p.X, ok, p.W, p.b)).not.toThrow();
  });
});

describe("bias: false, the CS231n bias trick", () => {
  test('a column of ones in X with b = null equals a separate bias', () => {
    const next = rng(5);
    const N = 23;
    const D = 6;
    const K = 4;
    const X = randomMatrix('float64', N, D, next);
    const W = randomMatrix('float64', D, K, next);
    const b = randomMatrix('float64', 1, K, next).data;
    const y = randomLabels(N, K, next);
    const Xones = { data: new Float64Array(N * (D + 1)), rows: N, cols: D + 1 };
    for (let i = 0; i < N; i++) {
      Xones.data.set(X.data.subarray(i * D, (i + 1) * D), i * (D + 1));
      Xones.data[i * (D + 1) + D] = 1;
    }
    const Wb = { data: new Float64Array((D + 1) * K), rows: D + 1, cols: K };
    Wb.data.set(W.data);
    Wb.data.set(b, D * K);
    const withBias = lossAndGradients(X, y, W, b);
    const trick = lossAndGradients(Xones, y, Wb, null, { bias: false });
    expect(trick.db).toBeNull();
    expect(trick.loss).toBeCloseTo(withBias.loss, 14);
    expectAllClose(trick.dW.data.subarray(0, D * K), withBias.dW.data, 1e-15, 'dW');
    expectAllClose(trick.dW.data.subarray(D * K), withBias.db!, 1e-15, 'the bias row of dW is db');
  });
  test('bias: false with a b, or bias: true without one, is an error naming b', () => {
    const p = randomProblem('float64', 6, 3, 4, 1);
    expect(() => lossAndGradients(p.X, p.y, p.W, p.b, { bias: false })).toThrow(expect.objectContaining({ code: 'ERR_OPTION', message: expect.stringContaining('b = null') }));
    expect(() => lossAndGradients(p.X, p.y, p.W, null, { bias: true })).toThrow(expect.objectContaining({ code: 'ERR_OPTION', message: expect.stringContaining('for b but') }));
    expect(() => lossAndGradients(p.X, p.y, p.W, null, { bias: 'no' as never })).toThrow(expect.objectContaining({ code: 'ERR_OPTION' }));
  });
});
