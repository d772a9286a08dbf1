// The loader: a missing or unloadable addon is explained with what was tried and what to do; the
// pure-TypeScript fallback runs only when asked for, and says so.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = join(__dirname, '..');
const script = `
const s = require('./dist/cjs/index.js');
const X = s.matrix(new Float64Array([1, 2, 3, 4, -1, 0]), 3, 2);
const W = s.matrix(new Float64Array([0.1, -0.2, 0.3, 0.4, 0.5, -0.6]), 2, 3);
const r = s.lossAndGradients(X, [0, 1, 2], W, new Float64Array([0.1, 0, -0.1]), { reg: 0.1, labelSmoothing: 0.1, classWeights: [1, 2, 3] });
const big = s.allocMatrix(4096, 2048); // 32 MiB: advised by the addon, an ordinary array without it
big.data[big.data.length - 1] = 1;
const alloc = { length: big.data.length, last: big.data[big.data.length - 1], padded: big.data.buffer.byteLength > big.data.byteLength };
s.lossAndGradientsAsync(X, [0, 1, 2], W, null).then((a) => {
  console.log(JSON.stringify({ backend: s.backend(), loss: r.loss, dW: Array.from(r.dW.data), asyncLoss: a.loss, predict: Array.from(s.predict(X, W, null)), alloc }));
});`;

function run(env: Record<string, string>) {
  return spawnSync(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
}

describe('an addon that cannot load', () => {
  test('a missing binary: what was tried, and possible solutions with exact commands', () => {
    const r = run({ SOFTMAX_SIMD_BINARY: join(tmpdir(), 'no-such-dir', 'softmax_simd.node') });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('could not load its native addon');
    expect(r.stderr).toContain('no-such-dir');
    expect(r.stderr).toContain('not found');
    expect(r.stderr).toContain('Possible solutions:');
    expect(r.stderr).toContain('npm run build:addon');
    expect(r.stderr).toContain('SOFTMAX_SIMD_FALLBACK=reference');
  });

  test('a binary for another platform (not a loadable shared object) is explained the same way', () => {
    const dir = mkdtempSync(join(tmpdir(), 'softmax-simd-'));
    const fake = join(dir, 'softmax_simd.node');
    writeFileSync(fake, 'this is not an ELF file');
    const r = run({ SOFTMAX_SIMD_BINARY: fake });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(fake);
    expect(r.stderr).toMatch(/invalid ELF header|file too short|not a valid/);
    expect(r.stderr).toContain('Possible solutions:');
  });

  test('SOFTMAX_SIMD_FALLBACK=reference runs the pure-TS reference, loudly', () => {
    const native = run({});
    const fallback = run({ SOFTMAX_SIMD_BINARY: join(tmpdir(), 'missing.node'), SOFTMAX_SIMD_FALLBACK: 'reference' });
    expect(fallback.status, fallback.stderr).toBe(0);
    expect(fallback.stderr).toContain('pure-TypeScript fallback');
    const a = JSON.parse(native.stdout);
    const f = JSON.parse(fallback.stdout);
    expect(a.backend.native).toBe(true);
    expect(f.backend.native).toBe(false);
    expect(f.backend.isa).toBe('reference');
    expect(f.backend.reason).toContain('SOFTMAX_SIMD_FALLBACK');
    expect(Math.abs(f.loss - a.loss)).toBeLessThan(1e-13);
    f.dW.forEach((v: number, i: number) => expect(Math.abs(v - a.dW[i])).toBeLessThan(1e-13));
    expect(Math.abs(f.asyncLoss - a.asyncLoss)).toBeLessThan(1e-13);
    expect(f.predict).toEqual(a.predict);
    expect(f.alloc).toEqual({ length: 4096 * 2048, last: 1, padded: false });
    const hugePages = process.platform === 'linux' && existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    expect(a.alloc).toEqual({ length: 4096 * 2048, last: 1, padded: hugePages });
  });

  test('without the opt-in there is no silent fallback', () => {
    const r = run({ SOFTMAX_SIMD_BINARY: join(tmpdir(), 'missing.node') });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });
});
