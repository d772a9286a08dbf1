// The softmax-simd command, run as users run it: node dist/cjs/cli.js (built first when stale).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cjs', 'cli.js');
let dir = '';

function newestSource(folder: string): number {
  let t = 0;
  for (const name of readdirSync(folder, { withFileTypes: true })) {
    const p = join(folder, name.name);
    t = Math.max(t, name.isDirectory() ? newestSource(p) : name.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return t;
}

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync(cli) || statSync(cli).mtimeMs < newestSource(join(root, 'src'))) {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-ts.cjs')], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the TypeScript build failed:\n${r.stdout}${r.stderr}`);
  }
  dir = mkdtempSync(join(tmpdir(), 'softmax-simd-cli-'));
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Three separable clusters with string labels, a header, and the label in the middle column. */
function writeCsv(name: string, withLabel = true): string {
  const centers: Record<string, [number, number]> = { setosa: [1, 5], versicolor: [5, 1], virginica: [6, 7] };
  const names = Object.keys(centers);
  let s = 7;
  const next = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const lines = [withLabel ? 'length,species,width' : 'length,width'];
  for (let i = 0; i < 60; i++) {
    const k = names[i % 3]!;
    const [a, b] = centers[k]!;
    const x = (a + next()).toFixed(3);
    const z = (b + next()).toFixed(3);
    lines.push(withLabel ? `${x},${k},${z}` : `${x},${z}`);
  }
  writeFileSync(join(dir, name), lines.join('\n') + '\n');
  return lines.slice(1).map((l) => l.split(',')[1]!).join('\n');
}

describe('softmax-simd', () => {
  test('demo on a small slice: accuracy printed, weights.png and loss.svg written', () => {
    const r = run('demo', '--train', '500', '--test', '200', '--epochs', '2', '--out', 'demo-out');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/test accuracy 0\.\d{4}/);
    const accuracy = Number(/test accuracy (0\.\d+)/.exec(r.stdout)![1]);
    expect(accuracy).toBeGreaterThan(0.6);
    expect(r.stdout).toContain(join(dir, 'demo-out'));
    const png = readFileSync(join(dir, 'demo-out', 'weights.png'));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // IHDR: ten 28×28 templates upscaled ×4 with 4-pixel gaps.
    expect(png.readUInt32BE(16)).toBe(10 * 112 + 9 * 4);
    expect(png.readUInt32BE(20)).toBe(112);
    const svg = readFileSync(join(dir, 'demo-out', 'loss.svg'), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('<polyline');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  test('train and predict on a CSV with string labels', () => {
    const labels = writeCsv('iris.csv');
    const t = run('train', 'iris.csv', '--header', '--label', 'species', '--out', 'model.json');
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('3 classes (setosa, versicolor, virginica)');
    expect(t.stdout).toContain('training accuracy 1.0000');
    const model = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(model.labels).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(model.format).toBe('softmax-simd/classifier');

    // With the label column (skipped) and without it.
    const p = run('predict', 'model.json', 'iris.csv', '--header');
    expect(p.code).toBe(0);
    expect(p.stdout.trim()).toBe(labels);
    writeCsv('features.csv', false);
    const q = run('predict', 'model.json', 'features.csv', '--header');
    expect(q.code).toBe(0);
    expect(q.stdout.trim()).toBe(labels);

    // A minibatch optimizer from the command line.
    const a = run('train', 'iris.csv', '--header', '--label', '2', '--optimizer', 'adam', '--epochs', '40', '--learning-rate', '0.05', '--out', 'adam.json');
    expect(a.code).toBe(0);
    expect(a.stdout).toContain('with adam');
  });

  test('a bad cell: the line, the column and the cell text; exit code 1, no stack trace', () => {
    writeCsv('bad.csv');
    const text = readFileSync(join(dir, 'bad.csv'), 'utf8').split('\n');
    text[3] = '2.5,setosa,abc';
    writeFileSync(join(dir, 'bad.csv'), text.join('\n'));
    const r = run('train', 'bad.csv', '--header', '--label', 'species');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('line 4, column 3 ("width")');
    expect(r.stderr).toContain('"abc"');
    expect(r.stderr).not.toMatch(/\n\s+at /);

    // A header line read as data says how to fix it.
    const h = run('train', 'bad.csv');
    expect(h.code).toBe(1);
    expect(h.stderr).toContain('line 1, column 1: expected a finite number but found "length"');
    expect(h.stderr).toContain('--header');

    // A ragged row.
    writeFileSync(join(dir, 'ragged.csv'), '1,2,0\n3,4,1\n5,6\n');
    const g = run('train', 'ragged.csv');
    expect(g.code).toBe(1);
    expect(g.stderr).toContain('line 3: expected 3 columns but found 2');

    // Empty cells and non-decimal numbers are not numbers.
    writeFileSync(join(dir, 'empty.csv'), '1,2,0\n3,,1\n0x10,6,1\n');
    expect(run('train', 'empty.csv').stderr).toContain('line 2, column 2: expected a finite number but found ""');
  });

  test('exit codes: missing files, bad options, unknown commands, --help, info', () => {
    const missing = run('train', 'nope.csv');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.csv');
    writeFileSync(join(dir, 'not-a-model.json'), '{"format":"something else"}');
    writeFileSync(join(dir, 'x.csv'), '1,2\n');
    const notModel = run('predict', 'not-a-model.json', 'x.csv');
    expect(notModel.code).toBe(1);
    expect(notModel.stderr).toContain('json.format');
    expect(run('train', 'x.csv', '--epochs', 'ten').code).toBe(1);
    expect(run('train', 'x.csv', '--optimizer', 'rmsprop').code).toBe(1);
    expect(run('frobnicate').code).toBe(1);
    for (const command of [[], ['demo'], ['train'], ['predict'], ['info']]) {
      const help = run(...command, '--help');
      expect(help.code, command.join(' ')).toBe(0);
      expect(help.stdout).toContain('Usage: softmax-simd');
    }
    const info = run('info');
    expect(info.code).toBe(0);
    const b = JSON.parse(info.stdout);
    expect(b).toMatchObject({ native: true });
    expect(typeof b.isa).toBe('string');
  });
});
