// Leaks and stress, each in a clean child process with --expose-gc (see test/stress/leaks.cjs).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const root = join(__dirname, '..');
const MiB = 1024 * 1024;

function run(mode: string) {
  const r = spawnSync(process.execPath, ['--expose-gc', join(root, 'test', 'stress', 'leaks.cjs'), mode], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

// Bounds: 20,000 calls that each allocate ~1.4 KB of results; a leak of even one result buffer per
// call would grow external memory by ~28 MB. RSS may move by allocator noise, hence the looser bound.
test('10,000 sync and 10,000 async calls: RSS and external memory stay flat', () => {
  const r = run('calls');
  expect(r.wrong).toBe(0);
  const rssGrowth = (r.after.rss - r.before.rss) / MiB;
  const externalGrowth = (r.after.external - r.before.external) / MiB;
  expect(externalGrowth, `external grew ${externalGrowth.toFixed(2)} MiB`).toBeLessThan(1);
  expect(rssGrowth, `RSS grew ${rssGrowth.toFixed(2)} MiB`).toBeLessThan(process.env.SOFTMAX_SIMD_SANITIZED ? 64 : 16);
});

test('300 async calls in flight, inputs dropped at once, garbage collection forced while they run', () => {
  const r = run('gc');
  expect(r.inFlight).toBe(300);
  expect(r.collections).toBeGreaterThan(0);
  expect(r.wrong).toBe(0);
});

test('worker_threads load the addon at once and compute right', () => {
  const r = run('workers');
  expect(r.workers).toBe(6);
  expect(r.wrong).toBe(0);
});
