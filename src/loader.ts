// Finds and loads the compiled addon. When it cannot, the error says what was tried and how to fix it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { codedError } from './errors.js';
import type { NativeFinalizeArgs, NativeLossArgs } from './prepare.js';

export type { NativeFinalizeArgs };

export interface NativeOutcome {
  status: number;
  row: number;
}

/** The binding reports a pass's outcome as one number: status + 8 × row (binding/addon.cpp). */
export function decodeOutcome(code: number): NativeOutcome {
  const status = code % 8;
  return { status, row: (code - status) / 8 };
}

export interface NativeBackend {
  isa: string;
  compiled: string[];
  supported: string[];
  maxThreads: number;
}

/** The binding's functions (binding/addon.cpp). Arguments are validated by src/ before they get here. */
export interface NativeAddon {
  lossGrad(args: NativeLossArgs): number;
  /**
   * runNowIfSmall: a call of at most 65,536 multiply-adds may run at once on this thread (it then
   * settles before calls queued ahead of it); without it every call keeps the queue's order.
   */
  lossGradAsync(args: NativeLossArgs, runNowIfSmall?: boolean): Promise<number>;
  scores(args: object): void;
  /**
   * scoresAsync, softmaxAsync, predictAsync: a call of at most 65,536 multiply-adds (N·D·K; softmax
   * counts 64 a class) runs at once on this thread and returns a settled Promise, so it may settle
   * before calls queued ahead of it: its `out` must be an array no other call uses.
   */
  scoresAsync(args: object): Promise<boolean>;
  softmax(args: object): void;
  softmaxAsync(args: object): Promise<boolean>;
  predict(args: object): void;
  predictAsync(args: object): Promise<boolean>;
  backend(): NativeBackend;
  selectIsa(name: string): string;
  /**
   * dW from a pass's float64 sums, as finalizeSums (src/prepare.ts) computes it, bit for bit;
   * optional so that stand-ins without it (the reference fallback) still fit.
   */
  finalizeGradients?(args: NativeFinalizeArgs): void;
  /** Σ W[i]² in the order of sumOfSquares (src/prepare.ts), bit for bit; optional likewise. */
  sumOfSquares?(W: Float32Array | Float64Array): number;
  /** binding/gram.cpp; optional so that stand-ins without it (the reference fallback) still fit. */
  labeledGram?(args: object): boolean;
  labeledGramAsync?(args: object): Promise<boolean>;
  /**
   * Advises a fresh ArrayBuffer's whole 2 MiB spans for huge pages and returns the byte offset of
   * its first 2 MiB boundary, or −1 when nothing was advised (native/memory_hints.cpp); optional likewise.
   */
  adviseHugePages?(buffer: ArrayBuffer): number;
}

type LossGradPositional = [
  X: NativeLossArgs['X'],
  N: number,
  D: number,
  K: number,
  W: NativeLossArgs['W'],
  b: NativeLossArgs['b'],
  labels: NativeLossArgs['labels'],
  targets: NativeLossArgs['targets'],
  classWeights: NativeLossArgs['classWeights'],
  sampleWeights: NativeLossArgs['sampleWeights'],
  ignoreIndex: number | null,
  labelSmoothing: number,
  rowLosses: NativeLossArgs['rowLosses'],
  sums: NativeLossArgs['sums'],
  threads: number,
];

/** The binding as compiled: lossGrad takes its arguments by position (binding/addon.cpp LossArg). */
type Binding = Omit<NativeAddon, 'lossGrad' | 'lossGradAsync' | 'finalizeGradients'> & {
  lossGrad(...args: LossGradPositional): number;
  lossGradAsync(...args: [...LossGradPositional, runNowIfSmall: boolean]): Promise<number>;
  finalizeGradients?(sums: Float64Array, W: Float32Array | Float64Array, dW: Float32Array | Float64Array, scale: number, divisor: number, gradCoef: number): void;
};

/**
 * The binding behind the NativeAddon interface. The fused pass is called for small batches too,
 * where reading fifteen named properties in C++ was most of the call's fixed cost; JavaScript reads
 * them far faster and hands them over by position.
 */
function fromBinding(binding: Binding): NativeAddon {
  const { lossGrad, lossGradAsync, finalizeGradients, ...rest } = binding;
  return {
    ...rest,
    lossGrad: (a) =>
      lossGrad(a.X, a.N, a.D, a.K, a.W, a.b, a.labels, a.targets, a.classWeights, a.sampleWeights, a.ignoreIndex, a.labelSmoothing, a.rowLosses, a.sums, a.threads),
    lossGradAsync: (a, runNowIfSmall = false) =>
      lossGradAsync(a.X, a.N, a.D, a.K, a.W, a.b, a.labels, a.targets, a.classWeights, a.sampleWeights, a.ignoreIndex, a.labelSmoothing, a.rowLosses, a.sums, a.threads, runNowIfSmall),
    // Absent from an addon built before it (bench/ab.cjs runs older builds): finalizeSums then loops.
    ...(finalizeGradients ? { finalizeGradients: (a: NativeFinalizeArgs) => finalizeGradients(a.sums, a.W, a.dW, a.scale, a.divisor, a.gradCoef) } : {}),
  };
}

/** The package root: the nearest folder above this file holding softmax-simd's package.json. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = createRequire(candidate)('./package.json') as { name?: string };
        if (pkg.name === 'softmax-simd') return dir;
      } catch {
        // unreadable package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return join(__dirname, '..', '..');
    dir = parent;
  }
}

export function addonCandidates(): string[] {
  const root = packageRoot();
  // An explicit binary is the only one tried: a sanitizer build must never silently fall back.
  const fromEnv = process.env.SOFTMAX_SIMD_BINARY;
  if (fromEnv) return [fromEnv];
  return [
    join(root, 'build', 'Release', 'softmax_simd.node'),
    join(root, 'build', 'Debug', 'softmax_simd.node'),
  ];
}

export function loadAddon(): NativeAddon {
  const tried: string[] = [];
  const requireHere = createRequire(__filename);
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`${path}: not found`);
      continue;
    }
    try {
      return fromBinding(requireHere(path) as Binding);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      // A forced ISA the CPU lacks is the user's choice, not a broken build: say only that.
      if (reason.includes('SOFTMAX_SIMD_ISA')) throw codedError('ERR_NATIVE', `softmax-simd: ${reason}`);
      tried.push(`${path}: ${reason}`);
    }
  }
  const root = packageRoot();
  throw codedError(
    'ERR_NATIVE',
    [
      `softmax-simd could not load its native addon for ${process.platform}-${process.arch} (Node ${process.version}).`,
      'Tried:',
      ...tried.map((t) => `  - ${t}`),
      'Possible solutions:',
      `  - Build it: cd ${JSON.stringify(root)} && npm run build:addon   (needs cmake >= 3.15 and a C++17 compiler)`,
      '  - Reinstall, letting the install script build it: npm install --foreground-scripts softmax-simd',
      '  - If you build elsewhere, point to the binary: SOFTMAX_SIMD_BINARY=/path/to/softmax_simd.node',
      '  - To run without the addon (slow, pure TypeScript): SOFTMAX_SIMD_FALLBACK=reference',
    ].join('\n'),
  );
}
