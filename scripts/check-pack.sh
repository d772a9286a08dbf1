#!/usr/bin/env bash
# Packs softmax-simd, installs the tarball into a new project outside the repository, and computes
# lossAndGradients from it through CommonJS require and through ESM import (what a user gets).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$repo" && npm pack --silent --pack-destination "$work" | tail -n 1)"
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$tarball" >/dev/null

cat > check.cjs <<'JS'
const s = require('softmax-simd');
const X = s.matrix(new Float64Array([1, 2, 3, 4, -1, 0]), 3, 2);
const W = s.matrix(new Float64Array(6), 2, 3);
const r = s.lossAndGradients(X, [0, 1, 2], W, new Float64Array(3));
if (Math.abs(r.loss - Math.log(3)) > 1e-12) throw new Error(`require: loss ${r.loss}`);
console.log(`require: loss ${r.loss} on ${s.backend().isa}`);
JS
cat > check.mjs <<'JS'
import { lossAndGradients, matrix, backend } from 'softmax-simd';
import cjs from 'softmax-simd';
const X = matrix(new Float32Array([1, 2, 3, 4, -1, 0]), 3, 2);
const W = matrix(new Float32Array(6), 2, 3);
const r = lossAndGradients(X, new Int32Array([0, 1, 2]), W, new Float32Array(3));
if (Math.abs(r.loss - Math.log(3)) > 1e-6) throw new Error(`import: loss ${r.loss}`);
if (cjs.lossAndGradients !== lossAndGradients) throw new Error('ESM and CommonJS faces differ');
console.log(`import: loss ${r.loss} on ${backend().isa}`);
JS
node check.cjs
node check.mjs
echo "pack check: 2 passed, 0 failed"
