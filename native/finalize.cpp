// The gradient of W from a pass's float64 sums (native/linear.hpp finalize_gradients): the loop of
// src/prepare.ts finalizeSums, operation for operation, so that the addon and JavaScript give the
// same bits. JavaScript rounds the product and the sum each to double; a fused multiply-add would
// round once. This file alone is compiled with -ffp-contract=off (CMakeLists.txt): GCC's C++ modes
// fuse across statements by default, even in ISO mode, and did here on aarch64 (fmla / fmadd).
#include <cstddef>
#include <cstring>

#include "linear.hpp"

namespace softmax_simd {

namespace {
// Two elements at a time in a portable vector of two doubles (SSE2 on any x86-64, NEON on aarch64):
// the division, one instruction for both, bounds the loop, and GCC 12 at -O2 leaves the scalar loop
// scalar (40 µs for cifar's 30,720 elements on Zen 4, the JavaScript loop 45–85 µs, this one 20).
using Double2 = double __attribute__((vector_size(16)));
}  // namespace

template <typename T>
void finalize_gradients(const double* sums, const T* W, size_t n, double scale, double divisor,
                        double grad_coef, T* dW) {
  const double* s = sums + 2;
  const Double2 scale2 = {scale, scale}, divisor2 = {divisor, divisor}, coef2 = {grad_coef, grad_coef};
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    Double2 sv;
    std::memcpy(&sv, s + i, sizeof sv);
    const Double2 wv = {static_cast<double>(W[i]), static_cast<double>(W[i + 1])};
    const Double2 data_term = (sv * scale2) / divisor2;
    const Double2 reg_term = coef2 * wv;
    const Double2 g = data_term + reg_term;
    dW[i] = static_cast<T>(g[0]);
    dW[i + 1] = static_cast<T>(g[1]);
  }
  for (; i < n; ++i) {
    const double data_term = (s[i] * scale) / divisor;
    const double reg_term = grad_coef * static_cast<double>(W[i]);
    dW[i] = static_cast<T>(data_term + reg_term);
  }
}

// Σ W[i]², in four partial sums s[i mod 4] over the whole groups of four, the rest added to s[0] in
// order, then (s[0] + s[1]) + (s[2] + s[3]): the order of src/prepare.ts sumOfSquares, so that both
// give the same bits (the two vectors hold s[0], s[1] and s[2], s[3]).
template <typename T>
double sum_of_squares(const T* W, size_t n) {
  Double2 a = {0, 0}, b = {0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const Double2 lo = {static_cast<double>(W[i]), static_cast<double>(W[i + 1])};
    const Double2 hi = {static_cast<double>(W[i + 2]), static_cast<double>(W[i + 3])};
    const Double2 lo2 = lo * lo, hi2 = hi * hi;
    a += lo2;
    b += hi2;
  }
  double s0 = a[0];
  for (; i < n; ++i) {
    const double w = static_cast<double>(W[i]);
    const double w2 = w * w;
    s0 += w2;
  }
  return (s0 + a[1]) + (b[0] + b[1]);
}

template double sum_of_squares<float>(const float*, size_t);
template double sum_of_squares<double>(const double*, size_t);

template void finalize_gradients<float>(const double*, const float*, size_t, double, double, double, float*);
template void finalize_gradients<double>(const double*, const double*, size_t, double, double, double,
                                         double*);

}  // namespace softmax_simd
