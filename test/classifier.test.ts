// SoftmaxClassifier: every optimizer on separable data, L-BFGS against long gradient descent, the
// initial loss, serialisation, reproducibility, abort, divergence and every rejected option.
import { describe, expect, test } from 'vitest';
import { lossAndGradients, predict, scores, softmax, SoftmaxClassifier, type Dtype, type Matrix, type TrainError, type TrainOptions } from '../src/index.js';
import { bitwiseEqual, expectAllClose, randomMatrix, rng } from './helpers.js';

/** K well-separated Gaussian-ish clusters in D dimensions, N rows (balanced). */
function clusters(dtype: Dtype, N: number, D: number, K: number, seed: number, spread = 0.3) {
  const next = rng(seed);
  const centers = randomMatrix('float64', K, D, next, 3);
  const X: Matrix = { data: dtype === 'float32' ? new Float32Array(N * D) : new Float64Array(N * D), rows: N, cols: D };
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const k = i % K;
    y[i] = k;
    for (let d = 0; d < D; d++) X.data[i * D + d] = centers.data[k * D + d]! + spread * (2 * next() - 1);
  }
  return { X, y };
}

function accuracy(pred: Int32Array, y: Int32Array): number {
  let right = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) right++;
  return right / y.length;
}

const copy = (m: SoftmaxClassifier) => ({ W: m.W.data.slice(), b: m.b.slice() });

