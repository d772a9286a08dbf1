// Threads and async: every thread count against the reference, bitwise determinism per count, many
// calls in flight, the event loop stays responsive, and the work really runs off the main thread.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { lossAndGradients, lossAndGradientsAsync, predict, predictAsync, reference, scores, scoresAsync, type Dtype } from '../src/index.js';
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

describe.each(['float32', 'float64'] as const)('thread counts (%s)', (dtype) => {
  // Large enough that every thread count really splits the rows (parts_for needs work per part).
  const { X, W, b, y } = data(dtype, 4099, 67, 11, 31);
  const want = reference.lossAndGradients(X, y, W, b, { reg: 0.01 });
  const tol = lossTolerances(dtype, X, W, b, 0.01);

  test.each([1, 2, 3, 7])('threads = %i matches the reference and repeats bitwise', (threads) => {
    const r = lossAndGradients(X, y, W, b, { reg: 0.01, threads });
    expect(Math.abs(r.loss - want.loss)).toBeLessThanOrEqual(tol.loss);
    expectAllClose(r.dW.data, want.dW.data, tol.dW, 'dW');
    expectAllClose(r.db!, want.db!, tol.db, 'db');
    const again = lossAndGradients(X, y, W, b, { reg: 0.01, threads });
    expect(Object.is(again.loss, r.loss)).toBe(true);
    expect(bitwiseEqual(again.dW.data, r.dW.data)).toBe(true);
    expect(bitwiseEqual(again.db!, r.db!)).toBe(true);
    // scores and predict are per row: identical for any thread count
    expect(bitwiseEqual(scores(X, W, b, { threads }).data, scores(X, W, b, { threads: 1 }).data)).toBe(true);
    expect(bitwiseEqual(predict(X, W, b, { threads }), predict(X, W, b, { threads: 1 }))).toBe(true);
  });
});

describe.each(['float32', 'float64'] as const)('more chunks than threads (%s)', (dtype) => {
  // Many rows of a small D×K: the addon splits them into more chunks than threads (19 here, each
  // with its own sums: native/linear.cpp chunks_for), taken by whichever thread is free first, and
  // adds the chunks' sums in chunk order: the bits must not depend on which thread took which.
  const N = 100000;
  const { X, W, b, y } = data(dtype, N, 8, 2, 41);
  const want = reference.lossAndGradients(X, y, W, b);
  const tol = lossTolerances(dtype, X, W, b, 0);

  test.each([2, 3, 7])('threads = %i matches the reference, and 5 calls give the same bits', (threads) => {
    const r = lossAndGradients(X, y, W, b, { threads });
    expect(Math.abs(r.loss - want.loss)).toBeLessThanOrEqual(tol.loss);
    expectAllClose(r.dW.data, want.dW.data, tol.dW, 'dW');
    expectAllClose(r.db!, want.db!, tol.db, 'db');
    for (let call = 0; call < 4; call++) {
      const again = lossAndGradients(X, y, W, b, { threads });
      expect(Object.is(again.loss, r.loss)).toBe(true);
      expect(bitwiseEqual(again.dW.data, r.dW.data)).toBe(true);
      expect(bitwiseEqual(again.db!, r.db!)).toBe(true);
    }
  });

  test('of two non-finite rows in different chunks, the error names the first', async () => {
    const values = X.data.slice();
    values[(N - 5) * 8] = Infinity;
    values[Math.floor(N / 3) * 8 + 3] = NaN;
    const bad = { ...X, data: values };
    for (const threads of [2, 3]) {
      expect(() => lossAndGradients(bad, y, W, b, { threads })).toThrow(
        expect.objectContaining({ code: 'ERR_NON_FINITE', message: expect.stringContaining(`row ${Math.floor(N / 3)} of X`) }),
      );
      await expect(lossAndGradientsAsync(bad, y, W, b, { threads })).rejects.toMatchObject({ code: 'ERR_NON_FINITE', message: expect.stringContaining(`row ${Math.floor(N / 3)} of X`) });
    }
  });
});

test('few rows of a wide D×K (fewer blocks than threads): the rows still split, every thread count gives the same scores and labels', () => {
  // 8 rows of 3072 × 1000: one block (native/linear.cpp chunk_begin then splits the rows evenly).
  const { X, W, b, y } = data('float32', 8, 3072, 1000, 43);
  const S1 = scores(X, W, b, { threads: 1 }).data;
  const P1 = predict(X, W, b, { threads: 1 });
  for (const threads of [2, 3]) {
    expect(bitwiseEqual(scores(X, W, b, { threads }).data, S1)).toBe(true);
    expect(bitwiseEqual(predict(X, W, b, { threads }), P1)).toBe(true);
  }
  const one = lossAndGradients(X, y, W, b, { threads: 1 });
  const two = lossAndGradients(X, y, W, b, { threads: 2 });
  const tol = lossTolerances('float32', X, W, b, 0);
  expect(Math.abs(two.loss - one.loss)).toBeLessThanOrEqual(tol.loss);
  expectAllClose(two.dW.data, one.dW.data, tol.dW, 'dW');
});

test('50 async calls in flight at once, each with its own right answer', async () => {
  // Each above the addon's inline limit (65,536 multiply-adds, below): all 50 go through its queue.
  const problems = Array.from({ length: 50 }, (_, i) => data(i % 2 ? 'float32' : 'float64', 1000 + i * 7, 40 + (i % 5), 2 + (i % 7), 1000 + i));
  const results = await Promise.all(problems.map((p, i) => lossAndGradientsAsync(p.X, p.y, p.W, p.b, { threads: 1 + (i % 3) })));
  results.forEach((r, i) => {
    const p = problems[i]!;
    const sync = lossAndGradients(p.X, p.y, p.W, p.b, { threads: 1 + (i % 3) });
    expect(Object.is(r.loss, sync.loss)).toBe(true);
    expect(bitwiseEqual(r.dW.data, sync.dW.data)).toBe(true);
  });
});

