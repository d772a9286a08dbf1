// AVX-512 kernels of the labelled Gram matrix (x86-64 with AVX-512 F, DQ, BW and VL). This file
// alone is compiled with those flags; dispatch calls it only on CPUs (and OSes) that have them.
//
// Rules for this translation unit (see kernels.hpp): every helper has internal linkage (anonymous
// namespace), and nothing here uses std:: templates or inline library functions.
//
// The tile kernel is the dot form of gram_simd.inl over the traits below (the AVX2 file's former
// tile at twice the width):
// register block of 6 rows of Xi × 4 rows of Xj (DotShape); float32 lanes l and l+8 are widened and
// added, then folded to four (lanes l and l+4 added). Scale and mirror are the AVX2 ones (every AVX-512 CPU has
// AVX2).
//
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
// a 4×3 block (the former AVX2 dot form's) streamed its Xj rows from L2 too fast for 512-bit steps.
struct DotShape {
  static constexpr int kMR = 6;
  static constexpr int kNR = 4;
};

struct F32 : DotShape {
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

struct F64 : DotShape {
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

#include "gram_simd.inl"

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
