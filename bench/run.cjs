'use strict';
// `npm run bench`: softmax-simd side by side with its peers and this machine's limits.
//
//   npm run bench                    every shape, both dtypes, all ops; writes bench/RESULTS.md and bench/results.svg
//   npm run bench -- --quick         small shapes only (CI): checks every implementation against the reference,
//                                    exits non-zero on a wrong result; never asserts time
//   options: --shapes=tiny,mnist --dtypes=float32 --ops=lossAndGradients --no-peers --no-memory --no-probe
//            (a filtered or quick run writes its report under .bench-out/, never over bench/RESULTS.md)
//
// See bench/README.md for what is measured and how.
const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Benchmark = require('benchmark');
const { SHAPES, QUICK_SHAPES, DTYPES, REG, flops, bytesMoved, makeProblem, rowSubset } = require('./shapes.cjs');

const ROOT = path.join(__dirname, '..');
const OUT_DIR = path.join(ROOT, '.bench-out');
const OPS = ['lossAndGradients', 'scores', 'predict'];
/** Max relative error (see relErr) above which a result is wrong, per dtype. */
const TOLERANCE = { float32: 1e-3, float64: 1e-9 };
/** Rows of every problem on which each implementation is checked against the reference (fewer when D·K is
 * large, so that the slow reference takes well under a second: checkRows()). */
const CHECK_ROWS = 1024;
/** A timed call longer than this (ms) is timed on fewer rows and scaled (marked †): peers. (The default ISA always
 * runs on all rows.) */
const CAP_MS = 1200;
/** The same for the other ISAs (scalar on an AVX2 machine). */
const CAP_MS_OTHER = 700;
/** The same for the pure-TS reference. */
const REF_CAP_MS = 250;

function checkRows(s) {
  return Math.min(s.N, CHECK_ROWS, Math.max(32, Math.floor(1.5e7 / (s.D * s.K))));
}

// ---------------------------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const a = { quick: false, peers: true, memory: true, probe: true, memoryChild: false, shapes: null, dtypes: null, ops: null };
  for (const arg of argv) {
    const [k, v] = arg.replace(/^--/, '').split('=');
    if (k === 'quick') a.quick = true;
    else if (k === 'no-peers') a.peers = false;
    else if (k === 'no-memory') a.memory = false;
    else if (k === 'no-probe') a.probe = false;
    else if (k === 'memory-child') a.memoryChild = true;
    else if (k === 'rows') a.rows = Number(v);
    else if (k === 'shapes' || k === 'dtypes' || k === 'ops') a[k] = String(v).split(',');
    else throw new Error(`bench: unknown option ${arg}`);
  }
  a.filtered = a.quick || !!(a.shapes || a.dtypes || a.ops) || !a.peers || !a.memory || !a.probe;
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// The machine's limits: bench/probe/roofline.cpp, compiled once per source/flags/compiler into .bench-out/

function cpuFlags() {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) || '';
    return new Set(line.split(':')[1].trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

function cpuModel() {
  const cpus = os.cpus();
  return (cpus[0] && cpus[0].model) || os.arch();
}

function pickLimits(p) {
  return { f32: p.f32, f64: p.f64, bandwidth: p.bandwidth };
}

let probeBuilt = null;

/** The probe's binary, compiled once per source/flags/compiler: { bin, flags, compiler } or { error }. */
function probeBinary() {
  if (!probeBuilt) probeBuilt = buildProbe();
  return probeBuilt;
}

function buildProbe() {
  const src = path.join(__dirname, 'probe', 'roofline.cpp');
  const flags = cpuFlags();
  const avx2 = process.arch === 'x64' && flags.has('avx2') && flags.has('fma');
  // The widest FMA the CPU has (and softmax-simd uses): the machine's peak, whatever our kernels reach.
  const avx512 = avx2 && ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => flags.has(f));
  const cxxFlags = ['-O2', '-std=c++17', '-pthread', ...(avx512 ? ['-mavx512f'] : []), ...(avx2 ? ['-mavx2', '-mfma'] : [])];
  let compilerVersion;
  try {
    compilerVersion = execFileSync('g++', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    return { error: 'g++ not found: the roofline probe did not run' };
  }
  const hash = crypto
    .createHash('sha1')
    .update(fs.readFileSync(src))
    .update(cxxFlags.join(' '))
    .update(compilerVersion)
    .digest('hex')
    .slice(0, 12);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const bin = path.join(OUT_DIR, `roofline-${hash}`);
  if (!fs.existsSync(bin)) execFileSync('g++', [...cxxFlags, src, '-o', bin], { stdio: 'inherit' });
  return { bin, flags: cxxFlags.join(' '), compiler: compilerVersion };
}

function runProbe(threads, quick) {
  const b = probeBinary();
  if (b.error) return b;
  const out = execFileSync(b.bin, [String(threads), quick ? '128' : '1024'], { encoding: 'utf8' });
  const probe = JSON.parse(out.trim().split('\n').pop());
  probe.flags = b.flags;
  probe.compiler = b.compiler;
  return probe;
}

/** The peak FMA rate (GFLOP/s) of a dtype ('f32' or 'f64') on `threads` threads, measured in about 0.5 s. */
function probePeak(threads, key) {
  const b = probeBinary();
  if (b.error) throw new Error(b.error);
  const out = execFileSync(b.bin, [String(threads), '0', 'peak', key], { encoding: 'utf8' });
  const rate = JSON.parse(out.trim().split('\n').pop()).gflops;
  if (!(rate > 0)) throw new Error(`the peak probe printed ${out.trim()}`);
  return rate;
}

/** Roofline time (ms) of one call: max(bytes / bandwidth, flops / peak FMA rate), for 1 or all threads; bytes are
 * those of X (plus the output of scores and predict). */
function rooflineMs(probe, op, shape, dtype, allThreads) {
  if (!probe || probe.error) return NaN;
  const peak = probe[dtype === 'float32' ? 'f32' : 'f64'][allThreads ? 'gflopsAll' : 'gflops1'];
  const bw = probe.bandwidth[allThreads ? 'gbpsAll' : 'gbps1'];
  return Math.max(bytesMoved(op, shape, dtype) / (bw * 1e9), flops(op, shape) / (peak * 1e9)) * 1e3;
}

// ---------------------------------------------------------------------------------------------------------------
// Agreement with the reference

/** max over the parts of max|a − r| / max|r|: a normwise relative error (elementwise would blow up near 0). */
function relErr(a, r) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    num = Math.max(num, Math.abs(a[i] - r[i]));
    den = Math.max(den, Math.abs(r[i]));
  }
  if (a.length !== r.length) return Infinity;
  if (Number.isNaN(num)) return Infinity;
  return den > 0 ? num / den : num;
}

function lossErr(res, ref) {
  if (!res || !res.dW) return Infinity;
  return Math.max(relErr([res.loss], [ref.loss]), relErr(res.dW.data, ref.dW.data), relErr(res.db, ref.db));
}