test('a small async call runs at once: it settles before a large call queued ahead of it, with the sync bits', async () => {
  // 64 × 32 × 4 = 8,192 multiply-adds: under binding/addon.cpp's kInlineAsyncWork, so the addon runs
  // it on the calling thread instead of handing it to its job thread behind the large call.
  const large = data('float32', 20_000, 256, 10, 5);
  const order: string[] = [];
  const first = lossAndGradientsAsync(large.X, large.y, large.W, large.b).then((r) => (order.push('large'), r));
  for (const dtype of ['float32', 'float64'] as const) {
    const small = data(dtype, 64, 32, 4, 6);
    const r = await lossAndGradientsAsync(small.X, small.y, small.W, small.b, { reg: 0.01, threads: 2 });
    order.push(`small ${dtype}`);
    const sync = lossAndGradients(small.X, small.y, small.W, small.b, { reg: 0.01, threads: 2 });
    expect(Object.is(r.loss, sync.loss)).toBe(true);
    expect(bitwiseEqual(r.dW.data, sync.dW.data)).toBe(true);
    expect(bitwiseEqual(r.db!, sync.db!)).toBe(true);
  }
  const r = await first;
  expect(order).toEqual(['small float32', 'small float64', 'large']);
  const sync = lossAndGradients(large.X, large.y, large.W, large.b);
  expect(Object.is(r.loss, sync.loss)).toBe(true);
});

test('scoresAsync and predictAsync: small calls run at once, ahead of a large queued call; queued ones too give the sync bits', async () => {
  // 64 × 32 × 4 multiply-adds: under kInlineAsyncWork (binding/addon.cpp). The large scores and
  // predict calls (2,000 × 64 × 10) go through the queue, behind the large loss call.
  const large = data('float64', 2_000, 64, 10, 7);
  const order: string[] = [];
  const first = lossAndGradientsAsync(large.X, large.y, large.W, large.b).then(() => order.push('large loss'));
  // The limit itself: 64 × 32 × 32 = 65,536 runs at once, 65 × 32 × 32 takes the queue.
  const atLimit = data('float32', 64, 32, 32, 9);
  const overLimit = data('float32', 65, 32, 32, 10);
  const over = scoresAsync(overLimit.X, overLimit.W, overLimit.b).then(() => order.push('over the limit'));
  await scoresAsync(atLimit.X, atLimit.W, atLimit.b);
  order.push('at the limit');
  const queuedScores = scoresAsync(large.X, large.W, large.b, { threads: 2 }).then((S) => (order.push('large scores'), S));
  const queuedLabels = predictAsync(large.X, large.W, large.b).then((y) => (order.push('large predict'), y));
  for (const dtype of ['float32', 'float64'] as const) {
    const small = data(dtype, 64, 32, 4, 8);
    const S = await scoresAsync(small.X, small.W, small.b, { threads: 2 });
    order.push(`small scores ${dtype}`);
    expect(bitwiseEqual(S.data, scores(small.X, small.W, small.b).data)).toBe(true);
    const labels = await predictAsync(small.X, small.W, null);
    order.push(`small predict ${dtype}`);
    expect(Array.from(labels)).toEqual(Array.from(predict(small.X, small.W, null)));
  }
  await first;
  const [S, labels] = await Promise.all([queuedScores, queuedLabels, over]);
  expect(order.slice(0, 5)).toEqual(['at the limit', 'small scores float32', 'small predict float32', 'small scores float64', 'small predict float64']);
  expect(order.slice(5)).toEqual(['large loss', 'over the limit', 'large scores', 'large predict']);
  expect(bitwiseEqual(S.data, scores(large.X, large.W, large.b, { threads: 2 }).data)).toBe(true);
  expect(Array.from(labels)).toEqual(Array.from(predict(large.X, large.W, large.b)));
});

describe('off the event loop', () => {
  // About 0.5 GFLOP a call: long enough to matter, short enough for a test.
  const big = data('float32', 50_000, 256, 10, 77);

  // Under the sanitizer build (scripts/test-asan.sh) every call is several times slower: timing is not its job.
  test.skipIf(process.env.SOFTMAX_SIMD_SANITIZED)('the event loop stays responsive while async calls run (p99 delay < 20 ms)', async () => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const until = performance.now() + 1500;
    let calls = 0;
    while (performance.now() < until) {
      await lossAndGradientsAsync(big.X, big.y, big.W, big.b);
      calls++;
    }
    h.disable();
    const p99ms = h.percentile(99) / 1e6;
    expect(calls).toBeGreaterThan(0);
    expect(p99ms, `p99 event-loop delay ${p99ms.toFixed(2)} ms over ${calls} calls`).toBeLessThan(20);
  });

  test.skipIf(process.env.SOFTMAX_SIMD_SANITIZED)('the work runs off the main thread: a busy main thread does not delay it', async () => {
    const t0 = performance.now();
    lossAndGradients(big.X, big.y, big.W, big.b);
    const callMs = performance.now() - t0;
    const pending = lossAndGradientsAsync(big.X, big.y, big.W, big.b).then(() => performance.now());
    const busyUntil = performance.now() + 3 * callMs + 20;
    while (performance.now() < busyUntil) {
      // keep the main thread busy for longer than the call takes
    }
    const released = performance.now();
    const settled = await pending;
    // The call finished while the main thread was busy; only the resolution was left to run.
    expect(settled - released, `settled ${(settled - released).toFixed(1)} ms after the busy loop (one call: ${callMs.toFixed(1)} ms)`).toBeLessThan(Math.max(5, callMs / 2));
  });
});
