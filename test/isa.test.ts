// Every kernel variant this machine can run, forced in turn and proven active through backend(),
// against the reference: sizes below, at and above the vector width, primes, 1, odd byteOffsets,
// K from 1 to 1000, both dtypes, large logits.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { native } from '../src/backend.js';
import { backend, lossAndGradients, predict, reference, scores, softmax, type Dtype } from '../src/index.js';
import { EPS, bitwiseEqual, expectAllClose, lossTolerances, offsetView, randomLabels, randomMatrix, rng, scoreScale, softmaxTolerance } from './helpers.js';

const SUPPORTED = backend().supported;
const WIDTH: Record<string, Record<Dtype, number>> = {
  scalar: { float32: 1, float64: 1 },
  avx2: { float32: 8, float64: 4 },
  avx512: { float32: 16, float64: 8 },
  neon: { float32: 4, float64: 2 },
};

afterAll(() => {
  native().selectIsa('auto');
});

function sizesAround(width: number): number[] {
  const s = new Set<number>();
  for (let n = 1; n <= 2 * Math.max(width, 8) + 1; n++) s.add(n);
  for (const p of [31, 97, 257]) s.add(p);
  return [...s];
}

/** A random problem of the shape (W scaled so that scores have unit spread) and its labels. */
function randomProblem(dtype: Dtype, N: number, D: number, K: number, next: () => number) {
  const X = randomMatrix(dtype, N, D, next);
  const W = randomMatrix(dtype, D, K, next, 1 / Math.sqrt(D));
  const b = randomMatrix(dtype, 1, K, next).data;
  const y = randomLabels(N, K, next);
  return { X, W, b, y };
}

/** lossAndGradients on one thread, held to the reference within the dtype's tolerances. */
function lossNearReference(dtype: Dtype, p: ReturnType<typeof randomProblem>, what: string) {
  const { X, W, b, y } = p;
  const got = lossAndGradients(X, y, W, b, { threads: 1 });
  const want = reference.lossAndGradients(X, y, W, b);
  const tol = lossTolerances(dtype, X, W, b);
  expect(Math.abs(got.loss - want.loss), what).toBeLessThanOrEqual(tol.loss);
  expectAllClose(got.dW.data, want.dW.data, tol.dW, `dW ${what}`);
  expectAllClose(got.db!, want.db!, tol.db, `db ${what}`);
  return got;
}