/** predict: labels that differ from the reference where the reference's best score is not a near-tie. */
function predictErr(labels, refScores, K, dtype) {
  const S = refScores.data;
  const tol = dtype === 'float32' ? 1e-4 : 1e-10;
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < K; j++) if (S[i * K + j] > S[i * K + best]) best = j;
    const got = labels[i];
    if (got === best) continue;
    const gap = S[i * K + best] - S[i * K + got];
    if (!(got >= 0 && got < K) || !(gap <= tol * Math.max(1, Math.abs(S[i * K + best])))) wrong++;
  }
  return wrong / labels.length;
}

// ---------------------------------------------------------------------------------------------------------------
// Timing with benchmark.js

/** Samples and time budget of a case from an estimate of one call (ms). */
function benchOptions(estimateMs, quick) {
  if (quick) return { minSamples: 2, maxTime: 0.02, minTime: 0.005 };
  if (estimateMs < 2) return { minSamples: 8, maxTime: 1 };
  if (estimateMs < 50) return { minSamples: 5, maxTime: 1 };
  if (estimateMs < 300) return { minSamples: 3, maxTime: 0.6 };
  return { minSamples: 2, maxTime: 0 };
}

/** Times fn (sync) or fn() → Promise (async, benchmark.js `defer: true`). Resolves { ms, rme, samples }. */
function timeIt(name, fn, isAsync, options) {
  return new Promise((resolve) => {
    let failure = null;
    const bench = isAsync
      ? new Benchmark(name, {
          ...options,
          defer: true,
          fn(deferred) {
            fn().then(
              () => deferred.resolve(),
              (e) => {
                failure = e;
                deferred.resolve();
              },
            );
          },
        })
      : new Benchmark(name, { ...options, fn });
    bench.on('complete', () => {
      const error = failure || bench.error;
      if (error) resolve({ ms: NaN, rme: NaN, samples: 0, error: String(error && error.message ? error.message : error) });
      else resolve({ ms: bench.stats.mean * 1e3, rme: bench.stats.rme, samples: bench.stats.sample.length });
    });
    bench.run({ async: true });
  });
}

function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ---------------------------------------------------------------------------------------------------------------
// Side by side with the peak

/** Rounds of each paired case, and the least time a round's calls take (ms). */
const PAIRED_ROUNDS = 5;
const PAIRED_ROUND_MS = 300;

/**
 * The default ISA's sync lossAndGradients on the roofline shapes, each round of calls between two short peak
 * probes (probePeak) and rated against the higher of the two: on a shared host the FMA rate a core delivers drifts
 * over minutes (this project's Zen 4 host: one core's peak read 96 to 117 GFLOP/s within an hour), so a row timed
 * in a slow spell and rated against the run's best probe could read low for reasons that are not the code's. The
 * run-wide rating (the tables above) stays; this one is beside it. The row reports the median round by that
 * rating (its time and its peaks) and the range. Shapes whose roofline is under 1 ms (tiny: per-call latency, not
 * throughput) are left out, except with --quick, where every shape runs one round of one call (a check that the
 * section works, not a measurement). Memory bandwidth is the run's start probe (every such row is compute-bound).
 */
async function pairedRounds(pkg, shapes, dtypes, threadCounts, startProbe, quick) {
  const out = [];
  const rounds = quick ? 1 : PAIRED_ROUNDS;
  const roundMs = quick ? 0 : PAIRED_ROUND_MS;
  for (const dtype of dtypes) {
    for (const shape of shapes) {
      if (rooflineMs(startProbe, 'lossAndGradients', shape, dtype, false) < 1 && !quick) continue;
      const p = makeProblem(shape, dtype, undefined, pkg.allocMatrix);
      for (const threads of threadCounts) {
        const o = { reg: REG, threads };
        pkg.lossAndGradients(p.X, p.y, p.W, p.b, o); // warm-up
        const key = dtype === 'float32' ? 'f32' : 'f64';
        const peaks = [probePeak(threads, key)];
        const list = [];
        for (let r = 0; r < rounds; r++) {
          let calls = 0;
          const t0 = now();
          do {
            pkg.lossAndGradients(p.X, p.y, p.W, p.b, o);
            calls++;
          } while (now() - t0 < roundMs || calls < (quick ? 1 : 2));
          const ms = (now() - t0) / calls;
          peaks.push(probePeak(threads, key));
          // The higher of the two: a short probe on two threads can start them apart and read low.
          const peak = Math.max(peaks[r], peaks[r + 1]);
          const bw = startProbe.bandwidth[threads > 1 ? 'gbpsAll' : 'gbps1'];
          const roof = Math.max(bytesMoved('lossAndGradients', shape, dtype) / (bw * 1e9), flops('lossAndGradients', shape) / (peak * 1e9)) * 1e3;
          list.push({ ms, peak, ratio: roof / ms });
        }
        const byRatio = [...list].sort((a, b) => a.ratio - b.ratio);
        const mid = byRatio[(byRatio.length - 1) >> 1];
        const row = {
          shape: shape.name,
          N: shape.N,
          D: shape.D,
          K: shape.K,
          dtype,
          threads,
          rounds,
          roundMs,
          ms: mid.ms,
          peak: mid.peak,
          peakMin: Math.min(...peaks),
          peakMax: Math.max(...peaks),
          pct: 100 * mid.ratio,
          pctMin: 100 * byRatio[0].ratio,
          pctMax: 100 * byRatio[byRatio.length - 1].ratio,
        };
        out.push(row);
        log(`  paired ${shape.name} ${dtype} t=${threads}: median round ${fmtMs(row.ms)} ms, ${row.pct.toFixed(1)}% (${row.pctMin.toFixed(1)}–${row.pctMax.toFixed(1)}) of the roofline at the peak beside it, probes ${row.peakMin.toFixed(0)}–${row.peakMax.toFixed(0)} GFLOP/s`);
      }
    }
  }
  return out;
}

const PAGES_PAIRS = 15; // odd: the median pair is one pair
const PAGES_SHAPES = ['mnist', 'cifar'];

/**
 * X's pages, side by side: the same lossAndGradients call (default ISA, sync) on the same values in two X's,
 * one from allocMatrix (huge pages where the OS gives them) and one a plain typed array (4 KiB pages), in
 * alternating pairs (which goes first alternates too). A pair's ratio = allocMatrix time ÷ plain time; the row
 * gives the median pair's ratio and how many pairs allocMatrix won: drift in the machine's speed over the run
 * touches both calls of a pair alike. mnist and cifar only (the compute-bound shapes with the most bytes of X per
 * flop); with --quick one pair of each quick shape (a check that the section runs: its X's are under 32 MiB, so
 * both are plain arrays).
 */
