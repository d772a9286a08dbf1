// NEON (Advanced SIMD) kernels of the labelled Gram matrix (aarch64, where NEON is mandatory).
//
// Same rules as the other ISA files (kernels.hpp): internal linkage for every helper, no std::
// templates or inline library functions.
//
// Shape: dot products along D, register block of 4 rows of Xi × 4 rows of Xj = 16 vector
// accumulators (one per pair) + 4 + 1 loaded vectors, of the 32 registers. The last D % 4 (or D % 2)
// elements are a scalar float64 sum per pair (float32 products are exact in float64), never a read
// past the rows' ends.
//
// Per pair, lane l sums the products of d ≡ l (mod width) in increasing d, in the dtype; at the end
// of the chunk the lanes go to float64 (float32: lanes l and l+2 converted and added), then
// v0 + v1, then + the scalar tail. Every pair takes exactly these steps, whatever micro-tile shape
// it falls in: the contract of gram.hpp.
#include <arm_neon.h>

#include <cstddef>

#include "gram.hpp"

namespace softmax_simd {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 4;

struct F32 {
  using T = float;
  using V = float32x4_t;
  static constexpr size_t W = 4;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V load(const T* p) { return vld1q_f32(p); }
  static V fma(V acc, V a, V b) { return vfmaq_f32(acc, a, b); }
  static double lanes(V v) {
    const float64x2_t w = vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v));
    return vaddvq_f64(w);
  }
};

struct F64 {
  using T = double;
  using V = float64x2_t;
  static constexpr size_t W = 2;
  static V zero() { return vdupq_n_f64(0.0); }
  static V load(const T* p) { return vld1q_f64(p); }
  static V fma(V acc, V a, V b) { return vfmaq_f64(acc, a, b); }
  static double lanes(V v) { return vaddvq_f64(v); }
};

template <typename F, int MR, int NR>
void micro(const typename F::T* Xi, const typename F::T* Xj, size_t len, size_t ldx, double* C,
           size_t ldc, bool accumulate) {
  using V = typename F::V;
  V s[MR][NR];
#pragma GCC unroll 4
  for (int a = 0; a < MR; ++a)
#pragma GCC unroll 4
    for (int b = 0; b < NR; ++b) s[a][b] = F::zero();
  size_t d = 0;
  for (; d + F::W <= len; d += F::W) {
    V vb[NR];
#pragma GCC unroll 4
    for (int b = 0; b < NR; ++b) vb[b] = F::load(Xj + b * ldx + d);
#pragma GCC unroll 4
    for (int a = 0; a < MR; ++a) {
      const V va = F::load(Xi + a * ldx + d);
#pragma GCC unroll 4
      for (int b = 0; b < NR; ++b) s[a][b] = F::fma(s[a][b], va, vb[b]);
    }
  }
#pragma GCC unroll 4
  for (int a = 0; a < MR; ++a)
#pragma GCC unroll 4
    for (int b = 0; b < NR; ++b) {
      double t = 0;
      for (size_t e = d; e < len; ++e)
        t = __builtin_fma(double(Xi[a * ldx + e]), double(Xj[b * ldx + e]), t);
      const double r = F::lanes(s[a][b]) + t;
      double* c = C + a * ldc + b;
      *c = accumulate ? *c + r : r;
    }
}

template <typename F>
using MicroFn = void (*)(const typename F::T*, const typename F::T*, size_t, size_t, double*, size_t, bool);

template <typename F>
struct MicroTable {
  static constexpr MicroFn<F> fn[kMR][kNR] = {
      {micro<F, 1, 1>, micro<F, 1, 2>, micro<F, 1, 3>, micro<F, 1, 4>},
      {micro<F, 2, 1>, micro<F, 2, 2>, micro<F, 2, 3>, micro<F, 2, 4>},
      {micro<F, 3, 1>, micro<F, 3, 2>, micro<F, 3, 3>, micro<F, 3, 4>},
      {micro<F, 4, 1>, micro<F, 4, 2>, micro<F, 4, 3>, micro<F, 4, 4>},
  };
};

template <typename F>
void tile(const typename F::T* Xi, size_t ni, const typename F::T* Xj, size_t nj, size_t len,
          size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  for (size_t a = 0; a < ni; a += kMR) {
    const size_t mr = ni - a < kMR ? ni - a : kMR;
    const size_t b0 = upper ? a / kNR * kNR : 0;  // skip micro-tiles wholly below the diagonal
    const typename F::T* xa = Xi + a * ldx;
    double* ca = C + a * ldc;
    size_t b = b0;
    for (; b + kNR <= nj; b += kNR) {
      if (mr == kMR)
        micro<F, kMR, kNR>(xa, Xj + b * ldx, len, ldx, ca + b, ldc, accumulate);
      else
        MicroTable<F>::fn[mr - 1][kNR - 1](xa, Xj + b * ldx, len, ldx, ca + b, ldc, accumulate);
    }
    if (b < nj) MicroTable<F>::fn[mr - 1][nj - b - 1](xa, Xj + b * ldx, len, ldx, ca + b, ldc, accumulate);
  }
}

void gram_tile_f32_neon(const float* Xi, size_t ni, const float* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  tile<F32>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

void gram_tile_f64_neon(const double* Xi, size_t ni, const double* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  tile<F64>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

}  // namespace

const GramKernels<float> gram_f32_neon = {"neon", gram_tile_f32_neon, gram_scale_f32_scalar,
                                          gram_mirror_f32_scalar};
const GramKernels<double> gram_f64_neon = {"neon", gram_tile_f64_neon, gram_scale_f64_scalar,
                                           gram_mirror_f64_scalar};

}  // namespace softmax_simd
