'use strict';
// Peer: TensorFlow.js with its `cpu` backend (float32 only). The formulation is in ./tfjs.cjs.
const tfjs = require('./tfjs.cjs');

module.exports = {
  name: 'tfjs-cpu',
  dtypes: ['float32'],
  activate: () => tfjs.activate('cpu'),
  prepare: (X, y, W, b) => tfjs.prepare('cpu', X, y, W, b),
};
