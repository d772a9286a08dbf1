import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { referenceAddon } from './fallback.js';
import { loadAddon, packageRoot, type NativeAddon } from './loader.js';
import { checkThreads, MAX_THREADS } from './validate.js';

function load(): { addon: NativeAddon; native: boolean } {
  try {
    return { addon: loadAddon(), native: true };
  } catch (error) {
    if (process.env.SOFTMAX_SIMD_FALLBACK !== 'reference') throw error;
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.emitWarning(
      `softmax-simd is running its pure-TypeScript fallback (SOFTMAX_SIMD_FALLBACK=reference), many times slower than the addon: ${reason}`,
      { code: 'SOFTMAX_SIMD_FALLBACK' },
    );
    return { addon: referenceAddon(), native: false };
  }
}

/**
 * Failures inside the addon itself (no thread could be started, memory ran out) reach JavaScript
 * as plain Errors; they get the package's code ERR_NATIVE, like every other error it raises.
 */
function withNativeCodes(raw: NativeAddon): NativeAddon {
  const coded = (error: unknown): unknown => {
    if (error instanceof Error && !('code' in error)) {
      return Object.assign(error, { code: 'ERR_NATIVE', message: `softmax-simd: the native call failed: ${error.message}` });
    }
    return error;
  };
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(raw)) {
    if (typeof fn !== 'function') continue;
    // Every binding function takes one argument object (lossGradAsync a flag after it).
    wrapped[name] = (...args: unknown[]) => {
      try {
        const result: unknown = fn.apply(raw, args);
        return result instanceof Promise ? result.catch((e: unknown) => Promise.reject(coded(e))) : result;
      } catch (error) {
        throw coded(error);
      }
    };
  }
  return wrapped as unknown as NativeAddon;
}

const loaded = load();
const addon: NativeAddon = withNativeCodes(loaded.addon);
let defaultThreads = Math.min(MAX_THREADS, Math.max(1, availableParallelism()));

export function native(): NativeAddon {
  return addon;
}

export interface BackendInfo {
  /** True when the compiled addon runs the work. */
  native: boolean;
  /** The instruction set the kernels use now: 'avx512', 'avx2', 'neon' or 'scalar'. */
  isa: string;
  /** The instruction sets this build holds, best first. */
  compiled: string[];
  /** Those of them this CPU can run. */
  supported: string[];
  /** Threads a call uses unless told otherwise (setThreads). */
  threads: number;
  /** This package's version. */
  version: string;
  /** Why this ISA runs: chosen as the best the CPU supports, or forced by SOFTMAX_SIMD_ISA. */
  reason: string;
}

const version: string = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

/** What runs, and why. */
export function backend(): BackendInfo {
  const b = addon.backend();
  const forced = process.env.SOFTMAX_SIMD_ISA;
  return {
    native: loaded.native,
    isa: b.isa,
    compiled: b.compiled,
    supported: b.supported,
    threads: defaultThreads,
    version,
    reason: !loaded.native
      ? 'the native addon could not be loaded and SOFTMAX_SIMD_FALLBACK=reference asked for the pure-TypeScript fallback'
      : forced && forced !== 'auto'
        ? `forced by SOFTMAX_SIMD_ISA=${forced}`
        : 'the best instruction set this CPU supports',
  };
}

/** Sets the number of threads calls use by default (initially os.availableParallelism()). */
export function setThreads(n: number): void {
  defaultThreads = checkThreads('n (setThreads)', n);
}

export function threadsFor(option: unknown): number {
  return option === undefined ? defaultThreads : checkThreads('options.threads', option);
}
