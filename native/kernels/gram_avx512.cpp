// AVX-512 kernels of the labelled Gram matrix (x86-64 with AVX-512 F, DQ, BW and VL). This file
// alone is compiled with those flags; dispatch calls it only on CPUs (and OSes) that have them.
//
// Rules for this translation unit (see kernels.hpp): every helper has internal linkage (anonymous
// namespace), and nothing here uses std:: templates or inline library functions.
//
// The tile kernel of gram_avx2.cpp at twice the width: dot products along D, register block of 6
// rows of Xi × 4 rows of Xj = 24 vector accumulators; the last D % 16 (or D % 8) elements through
// masked loads, which never touch memory past the rows' ends. Per pair, lane l sums the products of
// d ≡ l (mod width) in increasing d, in the dtype; at the end of the chunk the lanes go to float64
// (float32: lanes l and l+8 converted and added), are folded to four (lanes l and l+4 added), then
// ((v0 + v1) + (v2 + v3)). Every pair takes exactly these steps, whatever micro-tile shape it falls
// in: the contract of gram.hpp. Scale and mirror are the AVX2 ones (every AVX-512 CPU has AVX2).
// GCC 12's AVX-512 headers build some results from _mm512_undefined_*(), which -Wuninitialized then
// reports inside the header (GCC bug 105593, fixed in GCC 13); nothing here is uninitialized.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "gram.hpp"

namespace softmax_simd {
namespace {

// 6 rows of Xi × 4 rows of Xj = 24 accumulators (of AVX-512's 32 registers), 10 loads per 24 FMAs:
// the 4×3 block of the AVX2 kernel streamed its Xj rows from L2 too fast for 512-bit steps.
constexpr int kMR = 6;
constexpr int kNR = 4;

struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr size_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V loadm(const T* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static M mask(size_t n) { return static_cast<M>(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
  // The 16 float lanes as 4 doubles: lanes l and l+8 converted (exactly) and added, then those
  // lanes l and l+4 added.
  static __m256d widen(V v) {
    const __m512d w = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                    _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
    return _mm256_add_pd(_mm512_castpd512_pd256(w), _mm512_extractf64x4_pd(w, 1));
  }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr size_t W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V loadm(const T* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static M mask(size_t n) { return static_cast<M>(n >= 8 ? 0xFFu : (1u << n) - 1u); }
  // Lanes l and l+4 added.
  static __m256d widen(V v) { return _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)); }
};

// r[k] = (v_k[0] + v_k[1]) + (v_k[2] + v_k[3]) for k < 4.
inline __m256d reduce4(__m256d v0, __m256d v1, __m256d v2, __m256d v3) {
  const __m256d h01 = _mm256_hadd_pd(v0, v1);  // v0[0]+v0[1], v1[0]+v1[1], v0[2]+v0[3], v1[2]+v1[3]
  const __m256d h23 = _mm256_hadd_pd(v2, v3);
  return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
}

template <typename F, int MR, int NR>
void micro(const typename F::T* Xi, const typename F::T* Xj, size_t len, size_t ldx, double* C,
           size_t ldc, bool accumulate) {
  using V = typename F::V;
  V s[MR][NR];
#pragma GCC unroll 8
  for (int a = 0; a < MR; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) s[a][b] = F::zero();
  size_t d = 0;
  for (; d + F::W <= len; d += F::W) {
    V vb[NR];
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) vb[b] = F::load(Xj + b * ldx + d);
#pragma GCC unroll 8
    for (int a = 0; a < MR; ++a) {
      const V va = F::load(Xi + a * ldx + d);
#pragma GCC unroll 8
      for (int b = 0; b < NR; ++b) s[a][b] = F::fma(va, vb[b], s[a][b]);
    }
  }
  if (d < len) {
    const typename F::M m = F::mask(len - d);
    V vb[NR];
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) vb[b] = F::loadm(Xj + b * ldx + d, m);
#pragma GCC unroll 8
    for (int a = 0; a < MR; ++a) {
      const V va = F::loadm(Xi + a * ldx + d, m);
#pragma GCC unroll 8
      for (int b = 0; b < NR; ++b) s[a][b] = F::fma(va, vb[b], s[a][b]);
    }
  }
  // Reduce the pairs four at a time (padding with zeros); pair k = a * NR + b.
  constexpr int P = MR * NR;
  constexpr int G = (P + 3) / 4;
  alignas(32) double r[G * 4];
  __m256d w[G * 4];
#pragma GCC unroll 24
  for (int k = 0; k < G * 4; ++k) w[k] = k < P ? F::widen(s[k / NR][k % NR]) : _mm256_setzero_pd();
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) _mm256_store_pd(r + 4 * g, reduce4(w[4 * g], w[4 * g + 1], w[4 * g + 2], w[4 * g + 3]));
#pragma GCC unroll 8
  for (int a = 0; a < MR; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) {
      double* c = C + a * ldc + b;
      *c = accumulate ? *c + r[a * NR + b] : r[a * NR + b];
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
      {micro<F, 5, 1>, micro<F, 5, 2>, micro<F, 5, 3>, micro<F, 5, 4>},
      {micro<F, 6, 1>, micro<F, 6, 2>, micro<F, 6, 3>, micro<F, 6, 4>},
  };
};

template <typename F>
void tile(const typename F::T* Xi, size_t ni, const typename F::T* Xj, size_t nj, size_t len,
          size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  for (size_t a = 0; a < ni; a += kMR) {
    const size_t mr = ni - a < kMR ? ni - a : kMR;
    // With upper, micro-tiles wholly below the diagonal (every b < a) are skipped.
    const size_t b0 = upper ? a / kNR * kNR : 0;
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

void gram_tile_f32_avx512(const float* Xi, size_t ni, const float* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  tile<F32>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

void gram_tile_f64_avx512(const double* Xi, size_t ni, const double* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  tile<F64>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

}  // namespace

const GramKernels<float> gram_f32_avx512 = {"avx512", gram_tile_f32_avx512, gram_scale_f32_avx2,
                                            gram_mirror_f32_avx2};
const GramKernels<double> gram_f64_avx512 = {"avx512", gram_tile_f64_avx512, gram_scale_f64_avx2,
                                             gram_mirror_f64_avx2};

}  // namespace softmax_simd
