// Portable kernels: plain loops any C++17 compiler and CPU handle. They are the fallback on CPUs
// without a SIMD variant and the baseline the SIMD variants are tested against.
#include <cmath>

#include "kernels.hpp"

namespace softmax_simd {
namespace {

template <typename T>
void scores_scalar(const T* X, size_t rows, WeightsView<T> w, const T* bias, T* S) {
  const size_t D = w.D, K = w.K;
  for (size_t r = 0; r < rows; ++r) {
    const T* x = X + r * D;
    T* s = S + r * K;
    for (size_t k = 0; k < K; ++k) s[k] = bias ? bias[k] : T(0);
    // Row of X times W walks W row by row, so the inner loop is contiguous in both W and S.
    for (size_t d = 0; d < D; ++d) {
      const T xd = x[d];
      const T* wrow = w.W + d * K;
      for (size_t k = 0; k < K; ++k) s[k] += xd * wrow[k];
    }
  }
}

template <typename T>
void exp_inplace_scalar(T* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}

template <typename T>
void grad_update_scalar(const T* X, size_t rows, size_t D, const T* G, size_t K, T* acc,
                        GradLayout layout) {
  for (size_t r = 0; r < rows; ++r) {
    const T* x = X + r * D;
    const T* g = G + r * K;
    if (layout == GradLayout::DK) {
      for (size_t d = 0; d < D; ++d) {
        const T xd = x[d];
        T* a = acc + d * K;
        for (size_t k = 0; k < K; ++k) a[k] += xd * g[k];
      }
    } else {
      for (size_t k = 0; k < K; ++k) {
        const T gk = g[k];
        T* a = acc + k * D;
        for (size_t d = 0; d < D; ++d) a[d] += gk * x[d];
      }
    }
  }
}

GradLayout grad_layout_scalar(size_t, size_t) { return GradLayout::DK; }

}  // namespace

const LinearKernels<float> linear_f32_scalar = {
    "scalar", scores_scalar<float>, exp_inplace_scalar<float>, grad_update_scalar<float>,
    grad_layout_scalar};
const LinearKernels<double> linear_f64_scalar = {
    "scalar", scores_scalar<double>, exp_inplace_scalar<double>, grad_update_scalar<double>,
    grad_layout_scalar};

}  // namespace softmax_simd
