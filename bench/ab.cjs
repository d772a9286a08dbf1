#!/usr/bin/env node
// Two builds of the addon side by side on one shape: the A/B measurement for a shared, noisy
// machine, where runs of one binary minutes apart can differ by 30%. Each round times A and B in
// fresh child processes (SOFTMAX_SIMD_BINARY selects the build), in the order AB on even rounds and
// BA on odd ones, so that a slow spell of the host falls on both; each child warms up, then reports
// its fastest of `--calls` samples (a sample: one call, or as many as last 20 ms for short calls), after at least
// 300 ms of warm-up calls. The report: each build's fastest and median round, the ratio of
// the medians (B / A), in how many rounds B beat A, and both builds' results (they must agree).
//
// Usage:
//   node bench/ab.cjs --a=old/softmax_simd.node [--b=build/Release/softmax_simd.node]
//        [--op=lossAndGradients|scores|predict|labeledGram] [--shape=mnist|cifar|wideK|big|tiny|NxDxK|NxD]
//        [--dtype=float32|float64] [--threads=1] [--rounds=10] [--calls=5] [--out=a|b|ab]
// (--out: lossAndGradients on that side writes into reused gradient arrays, options.out; with the
// same build on both sides, --out=b compares calls with and without it.)
// (--shape=NxDxK: any shape for lossAndGradients, scores and predict, e.g. 200x3072x10, a CIFAR-10
// minibatch; labeledGram takes --shape=NxD, e.g. 4096x784, and writes into one reused output; with --fresh,
// into a new one per call.)
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { argReader } = require('./args.cjs');
const { SHAPES, REG, makeProblem, rng } = require('./shapes.cjs');

const argv = process.argv.slice(2);
const arg = argReader(argv);
const op = arg('op', 'lossAndGradients');
const shapeName = arg('shape', op === 'labeledGram' ? '4096x784' : 'mnist');
const dtype = arg('dtype', 'float32');
const threads = Number(arg('threads', '1'));
const calls = Number(arg('calls', '5'));
const fresh = argv.includes('--fresh');
const outSides = arg('out', '').toUpperCase();

function child() {
  const softmax = require('..');
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  let run;
  let result;
  if (op === 'labeledGram') {
    const [N, D] = shapeName.split('x').map(Number);
    const Arr = dtype === 'float32' ? Float32Array : Float64Array;
    const r = rng(4242);
    const X = softmax.matrix(Arr.from({ length: N * D }, () => 2 * r() - 1), N, D);
    const y = Arr.from({ length: N }, () => (r() < 0.5 ? -1 : 1));
    // --fresh: a new Q per call (the allocation and its first-touch page faults counted), else
    // one reused output.
    let out = new Arr(N * N);
    run = fresh ? () => (out = softmax.labeledGram(X, y, { threads }).data) : () => softmax.labeledGram(X, y, { threads, out });
    result = () => {
      let s = 0;
      for (let i = 0; i < out.length; i += 997) s += out[i];
      return s;
    };
  } else {
    // A named shape, or NxDxK (e.g. 200x3072x10: a CIFAR-10 minibatch).
    const dims = /^(\d+)x(\d+)x(\d+)$/.exec(shapeName);
    const shape = dims ? { name: shapeName, N: +dims[1], D: +dims[2], K: +dims[3] } : SHAPES.find((s) => s.name === shapeName);
    if (!shape) throw new Error(`--shape must be one of ${SHAPES.map((s) => s.name).join(', ')} or NxDxK for ${op}`);
    const p = makeProblem(shape, dtype);
    let last;
    if (op === 'scores') {
      run = () => (last = softmax.scores(p.X, p.W, p.b, { threads }));
      result = () => last.data.reduce((s, v) => s + v, 0);
    } else if (op === 'predict') {
      run = () => (last = softmax.predict(p.X, p.W, p.b, { threads }));
      result = () => last.reduce((s, v) => s + v, 0);
    } else {
      const Arr = dtype === 'float32' ? Float32Array : Float64Array;
      const side = arg('side', '');
      const o = { reg: REG, threads };
      if (side && outSides.includes(side)) o.out = { dW: new Arr(shape.D * shape.K), db: p.b ? new Arr(shape.K) : null };
      run = () => (last = softmax.lossAndGradients(p.X, p.y, p.W, p.b, o));
      result = () => last.loss;
    }
  }
  // Warm-up: at least 300 ms of calls, so that V8 has optimized the call path of µs-long calls (with
  // 20 ms, tiny calls were measured half-optimized); then enough calls per sample for a sample to
  // last at least 20 ms.
  for (let t = now(); (run(), now() - t < 300); );
  let reps = 1;
  for (let t = now(); (run(), now() - t < 20); ) ++reps;
  let best = Infinity;
  for (let i = 0; i < calls; i++) {
    const t = now();
    for (let k = 0; k < reps; k++) run();
    best = Math.min(best, (now() - t) / reps);
  }
  process.stdout.write(JSON.stringify({ ms: best, isa: softmax.backend().isa, result: result() }));
}

function parent() {
  const a = arg('a');
  const b = arg('b', path.join(__dirname, '..', 'build', 'Release', 'softmax_simd.node'));
  if (!a) throw new Error('--a=<path of the baseline softmax_simd.node> is required');
  const rounds = Number(arg('rounds', '10'));
  const builds = { A: path.resolve(a), B: path.resolve(b) };
  const times = { A: [], B: [] };
  const seen = {};
  const once = (which) => {
    const out = execFileSync(process.execPath, [__filename, '--child', `--side=${which}`, ...argv], {
      env: { ...process.env, SOFTMAX_SIMD_BINARY: builds[which] },
      encoding: 'utf8',
    });
    const r = JSON.parse(out);
    times[which].push(r.ms);
    seen[which] = r;
  };
  for (let i = 0; i < rounds; i++) {
    for (const which of i % 2 === 0 ? ['A', 'B'] : ['B', 'A']) once(which);
    process.stderr.write(`round ${i + 1}/${rounds}: A ${times.A[i].toPrecision(4)} ms, B ${times.B[i].toPrecision(4)} ms\n`);
  }
  const median = (v) => {
    const s = [...v].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const wins = times.B.filter((t, i) => t < times.A[i]).length;
  const outNote = outSides ? `, options.out on ${outSides.split('').join(' and ')}` : '';
  console.log(`${op} ${shapeName} ${dtype} threads=${threads}${outNote}, ${rounds} rounds (AB/BA alternating), best of ${calls} samples per round`);
  for (const w of ['A', 'B']) {
    console.log(`  ${w} ${builds[w]} (isa ${seen[w].isa}): fastest ${Math.min(...times[w]).toPrecision(4)} ms, median ${median(times[w]).toPrecision(4)} ms, result ${seen[w].result}`);
  }
  console.log(`  median B / A = ${(median(times.B) / median(times.A)).toFixed(3)}; B faster in ${wins} of ${rounds} rounds`);
}

if (argv.includes('--child')) child();
else parent();