describe.each(SUPPORTED)('ISA %s', (isa) => {
  test('is active when forced', () => {
    native().selectIsa(isa);
    expect(backend().isa).toBe(isa);
  });

  describe.each(['float32', 'float64'] as const)('%s', (dtype) => {
    const force = () => {
      native().selectIsa(isa);
      expect(backend().isa).toBe(isa);
    };

    test('D from 1 to 2W+1 and primes, K from 1 to 2W+1 and primes', () => {
      force();
      const sizes = sizesAround(WIDTH[isa]![dtype]);
      for (const D of sizes) {
        for (const K of [1, 2, 3, 10, 17, ...sizes.filter((s) => s % 5 === 0)]) {
          const next = rng(D * 131 + K);
          const N = 1 + ((D * 7 + K) % 23);
          lossNearReference(dtype, randomProblem(dtype, N, D, K, next), `D=${D} K=${K}`);
        }
      }
    });

    test.each([1, 2, 3, 10, 17, 100, 1000])('K = %i, large logits, odd byteOffsets, scores/softmax/predict too', (K) => {
      force();
      for (const [N, D] of [[1, 1], [13, 9], [37, 33], [5, 257]] as const) {
        const next = rng(N * 1000 + D + K);
        const X = { data: offsetView(randomMatrix(dtype, N, D, next).data, 1), rows: N, cols: D };
        const W = { data: offsetView(randomMatrix(dtype, D, K, next, 800 / Math.sqrt(D)).data, 3), rows: D, cols: K };
        const b = offsetView(randomMatrix(dtype, 1, K, next, 100).data, 5);
        const y = randomLabels(N, K, next);
        const got = lossAndGradients(X, y, W, b, { reg: 1e-4, threads: 1 });
        const want = reference.lossAndGradients(X, y, W, b, { reg: 1e-4 });
        const tol = lossTolerances(dtype, X, W, b, 1e-4);
        expect(Math.abs(got.loss - want.loss), `N=${N} D=${D}`).toBeLessThanOrEqual(tol.loss);
        expectAllClose(got.dW.data, want.dW.data, tol.dW, `dW N=${N} D=${D}`);
        expectAllClose(got.db!, want.db!, tol.db, `db N=${N} D=${D}`);
        const S = scores(X, W, b, { threads: 1 });
        const Sref = reference.scores(X, W, b);
        const tolS = 4 * EPS[dtype] * (D + 2) * scoreScale(X, W, b);
        expectAllClose(S.data, Sref.data, tolS, 'scores');
        expectAllClose(softmax(Sref).data, reference.softmax(Sref).data, softmaxTolerance(dtype, Sref), 'softmax');
        const p = predict(X, W, b);
        const pref = reference.predict(X, W, b);
        for (let i = 0; i < N; i++) {
          if (p[i] !== pref[i]) expect(Math.abs(Sref.data[i * K + p[i]!]! - Sref.data[i * K + pref[i]!]!)).toBeLessThanOrEqual(2 * tolS);
        }
      }
    });

    test("results do not depend on where X's data starts: every offset within a cache line, bitwise", () => {
      // The AVX-512 score tiles start rows that share an offset within a vector at the aligned
      // vector holding their first element (RowPhase, native/kernels/linear_simd.inl): the lanes
      // then sum other elements, which the horizontal sum must make up for exactly.
      force();
      for (const [N, D, K] of [
        [7, 16, 10],
        [13, 48, 3],
        [70, 784, 10],
        [9, 32, 17],
        [5, 8, 1],
        [6, 33, 10],
      ] as const) {
        const problem = randomProblem(dtype, N, D, K, rng(N * 7919 + D * 31 + K));
        const { X: X0, W, b, y } = problem;
        const want = lossNearReference(dtype, problem, `N=${N} D=${D} K=${K}`);
        const S0 = scores(X0, W, b, { threads: 1 });
        const p0 = predict(X0, W, b);
        for (let shift = 1; shift < 64 / X0.data.BYTES_PER_ELEMENT; shift++) {
          const X = { data: offsetView(X0.data, shift), rows: N, cols: D };
          const what = `N=${N} D=${D} K=${K}, X shifted by ${shift}`;
          const got = lossAndGradients(X, y, W, b, { threads: 1 });
          expect(Object.is(got.loss, want.loss), `loss ${what}`).toBe(true);
          expect(bitwiseEqual(got.dW.data, want.dW.data), `dW ${what}`).toBe(true);
          expect(bitwiseEqual(got.db!, want.db!), `db ${what}`).toBe(true);
          expect(bitwiseEqual(scores(X, W, b, { threads: 1 }).data, S0.data), `scores ${what}`).toBe(true);
          expect(Array.from(predict(X, W, b)), `predict ${what}`).toEqual(Array.from(p0));
        }
      }
    });

    test('rows of a multiple of 512 bytes (Wt and the accumulator a line further apart than D)', () => {
      // native/linear.cpp kd_stride: the addon's K×D buffers get one 64-byte line more per row
      // there; the kernels must read and write only the D columns of each.
      force();
      const perLine = 64 / (dtype === 'float32' ? 4 : 8);
      // 300 rows: blocks of every size the driver makes, and a float32 flush at 256 rows.
      for (const [D, N] of [[8 * perLine, 300], [24 * perLine, 100], [3072, 50]] as const) {
        for (const K of [1, 10, 17]) {
          for (const shift of [0, 1]) {
            const p = randomProblem(dtype, N, D, K, rng(D * 17 + K * 3 + shift));
            const X = { data: offsetView(p.X.data, shift), rows: N, cols: D };
            const what = `D=${D} K=${K} X shifted by ${shift}`;
            lossNearReference(dtype, { ...p, X }, what);
            const Sref = reference.scores(X, p.W, p.b);
            const tolS = 4 * EPS[dtype] * (D + 2) * scoreScale(X, p.W, p.b);
            expectAllClose(scores(X, p.W, p.b, { threads: 1 }).data, Sref.data, tolS, `scores ${what}`);
            if (K === 10) {
              // Two parts: each its own accumulator at its own offset in the call's scratch.
              const want = reference.lossAndGradients(X, p.y, p.W, p.b);
              const got = lossAndGradients(X, p.y, p.W, p.b, { threads: 2 });
              const tol = lossTolerances(dtype, X, p.W, p.b);
              expect(Math.abs(got.loss - want.loss), `2 threads ${what}`).toBeLessThanOrEqual(tol.loss);
              expectAllClose(got.dW.data, want.dW.data, tol.dW, `dW 2 threads ${what}`);
              expectAllClose(got.db!, want.db!, tol.db, `db 2 threads ${what}`);
              expectAllClose(scores(X, p.W, p.b, { threads: 2 }).data, Sref.data, tolS, `scores 2 threads ${what}`);
            }
          }
        }
      }
    });

    test('softmax of rows holding −Infinity and NaN', () => {
      force();
      const make = (a: number[]) => (dtype === 'float32' ? new Float32Array(a) : new Float64Array(a));
      const P = softmax({ data: make([0, -Infinity, 0, -1000, NaN, 1, 5, 5, 5]), rows: 3, cols: 3 }).data;
      expect(Array.from(P.subarray(0, 3))).toEqual([0.5, 0, 0.5]);
      expect(Array.from(P.subarray(3, 6)).every(Number.isNaN)).toBe(true);
      expect(Math.abs(P[6]! - 1 / 3)).toBeLessThanOrEqual(2 * EPS[dtype]);
    });
  });
});