describe('optimizers on separable data', () => {
  const cases: [string, TrainOptions][] = [
    ['sgd', { optimizer: 'sgd', learningRate: 0.1, epochs: 20, batchSize: 16 }],
    ['momentum', { optimizer: 'momentum', learningRate: 0.05, momentum: 0.9, epochs: 20, batchSize: 16 }],
    ['adam', { optimizer: 'adam', learningRate: 0.05, epochs: 20, batchSize: 16 }],
    ['lbfgs', { optimizer: 'lbfgs', iterations: 100, reg: 1e-3 }],
  ];
  for (const dtype of ['float32', 'float64'] as const) {
    test.each(cases)(`%s (${dtype}) lowers the loss and fits every training row`, (_, options) => {
      const { X, y } = clusters(dtype, 90, 5, 3, 11);
      const model = new SoftmaxClassifier({ features: 5, classes: 3, dtype, seed: 3 });
      const before = model.evaluate(X, y).loss;
      const history = model.train(X, y, options);
      const after = model.evaluate(X, y).loss;
      expect(after).toBeLessThan(before / 5);
      expect(history.loss.at(-1)!).toBeLessThan(history.loss[0]!);
      expect(accuracy(model.predict(X), y)).toBe(1);
      expect(history.trainAccuracy.at(-1)).toBe(1);
      expect(model.W.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
    });
  }

  test('history and progress events: loss per step, accuracies per epoch', () => {
    const { X, y } = clusters('float32', 100, 4, 3, 5);
    const val = clusters('float32', 30, 4, 3, 5);
    const model = new SoftmaxClassifier({ features: 4, classes: 3, seed: 1 });
    const events: { iteration: number; epoch: number; epochEnd: boolean; valAccuracy?: number }[] = [];
    const h = model.train(X, y, { epochs: 3, batchSize: 30, validation: val, onProgress: (e) => events.push(e) });
    // ceil(100 / 30) = 4 steps per epoch, the last one of 10 rows.
    expect(h.iterations).toBe(12);
    expect(h.loss).toHaveLength(12);
    expect(h.trainAccuracy).toHaveLength(3);
    expect(h.valAccuracy).toHaveLength(3);
    expect(h.valLoss).toHaveLength(3);
    expect(h.epochs).toBe(3);
    expect(h.stopReason).toBe('completed');
    expect(events.map((e) => e.iteration)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(events.filter((e) => e.epochEnd).map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(events.filter((e) => e.valAccuracy !== undefined)).toHaveLength(3);
  });

  test('iterations instead of epochs, lrDecay, and a warm start continues from the current weights', () => {
    const { X, y } = clusters('float64', 60, 3, 3, 8);
    const model = new SoftmaxClassifier({ features: 3, classes: 3, dtype: 'float64', seed: 2 });
    const lrs: number[] = [];
    const first = model.train(X, y, { iterations: 7, batchSize: 20, learningRate: 0.1, lrDecay: 0.5, onProgress: (e) => lrs.push(e.learningRate) });
    expect(first.iterations).toBe(7);
    expect(lrs).toEqual([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
    const second = model.train(X, y, { iterations: 3, batchSize: 60, shuffle: false, learningRate: 0.1 });
    expect(second.loss[0]!).toBeLessThan(first.loss[0]!);
  });
});

describe('lbfgs', () => {
  test('reaches a gradient max-norm below its tolerance, at the optimum of long full-batch gradient descent', () => {
    const { X, y } = clusters('float64', 60, 4, 3, 21, 2.5); // overlapping: a bounded optimum
    const reg = 0.05;
    const lb = new SoftmaxClassifier({ features: 4, classes: 3, dtype: 'float64', seed: 4 });
    const h = lb.train(X, y, { optimizer: 'lbfgs', reg, tolerance: 1e-9, iterations: 500 });
    expect(h.stopReason).toBe('converged');
    expect(h.gradientMaxNorm!).toBeLessThan(1e-9);
    const g = lossAndGradients(X, y, lb.W, lb.b, { reg });
    const norm = Math.max(...Array.from(g.dW.data, Math.abs), ...Array.from(g.db!, Math.abs));
    expect(norm).toBeLessThan(1e-9);
    expect(h.loss.at(-1)).toBe(g.loss);

    const gd = new SoftmaxClassifier({ features: 4, classes: 3, dtype: 'float64', seed: 4 });
    gd.train(X, y, { optimizer: 'sgd', batchSize: 60, shuffle: false, learningRate: 0.1, iterations: 20000, reg });
    expectAllClose(gd.W.data, lb.W.data, 1e-6, 'W of gradient descent vs lbfgs');
    expectAllClose(gd.b, lb.b, 1e-6, 'b of gradient descent vs lbfgs');
    expect(gd.evaluate(X, y, { reg }).loss).toBeCloseTo(lb.evaluate(X, y, { reg }).loss, 10);
  });

  test('regConvention and sampleWeights pass through to the loss', () => {
    const { X, y } = clusters('float64', 40, 3, 2, 9, 3);
    const a = new SoftmaxClassifier({ features: 3, classes: 2, dtype: 'float64', seed: 1 });
    const b = new SoftmaxClassifier({ features: 3, classes: 2, dtype: 'float64', seed: 1 });
    a.train(X, y, { optimizer: 'lbfgs', reg: 0.2, regConvention: 'half', tolerance: 1e-10, iterations: 300 });
    b.train(X, y, { optimizer: 'lbfgs', reg: 0.1, tolerance: 1e-10, iterations: 300 }); // 0.1·ΣW² = ½·0.2·ΣW²
    expectAllClose(a.W.data, b.W.data, 1e-7, 'half convention at twice the reg');
    const w = new Float64Array(40).fill(3);
    const c = new SoftmaxClassifier({ features: 3, classes: 2, dtype: 'float64', seed: 1 });
    c.train(X, y, { optimizer: 'lbfgs', reg: 0.1, tolerance: 1e-10, iterations: 300, sampleWeights: w });
    expectAllClose(c.W.data, b.W.data, 1e-7, 'uniform sample weights leave the mean loss as it is');
  });
});

describe('initialisation, inference, serialisation', () => {
  test('the initial loss on K balanced classes is ≈ ln K', () => {
    for (const K of [3, 10]) {
      const next = rng(K);
      const N = 50 * K;
      const X = randomMatrix('float32', N, 40, next);
      const y = Int32Array.from({ length: N }, (_, i) => i % K);
      const model = new SoftmaxClassifier({ features: 40, classes: K, seed: 9 });
      expect(Math.abs(model.evaluate(X, y).loss - Math.log(K))).toBeLessThan(2e-3);
      const h = model.train(X, y, { iterations: 1, batchSize: N, shuffle: false });
      expect(Math.abs(h.loss[0]! - Math.log(K))).toBeLessThan(2e-3);
    }
  });

  test('W = 0.001·N(0, 1) from the seed, b = 0; the same seed gives the same model, trained the same way', () => {
    const a = new SoftmaxClassifier({ features: 30, classes: 7, seed: 42 });
    const b = new SoftmaxClassifier({ features: 30, classes: 7, seed: 42 });
    const c = new SoftmaxClassifier({ features: 30, classes: 7, seed: 43 });
    expect(a.W.rows).toBe(30);
    expect(a.W.cols).toBe(7);
    expect(bitwiseEqual(a.W.data, b.W.data)).toBe(true);
    expect(bitwiseEqual(a.W.data, c.W.data)).toBe(false);
    expect(Array.from(a.b)).toEqual(new Array(7).fill(0));
    const w = Array.from(a.W.data);
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const sd = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(3e-4);
    expect(sd).toBeGreaterThan(0.0008);
    expect(sd).toBeLessThan(0.0012);

    const { X, y } = clusters('float32', 80, 30, 7, 3);
    a.train(X, y, { epochs: 3, batchSize: 16, optimizer: 'adam' });
    b.train(X, y, { epochs: 3, batchSize: 16, optimizer: 'adam' });
    expect(bitwiseEqual(a.W.data, b.W.data)).toBe(true);
    expect(bitwiseEqual(a.b, b.b)).toBe(true);
  });

  test('train and trainAsync give bitwise the same model', async () => {
    const { X, y } = clusters('float32', 80, 6, 4, 13);
    const a = new SoftmaxClassifier({ features: 6, classes: 4, seed: 5 });
    const b = new SoftmaxClassifier({ features: 6, classes: 4, seed: 5 });
    const opts: TrainOptions = { epochs: 4, batchSize: 25, optimizer: 'momentum', validation: { X, y } };
    const ha = a.train(X, y, opts);
    const hb = await b.trainAsync(X, y, opts);
    expect(hb.loss).toEqual(ha.loss);
    expect(bitwiseEqual(a.W.data, b.W.data)).toBe(true);
    expect(bitwiseEqual(a.b, b.b)).toBe(true);
  });

  test('trainAsync leaves the event loop free between passes', async () => {
    const { X, y } = clusters('float32', 2000, 64, 4, 19);
    const model = new SoftmaxClassifier({ features: 64, classes: 4, seed: 5 });
    // Every turn of the event loop runs the check phase once: count the turns during training.
    let turns = 0;
    let running = true;
    const turn = () => {
      turns++;
      if (running) setImmediate(turn);
    };
    setImmediate(turn);
    let steps = 0;
    await model.trainAsync(X, y, { epochs: 5, batchSize: 100, onProgress: () => steps++ });
    running = false;
    expect(steps).toBe(100);
    expect(turns).toBeGreaterThanOrEqual(100);
  });

  test('predict, predictProba and evaluate', async () => {
    const { X, y } = clusters('float32', 60, 5, 3, 17);
    const model = new SoftmaxClassifier({ features: 5, classes: 3, seed: 6 });
    model.train(X, y, { epochs: 10, batchSize: 20, learningRate: 0.1 });
    const P = model.predictProba(X);
    expect(P.rows).toBe(60);
    expect(P.cols).toBe(3);
    expectAllClose(P.data, softmax(scores(X, model.W, model.b)).data, 0, 'predictProba = softmax of scores');
    for (let i = 0; i < 60; i++) expect(Math.abs(P.data[i * 3]! + P.data[i * 3 + 1]! + P.data[i * 3 + 2]! - 1)).toBeLessThan(1e-6);
    expect(Array.from(model.predict(X))).toEqual(Array.from(predict(X, model.W, model.b)));
    expect(Array.from(await model.predictAsync(X))).toEqual(Array.from(model.predict(X)));
    expectAllClose((await model.predictProbaAsync(X)).data, P.data, 0, 'predictProbaAsync');
    const e = model.evaluate(X, y);
    expect(e.accuracy).toBe(1);
    expect(e.loss).toBe(lossAndGradients(X, y, model.W, model.b).loss);
    expect(await model.evaluateAsync(X, y)).toEqual(e);
  });

  for (const dtype of ['float32', 'float64'] as const) {
    test(`toJSON / fromJSON round-trip bit for bit (${dtype}), and the restored model trains on identically`, () => {
      const { X, y } = clusters(dtype, 50, 4, 3, 2);
      const model = new SoftmaxClassifier({ features: 4, classes: 3, dtype, seed: 8, labels: ['cat', 'dog', 7] });
      model.train(X, y, { epochs: 2, batchSize: 10, learningRate: 0.37 });
      model.b[1] = -0; // the sign of a zero survives too
      const text = JSON.stringify(model);
      const back = SoftmaxClassifier.fromJSON(text);
      expect(back.dtype).toBe(dtype);
      expect(back.labels).toEqual(['cat', 'dog', 7]);
      expect(bitwiseEqual(back.W.data, model.W.data)).toBe(true);
      expect(bitwiseEqual(back.b, model.b)).toBe(true);
      expect(JSON.parse(text)).toMatchObject({ format: 'softmax-simd/classifier', version: 1, encoding: 'base64-le' });
      const again = SoftmaxClassifier.fromJSON(JSON.parse(text));
      model.train(X, y, { epochs: 2, batchSize: 10 });
      again.train(X, y, { epochs: 2, batchSize: 10 });
      expect(bitwiseEqual(again.W.data, model.W.data)).toBe(true);
    });
  }

  test('fromJSON checks every field', () => {
    const good = new SoftmaxClassifier({ features: 2, classes: 2, seed: 1 }).toJSON();
    const cases: [unknown, string, string][] = [
      ['{ not json', 'ERR_TYPE', 'json'],
      [{ ...good, format: 'other' }, 'ERR_OPTION', 'json.format'],
      [{ ...good, version: 2 }, 'ERR_OPTION', 'json.version'],
      [{ ...good, W: good.b }, 'ERR_SHAPE', 'json.W'],
      [{ ...good, b: 42 }, 'ERR_TYPE', 'json.b'],
      [{ ...good, features: 0 }, 'ERR_OPTION', 'options.features'],
      [{ ...good, dtype: 'int8' }, 'ERR_OPTION', 'options.dtype'],
      [{ ...good, b: Buffer.from(new Float32Array([NaN, 0]).buffer).toString('base64') }, 'ERR_NON_FINITE', 'json.b[0]'],
      [{ ...good, rng: [0, 0, 0, 0] }, 'ERR_OPTION', 'json.rng'],
    ];
    for (const [json, code, name] of cases) {
      expect(() => SoftmaxClassifier.fromJSON(json as never), name).toThrow(expect.objectContaining({ code, message: expect.stringContaining(name) }));
    }
  });
});

describe('abort and divergence', () => {
  test('an AbortSignal stops trainAsync; the model keeps the weights of the last completed step', async () => {
    const { X, y } = clusters('float32', 200, 8, 4, 4);
    const model = new SoftmaxClassifier({ features: 8, classes: 4, seed: 1 });
    const controller = new AbortController();
    let atAbort: { W: Float32Array | Float64Array; b: Float32Array | Float64Array } | null = null;
    const run = model.trainAsync(X, y, {
      epochs: 1000,
      batchSize: 10,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.iteration === 5) {
          atAbort = copy(model);
          controller.abort();
        }
      },
    });
    const error = (await run.catch((e: unknown) => e)) as TrainError;
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ERR_ABORTED');
    expect(error.history.iterations).toBe(5);
    expect(bitwiseEqual(model.W.data, atAbort!.W)).toBe(true);
    expect(bitwiseEqual(model.b, atAbort!.b)).toBe(true);

    // Aborted from outside, while the passes run off the event loop.
    const outside = new AbortController();
    const running = model.trainAsync(X, y, { epochs: 100000, batchSize: 10, signal: outside.signal });
    setTimeout(() => outside.abort(), 30);
    await expect(running).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    // An already aborted signal: nothing happens.
    const before = copy(model);
    await expect(model.trainAsync(X, y, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(bitwiseEqual(model.W.data, before.W)).toBe(true);
  });

  test('a non-finite loss stops training with ERR_DIVERGED naming the iteration; the weights stay finite', () => {
    const next = rng(3);
    const X = randomMatrix('float32', 40, 6, next, 1e6);
    const y = Int32Array.from({ length: 40 }, (_, i) => i % 3);
    const model = new SoftmaxClassifier({ features: 6, classes: 3, seed: 1 });
    let error: TrainError | null = null;
    try {
      model.train(X, y, { learningRate: 1e30, epochs: 50, batchSize: 10 });
    } catch (e) {
      error = e as TrainError;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect(error!.code).toBe('ERR_DIVERGED');
    const iteration = Number(/for iteration (\d+)/.exec(error!.message)?.[1]);
    expect(iteration).toBeGreaterThan(1);
    expect(error!.history.iterations).toBe(iteration - 1);
    expect(error!.history.loss.every(Number.isFinite)).toBe(true);
    expect(model.W.data.every(Number.isFinite)).toBe(true);
    expect(model.b.every(Number.isFinite)).toBe(true);
    // The model is usable after the failure.
    expect(model.predict(X)).toHaveLength(40);
  });
});

describe('bad options are rejected before any work and change nothing', () => {
  const { X, y } = clusters('float32', 30, 4, 3, 1);
  const model = new SoftmaxClassifier({ features: 4, classes: 3, seed: 1 });
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['unknown optimizer', { optimizer: 'rmsprop' }, 'ERR_OPTION', 'options.optimizer'],
    ['learningRate 0', { learningRate: 0 }, 'ERR_OPTION', 'options.learningRate'],
    ['learningRate < 0', { learningRate: -1 }, 'ERR_OPTION', 'options.learningRate'],
    ['learningRate NaN', { learningRate: NaN }, 'ERR_OPTION', 'options.learningRate'],
    ['learningRate a string', { learningRate: '0.1' }, 'ERR_OPTION', 'options.learningRate'],
    ['batchSize > N', { batchSize: 31 }, 'ERR_OPTION', 'options.batchSize'],
    ['batchSize 0', { batchSize: 0 }, 'ERR_OPTION', 'options.batchSize'],
    ['batchSize 2.5', { batchSize: 2.5 }, 'ERR_OPTION', 'options.batchSize'],
    ['epochs 0', { epochs: 0 }, 'ERR_OPTION', 'options.epochs'],
    ['iterations -1', { iterations: -1 }, 'ERR_OPTION', 'options.iterations'],
    ['epochs and iterations', { epochs: 1, iterations: 1 }, 'ERR_OPTION', 'options.iterations'],
    ['momentum 1', { optimizer: 'momentum', momentum: 1 }, 'ERR_OPTION', 'options.momentum'],
    ['momentum with sgd', { momentum: 0.9 }, 'ERR_OPTION', 'options.momentum'],
    ['beta2 1', { optimizer: 'adam', beta2: 1 }, 'ERR_OPTION', 'options.beta2'],
    ['lrDecay 0', { lrDecay: 0 }, 'ERR_OPTION', 'options.lrDecay'],
    ['lrDecay > 1', { lrDecay: 1.5 }, 'ERR_OPTION', 'options.lrDecay'],
    ['reg < 0', { reg: -1 }, 'ERR_OPTION', 'options.reg'],
    ['regConvention', { regConvention: 'quarter' }, 'ERR_OPTION', 'options.regConvention'],
    ['reduction none', { reduction: 'none' }, 'ERR_OPTION', 'options.reduction'],
    ['shuffle a string', { shuffle: 'yes' }, 'ERR_OPTION', 'options.shuffle'],
    ['patience without validation', { patience: 2 }, 'ERR_OPTION', 'options.patience'],
    ['validation X of the wrong width', { validation: { X: { data: new Float32Array(6), rows: 2, cols: 3 }, y: [0, 1] } }, 'ERR_SHAPE', 'options.validation.X.cols'],
    ['validation labels out of range', { validation: { X, y: new Int32Array(30).fill(3) } }, 'ERR_LABEL', 'y[0]'],
    ['onProgress not a function', { onProgress: 5 }, 'ERR_OPTION', 'options.onProgress'],
    ['signal not a signal', { signal: {} }, 'ERR_OPTION', 'options.signal'],
    ['tolerance < 0', { optimizer: 'lbfgs', tolerance: -1 }, 'ERR_OPTION', 'options.tolerance'],
    ['learningRate with lbfgs', { optimizer: 'lbfgs', learningRate: 0.1 }, 'ERR_OPTION', 'options.learningRate'],
    ['batchSize with lbfgs', { optimizer: 'lbfgs', batchSize: 10 }, 'ERR_OPTION', 'options.batchSize'],
    ['tolerance with adam', { optimizer: 'adam', tolerance: 1e-3 }, 'ERR_OPTION', 'options.tolerance'],
    ['an unknown option', { learningrate: 0.1 }, 'ERR_OPTION', 'options.learningrate'],
    ['threads 0', { threads: 0 }, 'ERR_OPTION', 'options.threads'],
    ['sampleWeights of the wrong length', { sampleWeights: [1, 2] }, 'ERR_OPTION', 'options.sampleWeights.length'],
    ['an aborted signal', { signal: AbortSignal.abort() }, 'ERR_ABORTED', 'aborted'],
  ];
  test.each(cases)('%s', async (_, options, code, name) => {
    const before = copy(model);
    const calls: (() => unknown)[] = [() => model.train(X, y, options as TrainOptions)];
    for (const call of calls) expect(call).toThrow(expect.objectContaining({ code, message: expect.stringContaining(name) }));
    await expect(model.trainAsync(X, y, options as TrainOptions)).rejects.toMatchObject({ code, message: expect.stringContaining(name) });
    expect(bitwiseEqual(model.W.data, before.W)).toBe(true);
    expect(bitwiseEqual(model.b, before.b)).toBe(true);
  });

  test('bad data: the wrong dtype, width and labels', () => {
    expect(() => model.train({ data: new Float64Array(120), rows: 30, cols: 4 }, y)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => model.train({ data: new Float32Array(90), rows: 30, cols: 3 }, y)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE', message: expect.stringContaining('X.cols') }));
    expect(() => model.train(X, new Int32Array(30).fill(5))).toThrow(expect.objectContaining({ code: 'ERR_LABEL' }));
    expect(() => model.train(X, new Int32Array(29))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
  });

  test('bad constructor options', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ features: 0, classes: 2 }, 'options.features'],
      [{ features: 2, classes: 1 }, 'options.classes'],
      [{ features: 2, classes: 2, dtype: 'float16' }, 'options.dtype'],
      [{ features: 2, classes: 2, seed: -1 }, 'options.seed'],
      [{ features: 2, classes: 2, labels: ['a'] }, 'options.labels.length'],
      [{ features: 2, classes: 2, labels: ['a', 'a'] }, 'options.labels[1]'],
      [{ features: 2, classes: 2, bias: false }, 'options.bias'],
    ];
    for (const [options, name] of cases) {
      expect(() => new SoftmaxClassifier(options as never), name).toThrow(expect.objectContaining({ code: 'ERR_OPTION', message: expect.stringContaining(name) }));
    }
  });

  test('one training call at a time', async () => {
    const m = new SoftmaxClassifier({ features: 4, classes: 3, seed: 1 });
    const running = m.trainAsync(X, y, { epochs: 20, batchSize: 5 });
    expect(() => m.train(X, y)).toThrow(expect.objectContaining({ code: 'ERR_STATE' }));
    await running;
    expect(m.train(X, y, { epochs: 1 }).iterations).toBe(1);
  });
});

describe('early stopping', () => {
  test('stops when the validation loss stops improving and keeps the best weights', () => {
    const { X, y } = clusters('float32', 60, 4, 3, 6);
    // Validation labels that disagree with the training ones: its loss rises as training fits.
    const vy = Int32Array.from(y, (k) => (k + 1) % 3);
    const model = new SoftmaxClassifier({ features: 4, classes: 3, seed: 2 });
    const atEpoch: Float32Array[] = [];
    const h = model.train(X, y, {
      epochs: 50,
      batchSize: 20,
      learningRate: 0.1,
      validation: { X, y: vy },
      patience: 3,
      onProgress: (e) => {
        if (e.epochEnd) atEpoch[e.epoch] = model.W.data.slice() as Float32Array;
      },
    });
    expect(h.stopReason).toBe('early-stopping');
    expect(h.epochs).toBe(h.bestEpoch! + 3);
    expect(h.valLoss).toHaveLength(h.epochs);
    expect(Math.min(...h.valLoss)).toBe(h.valLoss[h.bestEpoch! - 1]);
    expect(bitwiseEqual(model.W.data, atEpoch[h.bestEpoch!]!)).toBe(true);
  });
});
