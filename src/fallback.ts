// The opt-in pure-TypeScript fallback (SOFTMAX_SIMD_FALLBACK=reference): the binding's interface
// served by the reference implementations, for machines where the addon cannot be built. It is slow
// (plain float64 loops) and backend() says so: { native: false, isa: 'reference' }.
import type { NativeAddon } from './loader.js';
import { firstBadTargetRow, type NativeLossArgs } from './prepare.js';
import * as raw from './reference/linear.js';
import type { FloatArray, Matrix } from './types.js';

/** The loss pass's arguments, plus the fields the other operations read (binding/addon.cpp). */
type Args = NativeLossArgs & { S: FloatArray; out: FloatArray | Int32Array; sums: Float64Array };

/** The outcome code of the binding: status + 8 × row. */
function lossGrad(a: Args): number {
  const X: Matrix = { data: a.X, rows: a.N, cols: a.D };
  const W: Matrix = { data: a.W, rows: a.D, cols: a.K };
  let y: Int32Array | Matrix;
  if (a.targets) {
    y = { data: a.targets, rows: a.N, cols: a.K };
    const bad = firstBadTargetRow(y);
    if (bad >= 0) return 3 + 8 * bad;
  } else {
    y = a.labels as Int32Array;
  }
  const r = raw.lossAndGradients(X, y, W, a.b, {
    reg: 0,
    regConvention: 'full',
    classWeights: a.classWeights ?? null,
    sampleWeights: a.sampleWeights ?? null,
    ignoreIndex: a.ignoreIndex ?? null,
    labelSmoothing: a.labelSmoothing ?? 0,
    reduction: 'none',
  });
  if (r.firstNonFiniteRow >= 0) return 1 + 8 * r.firstNonFiniteRow;
  // The binding's sums: [Σ losses, Σ weights, Σ dW, Σ db]; 'none' left the gradients unscaled.
  a.sums[0] = r.lossSum;
  a.sums[1] = r.weightSum;
  a.sums.set(r.dW.data, 2);
  if (r.db) a.sums.set(r.db, 2 + a.D * a.K);
  if (a.rowLosses && r.losses) a.rowLosses.set(r.losses);
  return 0;
}

function scores(a: Args): void {
  a.out.set(raw.scores({ data: a.X, rows: a.N, cols: a.D }, { data: a.W, rows: a.D, cols: a.K }, a.b).data);
}

function softmax(a: Args): void {
  a.out.set(raw.softmax({ data: a.S, rows: a.N, cols: a.K }).data);
}

function predict(a: Args): void {
  a.out.set(raw.predict({ data: a.X, rows: a.N, cols: a.D }, { data: a.W, rows: a.D, cols: a.K }, a.b));
}

export function referenceAddon(): NativeAddon {
  const asArgs = (o: object) => o as Args;
  return {
    lossGrad: (o) => lossGrad(asArgs(o)),
    lossGradAsync: async (o) => lossGrad(asArgs(o)),
    scores: (o) => scores(asArgs(o)),
    scoresAsync: async (o) => (scores(asArgs(o)), true),
    softmax: (o) => softmax(asArgs(o)),
    softmaxAsync: async (o) => (softmax(asArgs(o)), true),
    predict: (o) => predict(asArgs(o)),
    predictAsync: async (o) => (predict(asArgs(o)), true),
    backend: () => ({ isa: 'reference', compiled: [], supported: [], maxThreads: 1 }),
    selectIsa: (name: string) => {
      throw new Error(`softmax-simd runs the pure-TypeScript fallback: no instruction set to select (asked for ${name})`);
    },
  };
}