describe('SOFTMAX_SIMD_ISA at load', () => {
  const root = join(__dirname, '..');
  const probe = "const s=require('./dist/cjs/index.js');console.log(JSON.stringify(s.backend()))";
  const run = (isa: string) => spawnSync(process.execPath, ['-e', probe], { cwd: root, env: { ...process.env, SOFTMAX_SIMD_ISA: isa }, encoding: 'utf8' });

  test.each(SUPPORTED)('forcing %s runs it, and backend() says so', (isa) => {
    const r = run(isa);
    expect(r.status, r.stderr).toBe(0);
    const b = JSON.parse(r.stdout) as { isa: string; reason: string };
    expect(b.isa).toBe(isa);
    expect(b.reason).toContain('SOFTMAX_SIMD_ISA');
  });

  test('forcing an ISA this CPU or build lacks is a clear error at load, never SIGILL', () => {
    const missing = ['avx2', 'avx512', 'neon'].filter((i) => !SUPPORTED.includes(i));
    expect(missing.length).toBeGreaterThan(0);
    for (const isa of missing) {
      const r = run(isa);
      expect(r.signal).toBeNull();
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`SOFTMAX_SIMD_ISA=${isa}`);
    }
    const bogus = run('sse9');
    expect(bogus.status).not.toBe(0);
    expect(bogus.stderr).toContain("must be one of auto, scalar, avx2, avx512, neon but received 'sse9'");
  });

  test('without it, the best supported ISA runs', () => {
    const out = execFileSync(process.execPath, ['-e', probe], { cwd: root, env: { ...process.env, SOFTMAX_SIMD_ISA: '' }, encoding: 'utf8' });
    expect(JSON.parse(out).isa).toBe(SUPPORTED[0]);
  });
});
