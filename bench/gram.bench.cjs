#!/usr/bin/env node
// Benchmark of labeledGram (the labelled Gram matrix Q = (y∘X)(y∘X)ᵀ, issue 7) with benchmark.js:
// N = 4096, D = 784 and N = 20000, D = 128; float32 and float64; 1 thread and all threads.
// GFLOP/s counts N²·D (the N²·D/2 multiply-adds of the symmetric product, an FMA = 2 flops); % of
// peak is against the FMA peak of this machine measured in the same run by bench/probe/roofline.cpp
// (compiled here with g++; the best of a measurement before and after the Gram runs, so a noisy
// machine errs towards a lower %). The whole Q is computed: 1.6 GB (float32) and 3.2 GB (float64)
// for N = 20000, allocated (and zero-filled by JavaScript) on every call, which is counted; and again with
// options.out, one buffer reused by every call. Last, the float32 error reached on each shape (see float32Error).
//
// Usage: npm run build && node bench/gram.bench.cjs [--samples=n] [--shapes=4096x784,20000x128]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { argReader } = require('./args.cjs');
const Benchmark = require('benchmark');
const softmax = require('..');

const argv = process.argv.slice(2);
const arg = argReader(argv);
const SAMPLES = Number(arg('samples', '5'));
const SHAPES = arg('shapes', '4096x784,20000x128')
  .split(',')
  .map((s) => s.split('x').map(Number));
const ALL = softmax.backend().threads;

