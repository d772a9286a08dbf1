// Property-based tests (fast-check, seeded, bounded): every public function against the reference on
// random shapes, dtypes, ISAs, options, adversarial values and typed-array views; and every
// validation path with random wrong inputs, which must throw the right class and code and change
// nothing.
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { native } from '../src/backend.js';
import {
  backend,
  GradientAccumulator,
  lossAndGradients,
  lossAndGradientsAsync,
  predict,
  reference,
  scores,
  softmax,
  type Dtype,
  type FloatArray,
  type LossOptions,
  type Matrix,
} from '../src/index.js';
import { EPS, bitwiseEqual, expectAllClose, lossTolerances, maxAbs, scoreScale, softmaxTolerance } from './helpers.js';

const SEED = 20261128;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 60);
const SUPPORTED = backend().supported;

afterAll(() => {
  native().selectIsa('auto');
});

const sizeArb = fc.oneof(fc.constantFrom(1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33), fc.integer({ min: 1, max: 40 }));

/** Adversarial but representable values: huge and tiny magnitudes, denormals, ±0, ties. */
function valueArb(dtype: Dtype) {
  const tiny = dtype === 'float32' ? 1e-40 : 1e-310;
  return fc.oneof(
    { weight: 6, arbitrary: fc.double({ min: -4, max: 4, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom(0, -0, 1, -1, tiny, -tiny) },
    { weight: 1, arbitrary: fc.double({ min: -1e12, max: 1e12, noNaN: true }) },
    { weight: 1, arbitrary: fc.double({ min: -1e-20, max: 1e-20, noNaN: true }) },
  );
}

function arrayOf(dtype: Dtype, values: number[], offset: number): FloatArray {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  const buffer = new ArrayBuffer((values.length + offset) * Ctor.BYTES_PER_ELEMENT);
  const a = new Ctor(buffer, offset * Ctor.BYTES_PER_ELEMENT, values.length);
  a.set(values);
  return a;
}

const weightArb = fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 3, noNaN: true }));

const problemArb = fc
  .record({
    dtype: fc.constantFrom<Dtype>('float32', 'float64'),
    isa: fc.constantFrom(...SUPPORTED),
    N: sizeArb,
    D: sizeArb,
    K: sizeArb,
    offset: fc.integer({ min: 0, max: 5 }),
    equalRows: fc.boolean(),
    seed: fc.integer(),
  })
  .chain((s) =>
    fc.record({
      s: fc.constant(s),
      x: fc.array(valueArb(s.dtype), { minLength: s.N * s.D, maxLength: s.N * s.D }),
      w: fc.array(valueArb(s.dtype), { minLength: s.D * s.K, maxLength: s.D * s.K }),
      b: fc.option(fc.array(valueArb(s.dtype), { minLength: s.K, maxLength: s.K }), { nil: null }),
      y: fc.array(fc.integer({ min: 0, max: s.K - 1 }), { minLength: s.N, maxLength: s.N }),
      reg: fc.constantFrom(0, 0, 1e-3, 0.5),
      regConvention: fc.constantFrom<'full' | 'half'>('full', 'half'),
      // Weights are 0 or at least 1e-3: a total weight near the denormal range divides rounding by itself.
      classWeights: fc.option(fc.array(weightArb, { minLength: s.K, maxLength: s.K }), { nil: undefined }),
      sampleWeights: fc.option(fc.array(weightArb, { minLength: s.N, maxLength: s.N }), { nil: undefined }),
      ignore: fc.boolean(),
      labelSmoothing: fc.constantFrom(0, 0, 0.1, 1),
      reduction: fc.constantFrom<'mean' | 'sum' | 'none'>('mean', 'sum', 'none'),
    }),
  )
  .map(({ s, x, w, b, y, ...o }) => {
    if (s.equalRows) for (let i = 1; i < s.N; i++) for (let d = 0; d < s.D; d++) x[i * s.D + d] = x[d]!;
    const X: Matrix = { data: arrayOf(s.dtype, x, s.offset), rows: s.N, cols: s.D };
    const W: Matrix = { data: arrayOf(s.dtype, w.map((v) => v / Math.sqrt(s.D)), s.offset + 1), rows: s.D, cols: s.K };
    const bias = b ? arrayOf(s.dtype, b, 2) : null;
    const options: LossOptions = { reg: o.reg, regConvention: o.regConvention, labelSmoothing: o.labelSmoothing, reduction: o.reduction };
    if (o.classWeights) options.classWeights = o.classWeights;
    if (o.sampleWeights) options.sampleWeights = o.sampleWeights;
    const labels = Int32Array.from(y);
    if (o.ignore) {
      options.ignoreIndex = -7;
      labels[0] = -7;
    }
    return { ...s, X, W, b: bias, y: labels, options };
  });