async function pagesPairs(pkg, shapes, dtypes, threadCounts, quick) {
  if (typeof pkg.allocMatrix !== 'function') throw new Error('this build of the package has no allocMatrix');
  const out = [];
  const pairs = quick ? 1 : PAGES_PAIRS;
  for (const dtype of dtypes) {
    for (const shape of shapes) {
      if (!quick && !PAGES_SHAPES.includes(shape.name)) continue;
      const advised = makeProblem(shape, dtype, undefined, pkg.allocMatrix);
      const plain = makeProblem(shape, dtype);
      const time = (p, o) => {
        const t0 = now();
        pkg.lossAndGradients(p.X, p.y, p.W, p.b, o);
        return now() - t0;
      };
      for (const threads of threadCounts) {
        const o = { reg: REG, threads };
        const a = pkg.lossAndGradients(advised.X, advised.y, advised.W, advised.b, o);
        const b = pkg.lossAndGradients(plain.X, plain.y, plain.W, plain.b, o);
        const same = (u, v) => u.length === v.length && u.every((x, i) => Object.is(x, v[i]));
        if (a.loss !== b.loss || !same(a.dW.data, b.dW.data) || !same(a.db, b.db)) throw new Error(`${shape.name} ${dtype}: allocMatrix's X gave other bits`);
        const msAdvised = [];
        const msPlain = [];
        for (let i = 0; i < pairs; i++) {
          if (i % 2) {
            msPlain.push(time(plain, o));
            msAdvised.push(time(advised, o));
          } else {
            msAdvised.push(time(advised, o));
            msPlain.push(time(plain, o));
          }
        }
        const median = (xs) => [...xs].sort((x, y) => x - y)[(xs.length - 1) >> 1];
        const ratios = msAdvised.map((v, i) => v / msPlain[i]);
        const row = {
          shape: shape.name, N: shape.N, D: shape.D, K: shape.K, dtype, threads, pairs,
          plainMs: median(msPlain), advisedMs: median(msAdvised), ratio: median(ratios), wins: ratios.filter((r) => r < 1).length,
        };
        out.push(row);
        log(`  pages ${shape.name} ${dtype} t=${threads}: plain ${fmtMs(row.plainMs)} ms, allocMatrix ${fmtMs(row.advisedMs)} ms, median pair ${row.ratio.toFixed(3)}×, allocMatrix faster in ${row.wins}/${pairs}`);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The run

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.memoryChild) return memoryChild(args.rows || 1_000_000);

  const started = now();
  const loadStart = os.loadavg();
  const pkg = require('..');
  const addon = require('../dist/cjs/backend.js').native();
  const info = pkg.backend();
  const allThreads = info.threads;
  const isas = [...info.supported];
  const threadCounts = allThreads > 1 ? [1, allThreads] : [1];

  const shapes = (args.quick ? QUICK_SHAPES : SHAPES).filter((s) => !args.shapes || args.shapes.includes(s.name));
  const dtypes = DTYPES.filter((d) => !args.dtypes || args.dtypes.includes(d));
  const ops = OPS.filter((o) => !args.ops || args.ops.includes(o));

  log(`softmax-simd ${info.version}: isa ${info.isa} (compiled ${info.compiled.join(', ')}; this CPU runs ${isas.join(', ')}), ${allThreads} threads`);
  log(`load average at start: ${loadStart.map((x) => x.toFixed(2)).join(' ')}`);

  let probe = null;
  if (args.probe) {
    log('probe: measuring peak FMA rate and memory bandwidth ...');
    try {
      probe = runProbe(allThreads, args.quick);
    } catch (e) {
      probe = { error: `the roofline probe failed: ${e.message}` };
    }
    log(probe.error ? `probe: ${probe.error}` : `probe: ${JSON.stringify(probe)}`);
  }

  const peers = [];
  if (args.peers) {
    for (const file of ['tfjs-wasm.cjs', 'tfjs-cpu.cjs']) {
      const peer = require(`./peers/${file}`);
      try {
        peer.info = await peer.activate();
        peers.push(peer);
        log(`peer ${peer.name}: ${JSON.stringify(peer.info)}`);
      } catch (e) {
        log(`peer ${peer.name} could not start: ${e.message}`);
        peers.push({ ...peer, failed: e.message });
      }
    }
  }

  const rows = [];
  let wrong = 0;
  const record = (row) => {
    row.tolerance = TOLERANCE[row.dtype];
    row.wrong = !(row.err <= row.tolerance);
    if (row.wrong) {
      wrong++;
      log(`  WRONG: ${row.impl} ${row.op} ${row.shape} ${row.dtype}: error ${row.err}`);
    }
    rows.push(row);
    log(`  ${pad(row.op, 16)} ${pad(row.impl, 30)} ${pad(row.mode, 5)} t=${row.threads} ${fmtMs(row.ms).padStart(10)} ms ±${(row.rme || 0).toFixed(1)}% err ${fmtErr(row.err)}${row.scaledFrom ? ` (${row.scaledFrom} rows, scaled)` : ''}`);
  };

  for (const dtype of dtypes) {
    for (const shape of shapes) {
      log(`${shape.name} ${shape.N}×${shape.D}, K=${shape.K}, ${dtype}`);
      const problem = makeProblem(shape, dtype, undefined, pkg.allocMatrix);
      const sub = rowSubset(problem, checkRows(shape));
      const base = { shape: shape.name, dtype, N: shape.N, D: shape.D, K: shape.K };

      // The witness: the pure-TS float64 reference on the check rows.
      const refStart = now();
      const ref = pkg.reference.lossAndGradients(sub.X, sub.y, sub.W, sub.b, { reg: REG });
      const refMs = now() - refStart;
      const refScores = pkg.reference.scores(sub.X, sub.W, sub.b);
      const refScoresMs = now() - refStart - refMs;

      /** Rows to time on: all of them, unless a call would take longer than capMs (then fewer, scaled; marked †). */
      const planRows = (perRowMs, capMs, minRows) => {
        if (args.quick || perRowMs * shape.N <= capMs) return shape.N;
        return Math.min(shape.N, Math.max(minRows, Math.floor(capMs / perRowMs / 16) * 16));
      };
      const timedPart = (n) => (n < shape.N ? rowSubset(problem, n) : problem);
      const scaled = (t, n) => ({ ...t, ms: (t.ms * shape.N) / n, scaledFrom: n < shape.N ? n : 0 });

      // softmax-simd: each ISA this CPU runs × {1, all} threads × {sync, async}; scores and predict with the
      // default (best) ISA.
      for (const isa of isas) {
        const active = addon.selectIsa(isa);
        if (active !== isa || pkg.backend().isa !== isa) throw new Error(`selectIsa('${isa}') left ${pkg.backend().isa} active`);
        const capMs = isa === info.isa ? Infinity : CAP_MS_OTHER; // the default ISA always runs on all rows
        for (const threads of threadCounts) {
          const o = { reg: REG, threads };
          const impl = `softmax-simd ${isa}`;
          const row = { ...base, impl, kind: 'simd', isa, threads };
          if (ops.includes('lossAndGradients')) {
            const errSync = lossErr(pkg.lossAndGradients(sub.X, sub.y, sub.W, sub.b, o), ref);
            const errAsync = lossErr(await pkg.lossAndGradientsAsync(sub.X, sub.y, sub.W, sub.b, o), ref);
            const c0 = now();
            pkg.lossAndGradients(sub.X, sub.y, sub.W, sub.b, o);
            const n = planRows((now() - c0) / sub.shape.N, capMs, CHECK_ROWS);
            const part = timedPart(n);
            const t0 = now();
            pkg.lossAndGradients(part.X, part.y, part.W, part.b, o); // warm-up, and the estimate
            const opts = benchOptions(now() - t0, args.quick);
            const sync = await timeIt(`${impl} t${threads} sync`, () => pkg.lossAndGradients(part.X, part.y, part.W, part.b, o), false, opts);
            record({ ...row, op: 'lossAndGradients', mode: 'sync', ...scaled(sync, n), err: errSync });
            const asyncT = await timeIt(`${impl} t${threads} async`, () => pkg.lossAndGradientsAsync(part.X, part.y, part.W, part.b, o), true, opts);
            record({ ...row, op: 'lossAndGradients', mode: 'async', ...scaled(asyncT, n), err: errAsync });
          }
          if (isa !== info.isa) continue;
          for (const op of ['scores', 'predict']) {
            if (!ops.includes(op)) continue;
            const out = pkg[op](sub.X, sub.W, sub.b, { threads });
            const err = op === 'scores' ? relErr(out.data, refScores.data) : predictErr(out, refScores, shape.K, dtype);
            const c0 = now();
            pkg[op](sub.X, sub.W, sub.b, { threads });
            const n = planRows((now() - c0) / sub.shape.N, capMs, CHECK_ROWS);
            const part = timedPart(n);
            const t0 = now();
            pkg[op](part.X, part.W, part.b, { threads });
            const t = await timeIt(`${impl} ${op}`, () => pkg[op](part.X, part.W, part.b, { threads }), false, benchOptions(now() - t0, args.quick));
            record({ ...row, op, mode: 'sync', ...scaled(t, n), err });
          }
        }
      }
      addon.selectIsa(info.isa);

      // The pure-TS reference: timed on the check rows (or fewer), scaled to N rows. With --quick its one
      // check call is its time (it is the witness there, and slow).
      {
        const impl = 'reference (pure TS)';
        const row = { ...base, impl, kind: 'reference', isa: '-', threads: 1, mode: 'sync', err: 0 };
        const once = (ms) => ({ ms, rme: NaN, samples: 1 });
        const n = Math.min(sub.shape.N, planRows(refMs / sub.shape.N, REF_CAP_MS, 4));
        const part = timedPart(n);
        if (ops.includes('lossAndGradients')) {
          const t = args.quick
            ? once(refMs)
            : await timeIt(impl, () => pkg.reference.lossAndGradients(part.X, part.y, part.W, part.b, { reg: REG }), false, benchOptions(Infinity, false));
          record({ ...row, op: 'lossAndGradients', ...scaled(t, n) });
        }
        for (const op of ['scores', 'predict']) {
          if (!ops.includes(op)) continue;
          const t = args.quick ? once(refScoresMs) : await timeIt(`${impl} ${op}`, () => pkg.reference[op](part.X, part.W, part.b), false, benchOptions(Infinity, false));
          record({ ...row, op, ...scaled(t, n) });
        }
      }

      // Peers: checked on the check rows, timed on all rows unless a call would take longer than CAP_MS.
      for (const peer of peers) {
        if (peer.failed || !peer.dtypes.includes(dtype)) continue;
        await peer.activate();
        const check = peer.prepare(sub.X, sub.y, sub.W, sub.b);
        check.lossAndGradients(REG);
        const c0 = now();
        const res = check.lossAndGradients(REG);
        const checkMs = now() - c0;
        const errs = {
          lossAndGradients: lossErr(res, ref),
          scores: relErr(check.scores().data, refScores.data),
          predict: predictErr(check.predict(), refScores, shape.K, dtype),
        };
        check.dispose();
        const n = planRows(checkMs / sub.shape.N, CAP_MS, CHECK_ROWS);
        const part = timedPart(n);
        const bound = peer.prepare(part.X, part.y, part.W, part.b);
        const t0 = now();
        bound.lossAndGradients(REG); // warm-up, and the estimate
        const est = now() - t0;
        for (const op of ops) {
          const fn = op === 'lossAndGradients' ? () => bound.lossAndGradients(REG) : () => bound[op]();
          const t = await timeIt(`${peer.name} ${op}`, fn, false, benchOptions(op === 'lossAndGradients' ? est : est / 2, args.quick));
          record({ ...base, op, impl: peer.name, kind: 'peer', isa: '-', threads: peer.info.threads || 1, mode: 'sync', ...scaled(t, n), err: errs[op] });
        }
        bound.dispose();
      }
    }
  }

  let paired = [];
  if (probe && !probe.error && ops.includes('lossAndGradients')) {
    log('side by side with the peak: lossAndGradients rounds between peak probes ...');
    addon.selectIsa(info.isa);
    try {
      paired = await pairedRounds(pkg, shapes, dtypes, threadCounts, probe, args.quick);
    } catch (e) {
      paired = { error: `the side-by-side rounds failed: ${e.message}` };
      log(paired.error);
    }
  }

  let pages = [];
  if (ops.includes('lossAndGradients')) {
    log("X's pages: lossAndGradients on allocMatrix's X and on a plain typed array, in alternating pairs ...");
    addon.selectIsa(info.isa);
    try {
      pages = await pagesPairs(pkg, shapes, dtypes, threadCounts, args.quick);
    } catch (e) {
      pages = { error: `the pages pairs failed: ${e.message}` };
      log(pages.error);
    }
  }

  // The probe again at the end: a core shared with other work at the start would understate the limits and
  // put rows above 100%, so each limit is the best of the two runs.
  if (probe && !probe.error) {
    try {
      const again = runProbe(allThreads, args.quick);
      log(`probe (end): ${JSON.stringify(again)}`);
      const best = { ...probe, runs: [pickLimits(probe), pickLimits(again)] };
      for (const k of ['f32', 'f64']) {
        best[k] = { gflops1: Math.max(probe[k].gflops1, again[k].gflops1), gflopsAll: Math.max(probe[k].gflopsAll, again[k].gflopsAll) };
      }
      best.bandwidth = {
        gbps1: Math.max(probe.bandwidth.gbps1, again.bandwidth.gbps1),
        gbpsAll: Math.max(probe.bandwidth.gbpsAll, again.bandwidth.gbpsAll),
      };
      probe = best;
    } catch (e) {
      log(`probe (end) failed: ${e.message}`);
    }
  }

  // Memory: a 1,000,000 × 784 float32 batch in a clean child process.
  let memory = null;
  if (args.memory && !args.quick) {
    log('memory: 1,000,000 × 784 float32 lossAndGradients in a child process ...');
    const child = spawnSync(process.execPath, [__filename, '--memory-child', '--rows=1000000'], { encoding: 'utf8', maxBuffer: 1 << 20 });
    try {
      memory = JSON.parse(child.stdout.trim().split('\n').pop());
    } catch {
      memory = { error: `the memory child failed (status ${child.status}): ${(child.stderr || '').slice(-500)}` };
    }
    log(`memory: ${JSON.stringify(memory)}`);
  }

  const report = {
    date: new Date().toISOString(),
    quick: args.quick,
    filtered: args.filtered,
    machine: {
      cpu: cpuModel(),
      cores: os.availableParallelism(),
      memGiB: os.totalmem() / 2 ** 30,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      loadStart,
      loadEnd: os.loadavg(),
    },
    backend: info,
    isas,
    threadCounts,
    probe,
    paired,
    pages,
    peers: peers.map((p) => ({ name: p.name, info: p.info || null, failed: p.failed || null })),
    rows,
    checkRows: shapes.map((s) => `${s.name} ${checkRows(s)}`).join(', '),
    memory,
    seconds: (now() - started) / 1e3,
  };
  const md = markdown(report);
  const svg = chart(report);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, args.filtered ? 'results.partial.json' : 'results.json'), JSON.stringify(report, null, 1));
  const mdPath = args.filtered ? path.join(OUT_DIR, args.quick ? 'RESULTS.quick.md' : 'RESULTS.partial.md') : path.join(__dirname, 'RESULTS.md');
  const svgPath = args.filtered ? path.join(OUT_DIR, args.quick ? 'results.quick.svg' : 'results.partial.svg') : path.join(__dirname, 'results.svg');
  fs.writeFileSync(mdPath, md);
  fs.writeFileSync(svgPath, svg);
  process.stdout.write(`\n${md}\n`);
  log(`wrote ${path.relative(ROOT, mdPath)} and ${path.relative(ROOT, svgPath)} in ${report.seconds.toFixed(0)} s`);
  if (wrong > 0) {
    log(`${wrong} wrong result(s): see the ✗ rows`);
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The memory child: resident memory a large batch's lossAndGradients adds beyond its inputs.

function readStatus() {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number((s.match(new RegExp(`${key}:\\s+(\\d+) kB`)) || [])[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

async function memoryChild(N) {
  const D = 784;
  const K = 10;
  const pkg = require('..');
  const X = new Float32Array(N * D);
  let a = 12345;
  for (let i = 0; i < X.length; i++) {
    a = (Math.imul(a, 1103515245) + 12345) | 0;
    X[i] = ((a >>> 16) & 0x7fff) / 16384 - 1;
  }
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) y[i] = i % K;
  const W = new Float32Array(D * K).map((_, i) => ((i % 13) - 6) * 0.01);
  const b = new Float32Array(K);
  const Xm = { data: X, rows: N, cols: D };
  const Wm = { data: W, rows: D, cols: K };
  // Warm-up on a few rows: loads the addon and starts its thread pool (a one-time cost, not this call's).
  pkg.lossAndGradients({ data: X.subarray(0, 64 * D), rows: 64, cols: D }, y.subarray(0, 64), Wm, b, { reg: 1e-3 });
  const inputs = X.byteLength + y.byteLength + W.byteLength + b.byteLength;
  let method;
  let before;
  let peak;
  let ms;
  let canReset = false;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM (peak RSS) to the current RSS
    canReset = true;
  } catch {
    canReset = false;
  }
  if (canReset) {
    method = 'VmHWM (peak RSS, reset through /proc/self/clear_refs just before the call) − VmRSS before the call; sync call';
    before = readStatus().rss;
    const t0 = now();
    pkg.lossAndGradients(Xm, y, Wm, b, { reg: 1e-3 });
    ms = now() - t0;
    peak = readStatus().hwm;
  } else {
    method = 'max of process.memoryUsage().rss sampled every 2 ms during the async call − RSS before it';
    before = process.memoryUsage().rss;
    peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 2);
    const t0 = now();
    await pkg.lossAndGradientsAsync(Xm, y, Wm, b, { reg: 1e-3 });
    ms = now() - t0;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const MiB = 2 ** 20;
  process.stdout.write(
    `${JSON.stringify({
      N,
      D,
      K,
      dtype: 'float32',
      threads: pkg.backend().threads,
      isa: pkg.backend().isa,
      inputsMiB: inputs / MiB,
      rssBeforeMiB: before / MiB,
      peakMiB: peak / MiB,
      extraMiB: (peak - before) / MiB,
      ms,
      method,
    })}\n`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The report: bench/RESULTS.md and bench/results.svg

const PEER_ORDER = ['reference (pure TS)', 'tfjs-wasm', 'tfjs-cpu'];

function shapeOf(report, name) {
  const r = report.rows.find((x) => x.shape === name);
  return r ? { name, N: r.N, D: r.D, K: r.K } : null;
}

function uniq(xs) {
  return [...new Set(xs)];
}

function fmtNum(x, digits = 1) {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(digits) : x.toPrecision(Math.max(2, digits + 1));
}

function allThreadsOf(report) {
  return report.threadCounts[report.threadCounts.length - 1];
}

/** % of the roofline for a row: roofline time for its thread count / its time. */
function rooflinePct(report, row) {
  const s = { N: row.N, D: row.D, K: row.K };
  const t = rooflineMs(report.probe, row.op, s, row.dtype, row.threads > 1);
  return (100 * t) / row.ms;
}

function gflops(row) {
  return flops(row.op, row) / (row.ms * 1e6);
}

function implLabel(row) {
  let label = row.impl;
  if (row.scaledFrom) label += ` †${row.scaledFrom} rows`;
  return label;
}

function errCell(row) {
  if (row.op === 'predict') return row.wrong ? `✗ ${(100 * row.err).toFixed(2)}% labels wrong` : row.err === 0 ? '0 labels differ' : `${(100 * row.err).toFixed(3)}% (near-ties)`;
  if (row.kind === 'reference') return 'witness';
  return row.wrong ? `✗ WRONG ${fmtErr(row.err)}` : fmtErr(row.err);
}

function peerMs(report, row, peerName) {
  const p = report.rows.find((x) => x.shape === row.shape && x.dtype === row.dtype && x.op === row.op && x.impl === peerName);
  return p && !p.wrong && Number.isFinite(p.ms) ? p.ms : NaN;
}

function lossTable(report, dtype) {
  const peersHere = PEER_ORDER.filter((n) => report.rows.some((r) => r.impl === n && r.dtype === dtype && r.op === 'lossAndGradients'));
  const head = ['shape', 'implementation', 'threads', 'mode', 'ms', '±%', 'GFLOP/s', '% roofline', ...peersHere.map((n) => `× ${n.replace(' (pure TS)', '')}`), 'max rel. error'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i < 4 ? ':--' : '--:')).join('|')}|`];
  for (const shapeName of uniq(report.rows.filter((r) => r.dtype === dtype).map((r) => r.shape))) {
    const s = shapeOf(report, shapeName);
    const group = report.rows.filter((r) => r.dtype === dtype && r.shape === shapeName && r.op === 'lossAndGradients');
    group.forEach((row, i) => {
      const speedups = peersHere.map((n) => {
        if (row.kind !== 'simd' || row.wrong) return '—';
        const p = peerMs(report, row, n);
        return Number.isFinite(p) ? `${fmtNum(p / row.ms)}×` : '—';
      });
      const cells = [
        i === 0 ? `**${s.name}** ${s.N}×${s.D}, K=${s.K}` : '',
        implLabel(row),
        String(row.threads),
        row.mode,
        fmtMs(row.ms),
        Number.isFinite(row.rme) ? row.rme.toFixed(1) : 'n/a',
        row.wrong ? '—' : fmtNum(gflops(row)),
        row.wrong ? '—' : fmtNum(rooflinePct(report, row)),
        ...speedups,
        errCell(row),
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    });
  }
  return lines.join('\n');
}

function opsTable(report, dtype) {
  const head = ['shape', 'implementation', 'threads', 'scores ms', 'GFLOP/s', '% roofline', 'error', 'predict ms', 'GFLOP/s', '% roofline', 'labels'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i < 3 ? ':--' : '--:')).join('|')}|`];
  for (const shapeName of uniq(report.rows.filter((r) => r.dtype === dtype).map((r) => r.shape))) {
    const s = shapeOf(report, shapeName);
    const sc = report.rows.filter((r) => r.dtype === dtype && r.shape === shapeName && r.op === 'scores');
    sc.forEach((row, i) => {
      const pr = report.rows.find((r) => r.dtype === dtype && r.shape === shapeName && r.op === 'predict' && r.impl === row.impl && r.threads === row.threads);
      const cells = [
        i === 0 ? `**${s.name}** ${s.N}×${s.D}, K=${s.K}` : '',
        implLabel(row),
        String(row.threads),
        fmtMs(row.ms),
        row.wrong ? '—' : fmtNum(gflops(row)),
        row.wrong ? '—' : fmtNum(rooflinePct(report, row)),
        errCell(row),
        pr ? fmtMs(pr.ms) : 'n/a',
        pr && !pr.wrong ? fmtNum(gflops(pr)) : '—',
        pr && !pr.wrong ? fmtNum(rooflinePct(report, pr)) : '—',
        pr ? errCell(pr) : 'n/a',
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    });
  }
  return lines.join('\n');
}

function findRow(report, q) {
  return report.rows.find((r) => Object.entries(q).every(([k, v]) => r[k] === v));
}

function scalingTable(report) {
  const all = allThreadsOf(report);
  const lines = [
    `| shape | dtype | ISA | 1 thread ms | ${all} threads ms | speed-up | % of 1-core roofline (1 thread) | % of all-core roofline (${all} threads) |`,
    '|:--|:--|:--|--:|--:|--:|--:|--:|',
  ];
  for (const shape of ['mnist', 'cifar', 'big', 'mnist-s', 'wideK-s']) {
    for (const dtype of DTYPES) {
      for (const isa of report.isas) {
        const one = findRow(report, { shape, dtype, isa, threads: 1, mode: 'sync', op: 'lossAndGradients', kind: 'simd' });
        const many = findRow(report, { shape, dtype, isa, threads: all, mode: 'sync', op: 'lossAndGradients', kind: 'simd' });
        if (!one || !many) continue;
        lines.push(
          `| ${shape} | ${dtype} | ${isa} | ${fmtMs(one.ms)} | ${fmtMs(many.ms)} | ${fmtNum(one.ms / many.ms, 2)}× | ${fmtNum(rooflinePct(report, one))} | ${fmtNum(rooflinePct(report, many))} |`,
        );
      }
    }
  }
  return lines.length > 2 ? lines.join('\n') : '(not measured in this run)';
}

function asyncTable(report) {
  const lines = ['| shape | dtype | ISA | threads | sync ms | async ms | async − sync (µs) | async / sync |', '|:--|:--|:--|--:|--:|--:|--:|--:|'];
  for (const shape of ['tiny', 'mnist', 'mnist-s']) {
    for (const dtype of DTYPES) {
      for (const isa of report.isas) {
        for (const threads of report.threadCounts) {
          const s = findRow(report, { shape, dtype, isa, threads, mode: 'sync', op: 'lossAndGradients' });
          const a = findRow(report, { shape, dtype, isa, threads, mode: 'async', op: 'lossAndGradients' });
          if (!s || !a) continue;
          lines.push(`| ${shape} | ${dtype} | ${isa} | ${threads} | ${fmtMs(s.ms)} | ${fmtMs(a.ms)} | ${fmtNum((a.ms - s.ms) * 1e3)} | ${fmtNum(a.ms / s.ms, 2)} |`);
        }
      }
    }
  }
  return lines.length > 2 ? lines.join('\n') : '(not measured in this run)';
}

function pairedTable(report) {
  const lines = [
    '| shape | dtype | threads | median round: ms | its % of the roofline at the peak beside it (range over rounds) | its peak, GFLOP/s (probes over all rounds) | its % at the run\'s best peak |',
    '|:--|:--|--:|--:|--:|--:|--:|',
  ];
  for (const r of report.paired) {
    const runWide = rooflineMs(report.probe, 'lossAndGradients', r, r.dtype, r.threads > 1);
    lines.push(
      `| ${r.shape} ${r.N}×${r.D}, K=${r.K} | ${r.dtype} | ${r.threads} | ${fmtMs(r.ms)} | **${r.pct.toFixed(1)}** (${r.pctMin.toFixed(1)}–${r.pctMax.toFixed(1)}) | ` +
        `${r.peak.toFixed(0)} (${r.peakMin.toFixed(0)}–${r.peakMax.toFixed(0)}) | ${((100 * runWide) / r.ms).toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

function pagesTable(report) {
  const lines = [
    '| shape | dtype | threads | plain typed array: ms | allocMatrix: ms | median pair: allocMatrix ÷ plain | allocMatrix faster in |',
    '|:--|:--|--:|--:|--:|--:|--:|',
  ];
  for (const r of report.pages) {
    lines.push(`| ${r.shape} ${r.N}×${r.D}, K=${r.K} | ${r.dtype} | ${r.threads} | ${fmtMs(r.plainMs)} | ${fmtMs(r.advisedMs)} | **${r.ratio.toFixed(3)}×** | ${r.wins} of ${r.pairs} pairs |`);
  }
  return lines.join('\n');
}

function markdown(report) {
  const m = report.machine;
  const p = report.probe;
  const all = allThreadsOf(report);
  const out = [];
  out.push('# softmax-simd benchmark results');
  out.push('');
  out.push(
    `Made by \`npm run bench${report.quick ? ' -- --quick' : ''}\` on ${report.date.slice(0, 10)} (${report.date}); the run took ${report.seconds.toFixed(0)} s.` +
      (report.filtered ? ' **This is a partial or quick run** (filtered shapes, dtypes, ops or implementations).' : ''),
  );
  out.push('');
  out.push(`- Machine: ${m.cpu}, ${m.cores} cores as seen by Node (os.availableParallelism), ${m.memGiB.toFixed(0)} GiB, ${m.platform}`);
  out.push(`- Node ${m.node}; softmax-simd ${report.backend.version}; ISAs compiled: ${report.backend.compiled.join(', ')}; run by this CPU and measured: ${report.isas.join(', ')}; default ISA: ${report.backend.isa}; threads: 1 and ${all}`);
  out.push(
    `- Load average (1, 5, 15 min) at start ${m.loadStart.map((x) => x.toFixed(2)).join(', ')}, at end ${m.loadEnd.map((x) => x.toFixed(2)).join(', ')}` +
      (m.loadStart[0] > 0.5 ? ' — **other processes were loading the machine when this run started**, so multi-thread numbers (and the all-core probe) are lower than on an idle machine.' : ''),
  );
  for (const peer of report.peers) {
    if (peer.failed) out.push(`- Peer ${peer.name}: could not start (${peer.failed})`);
    else if (peer.info) {
      const i = peer.info;
      out.push(
        `- Peer ${peer.name}: TensorFlow.js ${i.version}, backend \`${i.backend}\`` +
          (i.binary ? `, binary ${i.binary} (SIMD ${i.simd ? 'on' : 'off'}, threads ${i.multithread ? i.threads : 'off: tfjs disables wasm threads under Node'})` : ', plain JavaScript, one thread'),
      );
    }
  }
  out.push('');
  out.push('## This machine\'s limits');
  out.push('');
  if (!p || p.error) out.push(p ? p.error : 'The probe did not run (--no-probe); no roofline.');
  else {
    out.push(`Measured in this run by \`bench/probe/roofline.cpp\` (\`g++ ${p.flags}\`, ${p.isa}): ${12} independent FMA chains per thread; read bandwidth summing a ${p.bufferMiB} MiB buffer.`);
    const lim = (r) => `f32 ${fmtNum(r.f32.gflops1)}/${fmtNum(r.f32.gflopsAll)}, f64 ${fmtNum(r.f64.gflops1)}/${fmtNum(r.f64.gflopsAll)} GFLOP/s, ${fmtNum(r.bandwidth.gbps1)}/${fmtNum(r.bandwidth.gbpsAll)} GB/s`;
    out.push('');
    out.push(
      'The probe runs at the start and at the end of the benchmark; each limit below is the better of the two' +
        (p.runs ? ` (1 thread/all threads: start ${lim(p.runs[0])}; end ${lim(p.runs[1])}).` : '.') +
        ' On a loaded machine the limits (the all-core ones first) come out low and a row can exceed 100% of them: read such a row as contention during the probe, not as beating the hardware.',
    );
    out.push('');
    out.push(`| limit | 1 thread | ${p.threads} threads |`);
    out.push('|:--|--:|--:|');
    out.push(`| peak FMA rate, float32 (GFLOP/s) | ${fmtNum(p.f32.gflops1)} | ${fmtNum(p.f32.gflopsAll)} |`);
    out.push(`| peak FMA rate, float64 (GFLOP/s) | ${fmtNum(p.f64.gflops1)} | ${fmtNum(p.f64.gflopsAll)} |`);
    out.push(`| memory read bandwidth (GB/s) | ${fmtNum(p.bandwidth.gbps1)} | ${fmtNum(p.bandwidth.gbpsAll)} |`);
    out.push('');
    out.push('Roofline of a call = max(bytes of X ÷ bandwidth, flops ÷ peak FMA rate) for the dtype and the thread count the row used ');
    out.push('(peers run one thread, so their rows use the 1-thread roofline); lossAndGradients counts 4·N·D·K flops (two N·D·K products, an FMA = 2 flops), ');
    out.push('scores and predict 2·N·D·K, and their bytes include the N×K scores (N labels) they write.');
    out.push('"% roofline" = roofline time ÷ measured time.');
  }
  out.push('');
  for (const dtype of DTYPES) {
    if (!report.rows.some((r) => r.dtype === dtype)) continue;
    out.push(`## lossAndGradients, ${dtype}`);
    out.push('');
    out.push(lossTable(report, dtype));
    out.push('');
    if (dtype === 'float64') out.push('TensorFlow.js has no float64 tensors, so it appears in the float32 table only.\n');
  }
  out.push('"× peer" = the peer\'s time ÷ this row\'s time (above 1: softmax-simd is faster). ms is the mean of benchmark.js samples, ±% its relative margin of error.');
  out.push(`† timed on that many leading rows and scaled to N rows, because a call on all rows would take longer than ${CAP_MS} ms for a peer (${CAP_MS_OTHER} ms for a non-default ISA, ${REF_CAP_MS} ms for the reference; the default ISA always runs on all rows) and the whole run must stay near 10 minutes. Every row is checked against the reference first.`);
  out.push('');
  for (const dtype of DTYPES) {
    if (!report.rows.some((r) => r.dtype === dtype && r.op === 'scores')) continue;
    out.push(`## scores and predict, ${dtype}`);
    out.push('');
    out.push(opsTable(report, dtype));
    out.push('');
  }
  if (report.paired && report.paired.error) {
    out.push('## Side by side with the peak (lossAndGradients, sync, default ISA)');
    out.push('');
    out.push(report.paired.error);
    out.push('');
  } else if (report.paired && report.paired.length) {
    out.push('## Side by side with the peak (lossAndGradients, sync, default ISA)');
    out.push('');
    out.push(pairedTable(report));
    out.push('');
    out.push(
      `Each of ${report.paired[0].rounds} round(s) times the call (${report.paired[0].roundMs ? `at least ${report.paired[0].roundMs} ms and 2 calls` : 'one call'}, the mean per call) between two ` +
        'short probes of the dtype\'s peak FMA rate (`roofline <threads> 0 peak f32|f64`, ~0.5 s, best of 5 runs of 50–100 ms), and rates it against the roofline at the higher of ' +
        'those two peaks (the bandwidth: the start probe\'s; every row here is compute-bound). A row shows the median round by that rating, and the range over its rounds. ' +
        'On a shared host the rate a core delivers drifts over minutes; the tables above rate every row against the best probe of the whole run, this table ' +
        'each round against the peak probed beside it. The rounds are timed minutes after the tables\' rows, so they say nothing of a slow spell there. Both are measurements of this run: read them together.',
    );
    out.push('');
  }
  if (report.pages && (report.pages.error || report.pages.length)) {
    out.push("## X's pages: allocMatrix versus a plain typed array (lossAndGradients, sync, default ISA)");
    out.push('');
    out.push(report.pages.error || pagesTable(report));
    out.push('');
    if (!report.pages.error) {
      out.push(
        `Every other table times X made by \`allocMatrix\` (README "Use": from 32 MiB on, on memory advised for huge pages). Here the same values sit in two X's, one from allocMatrix, one a plain \`new Float32Array\` / \`Float64Array\` (4 KiB pages), ` +
          `timed in ${report.pages[0].pairs} alternating pair(s) of calls (the first of a pair alternates); the ratio is the median pair's. Both give the same bits (checked before timing).`,
      );
      out.push('');
    }
  }
  out.push('## Scaling from 1 thread to all threads (lossAndGradients, sync)');
  out.push('');
  out.push(scalingTable(report));
  out.push('');
  out.push('## Async versus sync (lossAndGradients)');
  out.push('');
  out.push(asyncTable(report));
  out.push('');
  out.push('Async is timed with benchmark.js `defer: true`: the time from the call to the settled Promise, one call in flight.');
  out.push('');
  out.push('## Memory');
  out.push('');
  const mem = report.memory;
  if (!mem) out.push('(not measured in this run)');
  else if (mem.error) out.push(mem.error);
  else {
    out.push(
      `lossAndGradients on a ${mem.N.toLocaleString('en-US')} × ${mem.D} float32 batch (K = ${mem.K}, ${mem.isa}, ${mem.threads} threads) in a child process: ` +
        `inputs ${fmtNum(mem.inputsMiB)} MiB, resident memory before the call ${fmtNum(mem.rssBeforeMiB)} MiB, peak during it ${fmtNum(mem.peakMiB)} MiB: ` +
        `**${fmtNum(mem.extraMiB, 2)} MiB extra** beyond the inputs (the call took ${fmtMs(mem.ms)} ms). Method: ${mem.method}.`,
    );
  }
  out.push('');
  out.push('## How the numbers are made');
  out.push('');
  out.push(`- Data: X uniform in [−1, 1), W uniform × 3/√D (scores of unit spread), small b, uniform labels; reg = ${REG}; the same seed every run; X made by \`allocMatrix\` (every implementation gets the same arrays; the pages table, when it runs, sets it beside a plain typed array).`);
  out.push(
    `- Before timing, every implementation's result is compared with the pure-TS float64 reference on the first rows of X (computed by both; ${CHECK_ROWS} rows, or fewer when D·K is large: ${report.checkRows}): ` +
      'max relative error = max over loss, dW, db of max|a − r| ÷ max|r|; scores likewise; predict counts labels that differ where the reference has no near-tie. ' +
      `Tolerance: ${TOLERANCE.float32} for float32, ${TOLERANCE.float64} for float64. A result outside it is marked ✗ and not ranked.`,
  );
  out.push('- TensorFlow.js peers: loss, dW and db from `S = matMul(X, W) + b; logP = logSoftmax(S); Y = cast(oneHot(y, K), float32); L = −Σ(Y ∘ logP)/N + reg·ΣW²; G = (exp(logP) − Y)/N; dW = Xᵀ·G + 2·reg·W; db = Σ_rows G` in one `tf.tidy`, read back with `dataSync()`. Xᵀ·G is `matMul(X, G, transposeA=true)` on `cpu` and `matMul(transpose(X), G)` on `wasm` (the fastest of the forms tried on each). X, y, W, b are tensors made once outside the timed call (in the peers\' favour).');
  out.push('- The reference is the package\'s own pure-TS float64 implementation (`reference.*`), a correctness witness that optimises nothing.');
  out.push('');
  return out.join('\n');
}

/** A horizontal bar chart of lossAndGradients GFLOP/s (log scale), one panel per dtype, plain SVG. */
function chart(report) {
  const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const all = allThreadsOf(report);
  const best = report.isas[0];
  const series = [];
  for (const isa of report.isas) series.push({ label: `softmax-simd ${isa}, ${all} threads`, match: (r) => r.kind === 'simd' && r.isa === isa && r.threads === all && r.mode === 'sync', color: isa === best ? '#1f6feb' : '#8fb8f5' });
  if (all > 1) series.push({ label: `softmax-simd ${best}, 1 thread`, match: (r) => r.kind === 'simd' && r.isa === best && r.threads === 1 && r.mode === 'sync', color: '#54aeff' });
  series.push({ label: 'tfjs-wasm (SIMD, 1 thread)', match: (r) => r.impl === 'tfjs-wasm', color: '#bf8700' });
  series.push({ label: 'tfjs-cpu', match: (r) => r.impl === 'tfjs-cpu', color: '#d4a72c' });
  series.push({ label: 'reference (pure TS)', match: (r) => r.kind === 'reference', color: '#8c959f' });

  const rows = report.rows.filter((r) => r.op === 'lossAndGradients' && !r.wrong && Number.isFinite(r.ms));
  const dtypes = DTYPES.filter((d) => rows.some((r) => r.dtype === d));
  const shapes = uniq(rows.map((r) => r.shape));
  const values = rows.map(gflops).filter((v) => v > 0);
  const peaks = report.probe && !report.probe.error ? [report.probe.f32.gflopsAll, report.probe.f64.gflopsAll] : [];
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, ...peaks, 10))));
  const barH = 11;
  const labelW = 190;
  const plotW = 520;
  const x = (v) => labelW + (plotW * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const parts = [];
  let y = 60;
  const header = [];
  header.push(`<text x="10" y="22" font-size="15" font-weight="bold">softmax-simd lossAndGradients: GFLOP/s (log scale), higher is better</text>`);
  header.push(`<text x="10" y="40" font-size="11" fill="#57606a">${esc(report.machine.cpu)}, ${report.machine.cores} cores, Node ${esc(report.machine.node)}, ${esc(report.date.slice(0, 10))}; dashed line: all-core roofline of the shape</text>`);
  series.forEach((s, i) => {
    const lx = 10 + (i % 3) * 250;
    const ly = 52 + Math.floor(i / 3) * 14;
    header.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${ly}" font-size="11">${esc(s.label)}</text>`);
  });
  y = 52 + Math.ceil(series.length / 3) * 14 + 10;
  for (const dtype of dtypes) {
    parts.push(`<text x="10" y="${y + 12}" font-size="13" font-weight="bold">${dtype}</text>`);
    y += 22;
    for (const shape of shapes) {
      const here = rows.filter((r) => r.dtype === dtype && r.shape === shape);
      if (!here.length) continue;
      const s = shapeOf(report, shape);
      const groupTop = y;
      const bars = series.map((se) => ({ se, row: here.find(se.match) })).filter((b) => b.row);
      parts.push(`<text x="10" y="${y + 10}" font-size="11" font-weight="bold">${esc(shape)}</text>`);
      parts.push(`<text x="10" y="${y + 23}" font-size="10" fill="#57606a">${s.N}×${s.D}, K=${s.K}</text>`);
      for (const { se, row } of bars) {
        const v = gflops(row);
        parts.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, x(v) - labelW).toFixed(1)}" height="${barH - 1}" fill="${se.color}"><title>${esc(se.label)}: ${fmtNum(v)} GFLOP/s, ${fmtMs(row.ms)} ms</title></rect>`);
        parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + 9}" font-size="9">${fmtNum(v)}</text>`);
        y += barH;
      }
      const roof = rooflineMs(report.probe, 'lossAndGradients', s, dtype, all > 1);
      if (Number.isFinite(roof)) {
        const rv = flops('lossAndGradients', s) / (roof * 1e6);
        parts.push(`<line x1="${x(rv).toFixed(1)}" y1="${groupTop - 2}" x2="${x(rv).toFixed(1)}" y2="${y + 1}" stroke="#cf222e" stroke-dasharray="3,2"/>`);
      }
      y = Math.max(y, groupTop + 28) + 8;
    }
    y += 6;
  }
  // axis
  const axis = [];
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    axis.push(`<line x1="${x(v).toFixed(1)}" y1="${y}" x2="${x(v).toFixed(1)}" y2="${y + 4}" stroke="#57606a"/>`);
    axis.push(`<text x="${x(v).toFixed(1)}" y="${y + 15}" font-size="10" text-anchor="middle">${v >= 1 ? v : v.toPrecision(1)}</text>`);
  }
  axis.push(`<line x1="${labelW}" y1="${y}" x2="${labelW + plotW}" y2="${y}" stroke="#57606a"/>`);
  axis.push(`<text x="${labelW + plotW / 2}" y="${y + 30}" font-size="11" text-anchor="middle">GFLOP/s (4·N·D·K flops per call)</text>`);
  const height = y + 40;
  const width = labelW + plotW + 60;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...header,
    ...parts,
    ...axis,
    '</svg>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

function log(s) {
  process.stderr.write(`${s}\n`);
}
function pad(s, n) {
  return String(s).padEnd(n);
}
function fmtMs(ms) {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 0.1 ? ms.toFixed(4) : ms < 10 ? ms.toFixed(3) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0);
}
function fmtErr(e) {
  return Number.isFinite(e) ? e.toExponential(1) : String(e);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