function probePeak() {
  const src = path.join(__dirname, 'probe', 'roofline.cpp');
  const info = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const avx2 = process.arch === 'x64' && /\bavx2\b/.test(info) && /\bfma\b/.test(info);
  // The widest FMA the CPU has (and softmax-simd uses): the machine's peak, whatever our kernels reach.
  const avx512 = avx2 && ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => new RegExp(`\\b${f}\\b`).test(info));
  const bin = path.join(os.tmpdir(), `softmax-simd-roofline-${process.pid}`);
  try {
    const flags = [...(avx512 ? ['-mavx512f'] : []), ...(avx2 ? ['-mavx2', '-mfma'] : [])];
    execFileSync('g++', ['-O2', '-std=c++17', '-pthread', ...flags, src, '-o', bin], { stdio: 'inherit' });
    const out = execFileSync(bin, [String(ALL), '64'], { encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (error) {
    console.error(`roofline probe did not run (${error.message}); % of peak is left out`);
    return null;
  } finally {
    fs.rmSync(bin, { force: true });
  }
}

function data(dtype, N, D) {
  const A = dtype === 'float32' ? Float32Array : Float64Array;
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
  const X = new A(N * D);
  for (let i = 0; i < X.length; i++) X[i] = next();
  const y = new A(N);
  for (let i = 0; i < N; i++) y[i] = next() < 0 ? -1 : 1;
  return { X: softmax.matrix(X, N, D), y };
}

// The float32 error reached, against float64 arithmetic on the same (float32) values: per entry
// |Q32 − Q64| / (|y_i y_j|·Σ_d |x_i[d] x_j[d]|), the scale the error analysis bounds (kernels/gram.hpp),
// in units of float32's unit roundoff 2^-24; the maximum over all N² entries, in row blocks so that
// the float64 matrices stay small. Σ|x_i x_j| is itself a Gram matrix: of |X|, with y = 1.
function float32Error(X32, y32, N, D) {
  const X64 = softmax.matrix(Float64Array.from(X32.data), N, D);
  const A64 = softmax.matrix(Float64Array.from(X32.data, Math.abs), N, D);
  const y64 = Float64Array.from(y32);
  const ones = new Float64Array(N).fill(1);
  const step = Math.max(1, Math.floor(2 ** 24 / N));
  let worst = 0;
  for (let start = 0; start < N; start += step) {
    const rows = [start, Math.min(N, start + step)];
    const q = softmax.labeledGram(X32, y32, { rows }).data;
    const r = softmax.labeledGram(X64, y64, { rows }).data;
    const a = softmax.labeledGram(A64, ones, { rows }).data;
    for (let k = 0; k < q.length; k++) {
      const i = start + Math.floor(k / N);
      const scale = Math.abs(y64[i] * y64[k % N]) * a[k];
      if (scale > 0) worst = Math.max(worst, Math.abs(q[k] - r[k]) / scale);
    }
  }
  return worst / 2 ** -24;
}

const before = probePeak();
const rows = [];
const errors = [];
for (const [N, D] of SHAPES) {
  for (const dtype of ['float32', 'float64']) {
    const { X, y } = data(dtype, N, D);
    if (dtype === 'float32') errors.push({ N, D, units: float32Error(X, y, N, D) });
    // One result buffer per shape and dtype for the `out: reused` rows (a stream of row blocks would reuse one).
    const reusable = dtype === 'float32' ? new Float32Array(N * N) : new Float64Array(N * N);
    for (const [threads, result] of [...new Set([1, ALL])].flatMap((t) => [[t, 'fresh'], [t, 'reused']])) {
      let sink = 0;
      const options = result === 'fresh' ? { threads } : { threads, out: reusable };
      const bench = new Benchmark(`labeledGram ${dtype} N=${N} D=${D} threads=${threads} result=${result}`, () => {
        sink += softmax.labeledGram(X, y, options).data[1];
      }, { minSamples: SAMPLES, maxTime: 0.1, initCount: 1, delay: 0 });
      bench.run();
      if (bench.error) throw bench.error;
      // The fastest sample: the least disturbed by other work on a shared machine.
      const best = Math.min(...bench.stats.sample);
      const mean = bench.stats.mean;
      rows.push({ N, D, dtype, threads, result, best, mean, rme: bench.stats.rme, samples: bench.stats.sample.length, sink });
      console.error(`${bench.name}: best ${(best * 1e3).toFixed(1)} ms, mean ${(mean * 1e3).toFixed(1)} ms ±${bench.stats.rme.toFixed(1)}%`);
    }
  }
}
const after = probePeak();
const peak = (dtype, threads) => {
  const key = threads === 1 ? 'gflops1' : 'gflopsAll';
  const k = dtype === 'float32' ? 'f32' : 'f64';
  const v = [before, after].filter(Boolean).map((p) => p[k][key]);
  return v.length ? Math.max(...v) : NaN;
};

const b = softmax.backend();
console.log(`\nlabeledGram — ${os.cpus()[0]?.model ?? os.arch()}, ${os.cpus().length} CPUs, ISA ${b.isa}, softmax-simd ${b.version}, Node ${process.version}`);
console.log('GFLOP/s = N²·D / time (best of the samples; mean in brackets); peak = roofline probe FMA rate, same run\n');
console.log('result: "fresh" = a new N×N array per call (allocated and first written, page faults included); "reused" = options.out, one buffer for every call\n');
console.log('| N | D | dtype | threads | result | time (ms) | GFLOP/s | peak GFLOP/s | % of peak |');
console.log('|---:|---:|---|---:|---|---:|---:|---:|---:|');
for (const r of rows) {
  const flops = r.N * r.N * r.D;
  const g = flops / r.best / 1e9;
  const gm = flops / r.mean / 1e9;
  const p = peak(r.dtype, r.threads);
  console.log(
    `| ${r.N} | ${r.D} | ${r.dtype} | ${r.threads} | ${r.result} | ${(r.best * 1e3).toFixed(1)} (${(r.mean * 1e3).toFixed(1)}) | ` +
      `${g.toFixed(1)} (${gm.toFixed(1)}) | ${Number.isFinite(p) ? p.toFixed(1) : 'n/a'} | ${Number.isFinite(p) ? ((100 * g) / p).toFixed(0) + '%' : 'n/a'} |`,
  );
}
console.log('\nfloat32 error reached (against float64 arithmetic on the same values): max over all entries of |Q32 − Q64| / Σ|y_i y_j x_i[d] x_j[d]|, in units of 2^-24\n');
console.log('| N | D | max error (units of 2^-24) |');
console.log('|---:|---:|---:|');
for (const e of errors) console.log(`| ${e.N} | ${e.D} | ${e.units.toFixed(3)} |`);
