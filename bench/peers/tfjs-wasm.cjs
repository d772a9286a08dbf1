'use strict';
// Peer: TensorFlow.js with its `wasm` backend (float32 only). The formulation is in ./tfjs.cjs.
const tfjs = require('./tfjs.cjs');

module.exports = {
  name: 'tfjs-wasm',
  dtypes: ['float32'],
  activate: () => tfjs.activate('wasm'),
  prepare: (X, y, W, b) => tfjs.prepare('wasm', X, y, W, b),
};