/** Scores that fit the dtype: the adversarial magnitudes must not overflow it, or there is nothing to compare. */
function representable(dtype: Dtype, X: Matrix, W: Matrix, b: FloatArray | null): boolean {
  return scoreScale(X, W, b) < (dtype === 'float32' ? 1e30 : 1e250);
}

function weightScale(o: LossOptions, N: number): number {
  const cw = o.classWeights ? Math.max(1, ...o.classWeights) : 1;
  const sw = o.sampleWeights ? Math.max(1, ...o.sampleWeights) : 1;
  return cw * sw * (o.reduction === 'mean' ? 1 : N) * 4;
}

describe('properties against the reference', () => {
  test('lossAndGradients, every ISA, random options and values', () => {
    fc.assert(
      fc.property(problemArb, (p) => {
        native().selectIsa(p.isa);
        expect(backend().isa).toBe(p.isa);
        if (!representable(p.dtype, p.X, p.W, p.b)) return;
        const got = lossAndGradients(p.X, p.y, p.W, p.b, p.options);
        const want = reference.lossAndGradients(p.X, p.y, p.W, p.b, p.options);
        const tol = lossTolerances(p.dtype, p.X, p.W, p.b, p.options.reg);
        const k = weightScale(p.options, p.X.rows);
        // with 'mean' the weights cancel, but a tiny total weight divides rounding by itself
        const meanScale = p.options.reduction === 'mean' && p.options.sampleWeights ? 1 / Math.max(1e-3, Math.min(1, ...p.options.sampleWeights.filter((v) => v > 0))) : 1;
        expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(tol.loss * k * meanScale + 1e-300);
        expectAllClose(got.dW.data, want.dW.data, tol.dW * k * meanScale, 'dW');
        if (p.b) expectAllClose(got.db!, want.db!, tol.db * k * meanScale, 'db');
        if (got.losses) expectAllClose(got.losses, want.losses!, tol.loss * k, 'losses');
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  test('scores, softmax and predict, every ISA', () => {
    fc.assert(
      fc.property(problemArb, (p) => {
        native().selectIsa(p.isa);
        if (!representable(p.dtype, p.X, p.W, p.b)) return;
        const S = scores(p.X, p.W, p.b);
        const Sref = reference.scores(p.X, p.W, p.b);
        const tolS = 4 * EPS[p.dtype] * (p.D + 2) * scoreScale(p.X, p.W, p.b) + 1e-300;
        expectAllClose(S.data, Sref.data, tolS, 'scores');
        expectAllClose(softmax(Sref).data, reference.softmax(Sref).data, softmaxTolerance(p.dtype, Sref), 'softmax');
        const pred = predict(p.X, p.W, p.b);
        const pref = reference.predict(p.X, p.W, p.b);
        for (let i = 0; i < p.N; i++) {
          if (pred[i] !== pref[i]) {
            expect(Math.abs(Sref.data[i * p.K + pred[i]!]! - Sref.data[i * p.K + pref[i]!]!)).toBeLessThanOrEqual(2 * tolS);
          }
        }
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  test('async equals sync bitwise; an accumulator over two chunks equals one call', async () => {
    await fc.assert(
      fc.asyncProperty(problemArb, async (p) => {
        native().selectIsa(p.isa);
        if (!representable(p.dtype, p.X, p.W, p.b) || p.options.reduction === 'none') return;
        const sync = lossAndGradients(p.X, p.y, p.W, p.b, p.options);
        const asyncResult = await lossAndGradientsAsync(p.X, p.y, p.W, p.b, p.options);
        expect(Object.is(sync.loss, asyncResult.loss)).toBe(true);
        expect(bitwiseEqual(sync.dW.data, asyncResult.dW.data)).toBe(true);
        // These problems are small enough to run at once; with options.out a call always goes
        // through the addon's job thread: the same bits there.
        const Arr = p.dtype === 'float32' ? Float32Array : Float64Array;
        const out = { dW: new Arr(p.D * p.K), db: p.b ? new Arr(p.K) : null };
        const queued = await lossAndGradientsAsync(p.X, p.y, p.W, p.b, { ...p.options, out });
        expect(Object.is(sync.loss, queued.loss)).toBe(true);
        expect(bitwiseEqual(sync.dW.data, queued.dW.data)).toBe(true);
        const { classWeights, ignoreIndex, labelSmoothing, reg, regConvention, sampleWeights } = p.options;
        const accOptions = { reg: reg ?? 0, regConvention: regConvention ?? 'full', labelSmoothing: labelSmoothing ?? 0, ...(classWeights ? { classWeights } : {}), ...(ignoreIndex !== undefined ? { ignoreIndex } : {}) };
        const acc = new GradientAccumulator(p.W, p.b, accOptions);
        const cut = Math.floor(p.N / 2);
        const part = (s: number, e: number) => ({ data: p.X.data.subarray(s * p.D, e * p.D) as FloatArray, rows: e - s, cols: p.D });
        if (cut > 0) acc.add(part(0, cut), p.y.subarray(0, cut), sampleWeights ? { sampleWeights: sampleWeights.slice(0, cut) } : {});
        acc.add(part(cut, p.N), p.y.subarray(cut), sampleWeights ? { sampleWeights: sampleWeights.slice(cut) } : {});
        const r = acc.result({ reduction: p.options.reduction === 'sum' ? 'sum' : 'mean' });
        const tol = lossTolerances(p.dtype, p.X, p.W, p.b, p.options.reg) ;
        const k = weightScale(p.options, p.N) * 4;
        expect(Math.abs(r.loss - sync.loss)).toBeLessThanOrEqual(tol.loss * k + 1e-300 + Math.abs(sync.loss) * 64 * EPS.float64);
      }),
      { seed: SEED + 2, numRuns: Math.ceil(RUNS / 2) },
    );
  });
});

describe('properties of validation: wrong inputs throw the right error and change nothing', () => {
  const wrongArb = fc.record({
    dtype: fc.constantFrom<Dtype>('float32', 'float64'),
    N: fc.integer({ min: 1, max: 9 }),
    D: fc.integer({ min: 1, max: 9 }),
    K: fc.integer({ min: 2, max: 9 }),
    fault: fc.constantFrom(
      'xLength',
      'wRows',
      'bLength',
      'wDtype',
      'labelHigh',
      'labelNegative',
      'labelFraction',
      'labelCount',
      'reg',
      'threads',
      'smoothing',
      'classWeightsLength',
      'sampleWeightNegative',
      'unknownOption',
      'xNotMatrix',
      'nonFinite',
    ),
    where: fc.nat(),
    bad: fc.oneof(fc.constant(NaN), fc.constant(-1), fc.constant(1.5), fc.constant(Infinity), fc.constant(1e9)),
  });

  const expected: Record<string, [ErrorConstructor, string]> = {
    xLength: [RangeError, 'ERR_SHAPE'],
    wRows: [RangeError, 'ERR_SHAPE'],
    bLength: [RangeError, 'ERR_SHAPE'],
    wDtype: [TypeError, 'ERR_DTYPE'],
    labelHigh: [RangeError, 'ERR_LABEL'],
    labelNegative: [RangeError, 'ERR_LABEL'],
    labelFraction: [RangeError, 'ERR_LABEL'],
    labelCount: [RangeError, 'ERR_SHAPE'],
    reg: [RangeError, 'ERR_OPTION'],
    threads: [RangeError, 'ERR_OPTION'],
    smoothing: [RangeError, 'ERR_OPTION'],
    classWeightsLength: [RangeError, 'ERR_OPTION'],
    sampleWeightNegative: [RangeError, 'ERR_OPTION'],
    unknownOption: [RangeError, 'ERR_OPTION'],
    xNotMatrix: [TypeError, 'ERR_TYPE'],
    nonFinite: [RangeError, 'ERR_NON_FINITE'],
  };

  test('lossAndGradients, its async form, and an accumulator', async () => {
    await fc.assert(
      fc.asyncProperty(wrongArb, async (c) => {
        const Ctor = c.dtype === 'float32' ? Float32Array : Float64Array;
        let X: unknown = { data: new Ctor(c.N * c.D).fill(0.5), rows: c.N, cols: c.D };
        let W: Matrix = { data: new Ctor(c.D * c.K).fill(0.25), rows: c.D, cols: c.K };
        let b: FloatArray = new Ctor(c.K);
        let y: number[] = Array.from({ length: c.N }, (_, i) => i % c.K);
        let o: Record<string, unknown> = {};
        const i = c.where % c.N;
        switch (c.fault) {
          case 'xLength': X = { data: new Ctor(c.N * c.D + 1), rows: c.N, cols: c.D }; break;
          case 'wRows': W = { data: new Ctor((c.D + 1) * c.K), rows: c.D + 1, cols: c.K }; break;
          case 'bLength': b = new Ctor(c.K + 1); break;
          case 'wDtype': W = { data: new (c.dtype === 'float32' ? Float64Array : Float32Array)(c.D * c.K), rows: c.D, cols: c.K }; break;
          case 'labelHigh': y[i] = c.K; break;
          case 'labelNegative': y[i] = -1; break;
          case 'labelFraction': y[i] = 0.5; break;
          case 'labelCount': y = y.concat([0]); break;
          case 'reg': o = { reg: Number.isFinite(c.bad) && c.bad >= 0 ? -c.bad - 1 : c.bad }; break;
          case 'threads': o = { threads: Number.isInteger(c.bad) && c.bad >= 1 && c.bad <= 256 ? 0 : c.bad }; break;
          case 'smoothing': o = { labelSmoothing: c.bad >= 0 && c.bad <= 1 ? 2 : c.bad }; break;
          case 'classWeightsLength': o = { classWeights: new Array(c.K + 1).fill(1) }; break;
          case 'sampleWeightNegative': o = { sampleWeights: Array.from({ length: c.N }, (_, j) => (j === i ? -1 : 1)) }; break;
          case 'unknownOption': o = { regularisation: 1 }; break;
          case 'xNotMatrix': X = new Ctor(c.N * c.D); break;
          case 'nonFinite': {
            const data = new Ctor(c.N * c.D).fill(0.5);
            data[i * c.D] = c.bad === -1 || c.bad === 1.5 ? NaN : c.dtype === 'float32' && c.bad === 1e9 ? Infinity : Number.isNaN(c.bad) || !Number.isFinite(c.bad) ? c.bad : NaN;
            X = { data, rows: c.N, cols: c.D };
            break;
          }
        }
        const [Cls, code] = expected[c.fault]!;
        const snapshot = (v: unknown) => JSON.stringify(v, (_k, val) => (ArrayBuffer.isView(val) ? Array.from(val as Float64Array) : val));
        const before = snapshot([X, W, b, y, o]);
        const check = (e: unknown) => {
          expect(e).toBeInstanceOf(Cls);
          expect((e as { code: string }).code).toBe(code);
          expect((e as Error).message).toMatch(/^Expected .+ for .+ but received /s);
        };
        let thrown: unknown = null;
        try {
          lossAndGradients(X as never, y, W, b, o as never);
        } catch (e) {
          thrown = e;
        }
        check(thrown);
        check(await lossAndGradientsAsync(X as never, y, W, b, o as never).then(() => null, (e: unknown) => e));
        // an accumulator refuses the same add and keeps its state
        if (!['wRows', 'bLength', 'wDtype', 'classWeightsLength', 'smoothing', 'reg', 'unknownOption'].includes(c.fault)) {
          const acc = new GradientAccumulator(W, b);
          acc.add({ data: new Ctor(c.D).fill(0.1), rows: 1, cols: c.D }, [0]);
          const state = acc.toBytes();
          const addOptions = c.fault === 'sampleWeightNegative' || c.fault === 'threads' ? o : {};
          let refused: unknown = null;
          try {
            acc.add(X as never, y, addOptions as never);
          } catch (e) {
            refused = e;
          }
          check(refused);
          expect(bitwiseEqual(acc.toBytes(), state)).toBe(true);
        }
        expect(snapshot([X, W, b, y, o])).toBe(before);
      }),
      { seed: SEED + 3, numRuns: RUNS * 2 },
    );
  });
});

test('maxAbs helper sanity (guards the tolerance derivation)', () => {
  expect(maxAbs([1, -3, 2])).toBe(3);
});
