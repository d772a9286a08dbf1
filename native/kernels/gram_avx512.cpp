// AVX-512 kernels of the labelled Gram matrix (x86-64 with AVX-512 F, DQ, BW and VL). This file
// alone is compiled with those flags; dispatch calls it only on CPUs (and OSes) that have them.
//
// Rules for this translation unit (see kernels.hpp): every helper has internal linkage (anonymous
// namespace), and nothing here uses std:: templates or inline library functions.
//
// The tile kernel is the outer-product form of gram_simd.inl (op_tile) over the traits below, as in
// gram_avx2.cpp at twice the width: 12 rows of Xi broadcast against 2 vectors of a packed,
// transposed panel of Xj (32 float32 / 16 float64 rows) = 24 accumulators of the 32 registers, 14
// loads per 24 FMAs, all from L1 (a 256-long slice of the panel is 32 KiB). The dot form it
// replaced (6 × 4 pairs of vector accumulators; in git before this change) ended
// every chunk of every pair in a horizontal sum. Scale and mirror are the AVX2 ones (every AVX-512
// CPU has AVX2).
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

struct OpShape {
  static constexpr int kVectors = 2;
  static constexpr int kRows = 12;
  static constexpr size_t kSlice = kGramChainOp;
};

// Columns c of the 16 rows r[0..16) (c < 16) as rows: out[c][k] = r[k][c]. In three steps of
// shuffles: pairs of rows interleaved, then 4 × 4 blocks within each 128-bit lane, then the lanes.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
  }
  // u[4k + m], 128-bit lane j: column 4j + m of rows 4k .. 4k + 3.
#pragma GCC unroll 4
  for (int k = 0; k < 16; k += 4) {
    u[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
    u[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xEE);
    u[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    u[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
  }
  // Column 4j + m = lane j of u[m], u[4 + m], u[8 + m], u[12 + m].
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {
    const __m512 p = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x44), q = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xEE);
    const __m512 p2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x44);
    const __m512 q2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xEE);
    r[m] = _mm512_shuffle_f32x4(p, p2, 0x88);
    r[4 + m] = _mm512_shuffle_f32x4(p, p2, 0xDD);
    r[8 + m] = _mm512_shuffle_f32x4(q, q2, 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(q, q2, 0xDD);
  }
}

// The same for 8 rows of 8 doubles.
inline void transpose8(__m512d r[8]) {
  __m512d t[8];
#pragma GCC unroll 4
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm512_unpacklo_pd(r[k], r[k + 1]);  // lane j: column 2j of rows k, k + 1
    t[k + 1] = _mm512_unpackhi_pd(r[k], r[k + 1]);  // lane j: column 2j + 1
  }
#pragma GCC unroll 2
  for (int m = 0; m < 2; ++m) {
    const __m512d p = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x44), q = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xEE);
    const __m512d p2 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x44);
    const __m512d q2 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xEE);
    r[m] = _mm512_shuffle_f64x2(p, p2, 0x88);
    r[2 + m] = _mm512_shuffle_f64x2(p, p2, 0xDD);
    r[4 + m] = _mm512_shuffle_f64x2(q, q2, 0x88);
    r[6 + m] = _mm512_shuffle_f64x2(q, q2, 0xDD);
  }
}

inline __mmask8 mask8(size_t n) { return static_cast<__mmask8>(n >= 8 ? 0xFFu : (1u << n) - 1u); }
inline __mmask16 mask16(size_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }

// c[0..n) = (or +=) the first n of 8 doubles; nothing past them touched.
inline void flush8(double* c, __m512d v, size_t n, bool first) {
  if (n == 8) {
    _mm512_storeu_pd(c, first ? v : _mm512_add_pd(_mm512_loadu_pd(c), v));
    return;
  }
  const __mmask8 m = mask8(n);
  _mm512_mask_storeu_pd(c, m, first ? v : _mm512_add_pd(_mm512_maskz_loadu_pd(m, c), v));
}

struct OpF32 : OpShape {
  using T = float;
  using V = __m512;
  static constexpr size_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static V loadm(const T* p, size_t n) { return _mm512_maskz_loadu_ps(mask16(n), p); }
  static V load(const T* p) { return _mm512_load_ps(p); }
  static void store(T* p, V v) { _mm512_store_ps(p, v); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  // Lanes [0, 8) and [8, 16) widened exactly; a half with no columns is not touched at all (c + 8
  // may lie past C's end).
  static void flush(double* c, V v, size_t n, bool first) {
    flush8(c, _mm512_cvtps_pd(_mm512_castps512_ps256(v)), n < 8 ? n : 8, first);
    if (n > 8) flush8(c + 8, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), n - 8, first);
  }
  static void transpose(V r[16]) { transpose16(r); }
};

struct OpF64 : OpShape {
  using T = double;
  using V = __m512d;
  static constexpr size_t W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static V loadm(const T* p, size_t n) { return _mm512_maskz_loadu_pd(mask8(n), p); }
  static V load(const T* p) { return _mm512_load_pd(p); }
  static void store(T* p, V v) { _mm512_store_pd(p, v); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static void flush(double* c, V v, size_t n, bool first) { flush8(c, v, n, first); }
  static void transpose(V r[8]) { transpose8(r); }
};

#include "gram_simd.inl"

void gram_tile_f32_avx512(const float* Xi, size_t ni, const float* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  op_tile<OpF32>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

void gram_tile_f64_avx512(const double* Xi, size_t ni, const double* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  op_tile<OpF64>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

}  // namespace

const GramKernels<float> gram_f32_avx512 = {"avx512", gram_tile_f32_avx512, gram_scale_f32_avx2,
                                            gram_mirror_f32_avx2};
const GramKernels<double> gram_f64_avx512 = {"avx512", gram_tile_f64_avx512, gram_scale_f64_avx2,
                                             gram_mirror_f64_avx2};

}  // namespace softmax_simd
