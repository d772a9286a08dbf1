// Portable kernels: plain loops any C++17 compiler and CPU handle. They are the fallback on CPUs
// without a SIMD variant and the baseline the SIMD variants are tested against.
#include <cmath>

#include "kernels.hpp"

namespace softmax_simd {
namespace {

template <typename T>
void scores_scalar(const T* X, size_t rows, WeightsView<T> w, const T* bias, T* S, const T*, size_t) {
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
void grad_update_scalar(const T* X, size_t rows, size_t D, const T* G, size_t K, T* acc, size_t ld,
                        GradLayout layout, const T*, size_t) {
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
        T* a = acc + k * ld;
        for (size_t d = 0; d < D; ++d) a[d] += gk * x[d];
      }
    }
  }
}

GradLayout grad_layout_scalar(size_t, size_t) { return GradLayout::DK; }

// Four independent chains per row, combined at the end: one chain made each row a K-long sequence
// of dependent compares or float64 adds, several cycles apiece (for K = 100 or 1000 about as much as
// the row's share of the matrix products).
template <typename T>
size_t row_max_shift(const T* S, size_t rows, size_t K, T* M, T* G) {
  for (size_t r = 0; r < rows; ++r) {
    const T* s = S + r * K;
    T m0 = s[0], m1 = s[0], m2 = s[0], m3 = s[0];
    unsigned ok = 1;  // an unsigned AND of every entry's finiteness: no branch per entry
    auto fin = [](T v) { return static_cast<unsigned>(std::isfinite(v)); };
    size_t c = 0;
    for (; c + 4 <= K; c += 4) {
      ok &= fin(s[c]) & fin(s[c + 1]) & fin(s[c + 2]) & fin(s[c + 3]);
      m0 = s[c] > m0 ? s[c] : m0;
      m1 = s[c + 1] > m1 ? s[c + 1] : m1;
      m2 = s[c + 2] > m2 ? s[c + 2] : m2;
      m3 = s[c + 3] > m3 ? s[c + 3] : m3;
    }
    for (; c < K; ++c) {
      ok &= fin(s[c]);
      m0 = s[c] > m0 ? s[c] : m0;
    }
    if (!ok) return r;
    // The maximum of finite values is exact in any order.
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    const T m = m2 > m0 ? m2 : m0;
    M[r] = m;
    T* g = G + r * K;
    for (size_t k = 0; k < K; ++k) g[k] = s[k] - m;
  }
  return rows;
}

template <typename T>
void row_sums(const T* G, size_t rows, size_t K, double* Z) {
  for (size_t r = 0; r < rows; ++r) {
    const T* v = G + r * K;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t c = 0;
    for (; c + 4 <= K; c += 4) {
      s0 += static_cast<double>(v[c]);
      s1 += static_cast<double>(v[c + 1]);
      s2 += static_cast<double>(v[c + 2]);
      s3 += static_cast<double>(v[c + 3]);
    }
    for (; c < K; ++c) s0 += static_cast<double>(v[c]);
    Z[r] = (s0 + s1) + (s2 + s3);
  }
}

template <typename T>
void scale_rows(T* G, size_t rows, size_t K, const double* inv) {
  for (size_t r = 0; r < rows; ++r) {
    T* g = G + r * K;
    const double f = inv[r];
    for (size_t c = 0; c < K; ++c) g[c] = static_cast<T>(static_cast<double>(g[c]) * f);
  }
}

template <typename T>
void add_columns(const T* G, size_t rows, size_t K, double* db) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < K; ++c) db[c] += static_cast<double>(G[r * K + c]);
}

}  // namespace

size_t row_max_shift_f32_scalar(const float* S, size_t rows, size_t K, float* M, float* G) {
  return row_max_shift(S, rows, K, M, G);
}
size_t row_max_shift_f64_scalar(const double* S, size_t rows, size_t K, double* M, double* G) {
  return row_max_shift(S, rows, K, M, G);
}
void row_sums_f32_scalar(const float* G, size_t rows, size_t K, double* Z) { row_sums(G, rows, K, Z); }
void row_sums_f64_scalar(const double* G, size_t rows, size_t K, double* Z) { row_sums(G, rows, K, Z); }
void scale_rows_f32_scalar(float* G, size_t rows, size_t K, const double* inv) { scale_rows(G, rows, K, inv); }
void scale_rows_f64_scalar(double* G, size_t rows, size_t K, const double* inv) { scale_rows(G, rows, K, inv); }
void add_columns_f32_scalar(const float* G, size_t rows, size_t K, double* db) { add_columns(G, rows, K, db); }
void add_columns_f64_scalar(const double* G, size_t rows, size_t K, double* db) { add_columns(G, rows, K, db); }

const LinearKernels<float> linear_f32_scalar = {
    "scalar", scores_scalar<float>, exp_inplace_scalar<float>, grad_update_scalar<float>,
    grad_layout_scalar, row_max_shift_f32_scalar, row_sums_f32_scalar, scale_rows_f32_scalar,
    add_columns_f32_scalar, false, nullptr};
const LinearKernels<double> linear_f64_scalar = {
    "scalar", scores_scalar<double>, exp_inplace_scalar<double>, grad_update_scalar<double>,
    grad_layout_scalar, row_max_shift_f64_scalar, row_sums_f64_scalar, scale_rows_f64_scalar,
    add_columns_f64_scalar, false, nullptr};

}  // namespace softmax_simd
