'use strict';
// TensorFlow.js doing the mathematics of DESIGN.md §1 (loss, dW, db of the softmax classifier), shared by
// the `cpu` and `wasm` peers. TensorFlow.js has no float64 tensors, so these peers run float32 only.
//
// Formulation (the fastest found on this machine; see bench/README.md):
//   S    = matMul(X, W) + b                      one GEMM, N×K
//   logP = logSoftmax(S)                         stable: S − max − log Σ exp(S − max)
//   Y    = cast(oneHot(y, K), 'float32')         (oneHot(y, K, 1, 0, 'float32') is wrong on the wasm backend of
//                                                 tfjs 4.22: it writes int32 bits into a float32 tensor)
//   L    = −Σ(Y ∘ logP)/N + reg·ΣW²
//   G    = (exp(logP) − Y)/N                     ∂L/∂S
//   dW   = Xᵀ·G + 2·reg·W                        cpu: matMul(X, G, transposeA = true);
//                                                 wasm: matMul(transpose(X), G), ~10× faster there than transposeA
//   db   = Σ_rows G
// all inside one tf.tidy, then read back with dataSync(). X, y, W and b are made tensors once, outside the
// timed call (in the peer's favour); the timed call includes reading loss, dW and db back into typed arrays.

let tf = null;

function core() {
  if (!tf) tf = require('@tensorflow/tfjs-core');
  return tf;
}

/** Loads and activates a tfjs backend; returns facts about it (or throws if it cannot start). */
async function activate(name) {
  const t = core();
  if (name === 'cpu') {
    require('@tensorflow/tfjs-backend-cpu');
  } else if (name === 'wasm') {
    require('@tensorflow/tfjs-backend-wasm');
  } else {
    throw new Error(`unknown tfjs backend ${name}`);
  }
  t.env().set('PROD', true); // skip the debug-mode NaN checks
  const ok = await t.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
  await t.ready();
  const info = { backend: t.getBackend(), version: t.version_core };
  if (name === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    const simd = await t.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await t.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    info.simd = simd;
    info.multithread = threads;
    info.threads = threads ? wasm.getThreadsCount() : 1;
    // The binary tfjs picks from those two flags (backend_wasm.js getPathToWasmBinary).
    info.binary = simd && threads ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  } else {
    info.threads = 1;
  }
  return info;
}

/** Binds one problem (float32 only) to tensors on the active backend. */
function prepare(backendName, X, y, W, b) {
  const t = core();
  if (t.getBackend() !== backendName) throw new Error(`tfjs backend is ${t.getBackend()}, expected ${backendName}`);
  if (!(X.data instanceof Float32Array)) throw new Error('tfjs has no float64 tensors');
  const N = X.rows;
  const D = X.cols;
  const K = W.cols;
  const tX = t.tensor2d(X.data, [N, D], 'float32');
  const tW = t.tensor2d(W.data, [D, K], 'float32');
  const tb = t.tensor1d(b, 'float32');
  const ty = t.tensor1d(y instanceof Int32Array ? y : Int32Array.from(y), 'int32');
  return {
    N,
    D,
    K,
    lossAndGradients(reg) {
      const out = t.tidy(() => {
        const S = t.add(t.matMul(tX, tW), tb);
        const logP = t.logSoftmax(S);
        const Y = t.cast(t.oneHot(ty, K), 'float32');
        let loss = t.div(t.neg(t.sum(t.mul(Y, logP))), N);
        if (reg !== 0) loss = t.add(loss, t.mul(reg, t.sum(t.square(tW))));
        const G = t.div(t.sub(t.exp(logP), Y), N);
        let dW = backendName === 'wasm' ? t.matMul(t.transpose(tX), G) : t.matMul(tX, G, true, false);
        if (reg !== 0) dW = t.add(dW, t.mul(2 * reg, tW));
        const db = t.sum(G, 0);
        return { loss, dW, db };
      });
      const result = { loss: out.loss.dataSync()[0], dW: { data: out.dW.dataSync(), rows: D, cols: K }, db: out.db.dataSync() };
      out.loss.dispose();
      out.dW.dispose();
      out.db.dispose();
      return result;
    },
    scores() {
      const S = t.tidy(() => t.add(t.matMul(tX, tW), tb));
      const data = S.dataSync();
      S.dispose();
      return { data, rows: N, cols: K };
    },
    predict() {
      const p = t.tidy(() => t.argMax(t.add(t.matMul(tX, tW), tb), 1));
      const data = p.dataSync();
      p.dispose();
      return data instanceof Int32Array ? data : Int32Array.from(data);
    },
    dispose() {
      tX.dispose();
      tW.dispose();
      tb.dispose();
      ty.dispose();
    },
  };
}

module.exports = { activate, prepare, core };
