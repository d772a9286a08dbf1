// AVX-512 kernels of the linear classifier (x86-64 with AVX-512 F, DQ, BW and VL: Intel Skylake-SP
// and later, AMD Zen 4 and later). This file alone is compiled with those flags; dispatch calls it
// only on CPUs (and OSes) that have them.
//
// The same kernels as linear_avx2.cpp, written over the same vector traits, at twice the width:
// 16 float / 8 double lanes. Tails use AVX-512's mask registers: masked loads and stores never touch
// the masked-out elements, so no kernel reads or writes past the end of X, W, Wt, G, S, bias or acc.
// Rules for this translation unit as for every ISA file (see kernels.hpp): internal linkage only,
// no std:: templates or inline library functions.
//
// Shapes: as in linear_avx2.cpp (dot form with the packed transpose Wt for K < kWideK, 4 rows × 3
// classes; gradient layouts KD and DK), except the wide-K GEMM forms: 6 rows (or d's) × 4 vectors of
// classes, 24 of the 32 registers, the rest of K in one masked tile. Also the per-row softmax steps
// (row_max_shift, row_sums, scale_rows, add_columns), vectorized along each row.
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

#include "kernels.hpp"

namespace softmax_simd {
namespace {

// From this many classes on, the GEMM forms (classes along the vector) win over the dot forms.
constexpr size_t kWideK = 32;

// Vector traits: the kernels below are written once over these.
struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr size_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V loadm(const T* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void storem(T* p, M m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V bcast(const T* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  // Lanes [0, n) on, n in [0, 16].
  static M mask(size_t n) { return static_cast<M>(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
  static T hsum(V v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr size_t W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V loadm(const T* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void storem(T* p, M m, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static V bcast(const T* p) { return _mm512_set1_pd(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  // Lanes [0, n) on, n in [0, 8].
  static M mask(size_t n) { return static_cast<M>(n >= 8 ? 0xFFu : (1u << n) - 1u); }
  static T hsum(V v) {
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
};

// ------------------------------------------------------------------------------------------------
// exp: the algorithm of linear_avx2.cpp exp8 / exp4, operation for operation (the same IEEE
// operations per lane give the same bits), at 16 / 8 lanes; see there for the derivation. The
// measured error is the AVX2 one (test/native/kernel_test.cpp measures every ISA it can run):
//   float 0.5164 ULP over every float in [−104, 0]; double 0.5176 ULP (2·10^7 samples).
// x < ln(2^-150) (float) / ln(2^-1075) (double) and −inf → exactly +0; NaN → NaN; 0 → exactly 1.
// ------------------------------------------------------------------------------------------------

inline __m512 exp16(__m512 x) {
  const __m512 magic = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);     // NaN in x is returned as is (second operand)
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  const __m512 tn = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
  const __m512 n = _mm512_sub_ps(tn, magic);
  const __m512 r1 = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147182464599609375f), x);
  const __m512 c = _mm512_mul_ps(n, _mm512_set1_ps(1.904654323148236017e-09f));
  __m512 q = _mm512_set1_ps(1.0f / 40320.0f);
  q = _mm512_fmadd_ps(q, r1, _mm512_set1_ps(1.0f / 5040.0f));
  q = _mm512_fmadd_ps(q, r1, _mm512_set1_ps(1.0f / 720.0f));
  q = _mm512_fmadd_ps(q, r1, _mm512_set1_ps(1.0f / 120.0f));
  q = _mm512_fmadd_ps(q, r1, _mm512_set1_ps(1.0f / 24.0f));
  q = _mm512_fmadd_ps(q, r1, _mm512_set1_ps(1.0f / 6.0f));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 r2 = _mm512_mul_ps(r1, r1);
  const __m512 r2e = _mm512_fmsub_ps(r1, r1, r2);
  const __m512 th = _mm512_mul_ps(half, r2);
  const __m512 tl = _mm512_fmadd_ps(r2, _mm512_mul_ps(r1, q), _mm512_mul_ps(half, r2e));
  const __m512 s = _mm512_add_ps(one, r1);
  const __m512 e = _mm512_add_ps(_mm512_sub_ps(one, s), r1);
  const __m512 u = _mm512_add_ps(s, th);
  const __m512 ue = _mm512_add_ps(_mm512_sub_ps(s, u), th);
  const __m512 approx = _mm512_add_ps(u, tl);
  const __m512 lo = _mm512_fmadd_ps(c, approx, _mm512_add_ps(_mm512_add_ps(e, ue), tl));
  const __m512 p = _mm512_add_ps(u, lo);
  const __m512 n1 = _mm512_roundscale_ps(_mm512_mul_ps(n, _mm512_set1_ps(0.5f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 n2 = _mm512_sub_ps(n, n1);
  const __m512 bias = _mm512_set1_ps(12582912.0f + 127.0f);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(_mm512_add_ps(n1, bias)), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(_mm512_add_ps(n2, bias)), 23));
  const __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
  const __m512 sd = _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_castps_si512(_mm512_add_ps(n, _mm512_set1_ps(12582912.0f + 253.0f))), 23));
  const __m512 yh = _mm512_mul_ps(u, sd);
  const __m512 h = _mm512_add_ps(one, yh);
  const __m512 l = _mm512_add_ps(_mm512_sub_ps(one, h), yh);
  const __m512 z = _mm512_add_ps(h, _mm512_fmadd_ps(lo, sd, l));
  const __m512 ys = _mm512_mul_ps(_mm512_sub_ps(z, one), _mm512_set1_ps(1.17549435082228751e-38f));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, _mm512_set1_ps(1.17549435082228751e-38f), _CMP_LT_OQ), y, ys);
}

inline __m512d exp8d(__m512d x) {
  const __m512d magic = _mm512_set1_pd(6755399441055744.0);  // 1.5 * 2^52
  x = _mm512_max_pd(_mm512_set1_pd(-746.0), x);              // NaN in x is returned as is
  x = _mm512_min_pd(_mm512_set1_pd(710.0), x);
  const __m512d tn = _mm512_fmadd_pd(x, _mm512_set1_pd(1.4426950408889634074), magic);
  const __m512d n = _mm512_sub_pd(tn, magic);
  const __m512d r1 = _mm512_fnmadd_pd(n, _mm512_set1_pd(0.6931471805599452862), x);
  const __m512d c = _mm512_mul_pd(n, _mm512_set1_pd(-2.319046813846299558e-17));
  __m512d q = _mm512_set1_pd(1.0 / 87178291200.0);
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 6227020800.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 479001600.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 39916800.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 3628800.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 362880.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 40320.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 5040.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 720.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 120.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 24.0));
  q = _mm512_fmadd_pd(q, r1, _mm512_set1_pd(1.0 / 6.0));
  const __m512d one = _mm512_set1_pd(1.0);
  const __m512d half = _mm512_set1_pd(0.5);
  const __m512d r2 = _mm512_mul_pd(r1, r1);
  const __m512d r2e = _mm512_fmsub_pd(r1, r1, r2);
  const __m512d th = _mm512_mul_pd(half, r2);
  const __m512d tl = _mm512_fmadd_pd(r2, _mm512_mul_pd(r1, q), _mm512_mul_pd(half, r2e));
  const __m512d s = _mm512_add_pd(one, r1);
  const __m512d e = _mm512_add_pd(_mm512_sub_pd(one, s), r1);
  const __m512d u = _mm512_add_pd(s, th);
  const __m512d ue = _mm512_add_pd(_mm512_sub_pd(s, u), th);
  const __m512d approx = _mm512_add_pd(u, tl);
  const __m512d lo = _mm512_fmadd_pd(c, approx, _mm512_add_pd(_mm512_add_pd(e, ue), tl));
  const __m512d p = _mm512_add_pd(u, lo);
  const __m512d n1 = _mm512_roundscale_pd(_mm512_mul_pd(n, _mm512_set1_pd(0.5)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512d n2 = _mm512_sub_pd(n, n1);
  const __m512d bias = _mm512_set1_pd(6755399441055744.0 + 1023.0);
  const __m512d s1 = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(_mm512_add_pd(n1, bias)), 52));
  const __m512d s2 = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(_mm512_add_pd(n2, bias)), 52));
  const __m512d y = _mm512_mul_pd(_mm512_mul_pd(p, s1), s2);
  const __m512d sd = _mm512_castsi512_pd(
      _mm512_slli_epi64(_mm512_castpd_si512(_mm512_add_pd(n, _mm512_set1_pd(6755399441055744.0 + 2045.0))), 52));
  const __m512d yh = _mm512_mul_pd(u, sd);
  const __m512d h = _mm512_add_pd(one, yh);
  const __m512d l = _mm512_add_pd(_mm512_sub_pd(one, h), yh);
  const __m512d z = _mm512_add_pd(h, _mm512_fmadd_pd(lo, sd, l));
  const __m512d ys = _mm512_mul_pd(_mm512_sub_pd(z, one), _mm512_set1_pd(2.2250738585072014e-308));
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(y, _mm512_set1_pd(2.2250738585072014e-308), _CMP_LT_OQ), y, ys);
}

void exp_f32_avx512(float* v, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(v + i, exp16(_mm512_loadu_ps(v + i)));
  if (i < n) {
    const __mmask16 m = F32::mask(n - i);
    _mm512_mask_storeu_ps(v + i, m, exp16(_mm512_maskz_loadu_ps(m, v + i)));
  }
}

void exp_f64_avx512(double* v, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(v + i, exp8d(_mm512_loadu_pd(v + i)));
  if (i < n) {
    const __mmask8 m = F64::mask(n - i);
    _mm512_mask_storeu_pd(v + i, m, exp8d(_mm512_maskz_loadu_pd(m, v + i)));
  }
}

// ------------------------------------------------------------------------------------------------
// scores, small K: S[r][k] = b[k] + x_r · Wt_k, R rows × C classes of vector accumulators along D.
// ------------------------------------------------------------------------------------------------

// PF: prefetch the rows at `pf` (R rows of stride D, inside the caller's block) while this tile
// streams its own rows: the first class group of a row group pulls X from memory, and the next row
// group's lines arrive while this one computes.
template <class A, int R, int C, bool PF>
void dot_tile(const typename A::T* X, size_t D, const typename A::T* Wt, size_t k0,
              const typename A::T* bias, typename A::T* S, size_t K, const typename A::T* pf) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V acc[R][C];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) acc[i][j] = A::zero();
  const T* x[R];
  const T* w[C];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) x[i] = X + i * D;
#pragma GCC unroll 8
  for (int j = 0; j < C; ++j) w[j] = Wt + (k0 + j) * D;
  size_t d = 0;
  for (; d + W <= D; d += W) {
    V xv[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) xv[i] = A::load(x[i] + d);
    if (PF) {
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(pf + i * D + d), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      const V wv = A::load(w[j] + d);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i][j] = A::fma(xv[i], wv, acc[i][j]);
    }
  }
  if (d < D) {
    const typename A::M m = A::mask(D - d);
    V xv[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) xv[i] = A::loadm(x[i] + d, m);
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      const V wv = A::loadm(w[j] + d, m);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i][j] = A::fma(xv[i], wv, acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j)
      S[i * K + k0 + j] = (bias ? bias[k0 + j] : T(0)) + A::hsum(acc[i][j]);
}

// Register block of the dot form: kDotR rows × kDotC classes of vector accumulators.
#ifndef SOFTMAX_SIMD_DOT_R
#define SOFTMAX_SIMD_DOT_R 4
#endif
#ifndef SOFTMAX_SIMD_DOT_C
#define SOFTMAX_SIMD_DOT_C 3
#endif
constexpr int kDotR = SOFTMAX_SIMD_DOT_R;
constexpr int kDotC = SOFTMAX_SIMD_DOT_C;

template <class A, int R, int C>
void dot_classes_tail(const typename A::T* X, size_t D, const typename A::T* Wt, size_t k0, size_t n,
                      const typename A::T* bias, typename A::T* S, size_t K, const typename A::T* pf) {
  if constexpr (C > 0) {
    if (n == static_cast<size_t>(C))
      dot_tile<A, R, C, false>(X, D, Wt, k0, bias, S, K, pf);
    else
      dot_classes_tail<A, R, C - 1>(X, D, Wt, k0, n, bias, S, K, pf);
  }
}

template <class A, int R>
void dot_rows(const typename A::T* X, size_t D, const typename A::T* Wt, size_t K,
              const typename A::T* bias, typename A::T* S, const typename A::T* pf) {
  constexpr size_t C = kDotC;
  size_t k0 = 0;
  if (K >= C) {
    dot_tile<A, R, kDotC, true>(X, D, Wt, 0, bias, S, K, pf);
    k0 = C;
  }
  for (; k0 + C <= K; k0 += C) dot_tile<A, R, kDotC, false>(X, D, Wt, k0, bias, S, K, pf);
  if (k0 < K) dot_classes_tail<A, R, kDotC - 1>(X, D, Wt, k0, K - k0, bias, S, K, pf);
}

template <class A, int R>
void dot_rows_tail(const typename A::T* X, size_t D, const typename A::T* Wt, size_t K, size_t n,
                   const typename A::T* bias, typename A::T* S) {
  if constexpr (R > 0) {
    if (n == static_cast<size_t>(R))
      dot_rows<A, R>(X, D, Wt, K, bias, S, X);
    else
      dot_rows_tail<A, R - 1>(X, D, Wt, K, n, bias, S);
  }
}

// ------------------------------------------------------------------------------------------------
// scores, large K: tile of R rows × NV vectors of classes; the last vector masked when MASK.
// ------------------------------------------------------------------------------------------------

template <class A, int R, int NV, bool MASK>
void gemm_tile(const typename A::T* X, size_t D, const typename A::T* Wm, size_t K, size_t k0,
               const typename A::T* bias, typename A::T* S, typename A::M mlast) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V acc[R][NV];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = A::zero();
  const T* wp = Wm + k0;
  for (size_t d = 0; d < D; ++d, wp += K) {
    V wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      wv[v] = (MASK && v == NV - 1) ? A::loadm(wp + v * W, mlast) : A::load(wp + v * W);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const V xb = A::bcast(X + i * D + d);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = A::fma(xb, wv[v], acc[i][v]);
    }
  }
  V bv[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    if (!bias)
      bv[v] = A::zero();
    else
      bv[v] = (MASK && v == NV - 1) ? A::loadm(bias + k0 + v * W, mlast) : A::load(bias + k0 + v * W);
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* out = S + i * K + k0 + v * W;
      const V s = A::add(acc[i][v], bv[v]);
      if (MASK && v == NV - 1)
        A::storem(out, mlast, s);
      else
        A::store(out, s);
    }
}

template <class A, int NV, bool MASK>
void gemm_cols(const typename A::T* X, size_t rows, size_t D, const typename A::T* Wm, size_t K,
               size_t k0, const typename A::T* bias, typename A::T* S, typename A::M mlast) {
  constexpr size_t R = 6;
  size_t r = 0;
  for (; r + R <= rows; r += R) gemm_tile<A, 6, NV, MASK>(X + r * D, D, Wm, K, k0, bias, S + r * K, mlast);
  const auto* Xr = X + r * D;
  auto* Sr = S + r * K;
  switch (rows - r) {
    case 5: gemm_tile<A, 5, NV, MASK>(Xr, D, Wm, K, k0, bias, Sr, mlast); break;
    case 4: gemm_tile<A, 4, NV, MASK>(Xr, D, Wm, K, k0, bias, Sr, mlast); break;
    case 3: gemm_tile<A, 3, NV, MASK>(Xr, D, Wm, K, k0, bias, Sr, mlast); break;
    case 2: gemm_tile<A, 2, NV, MASK>(Xr, D, Wm, K, k0, bias, Sr, mlast); break;
    case 1: gemm_tile<A, 1, NV, MASK>(Xr, D, Wm, K, k0, bias, Sr, mlast); break;
    default: break;
  }
}

template <class A>
void scores_avx512(const typename A::T* X, size_t rows, WeightsView<typename A::T> w,
                 const typename A::T* bias, typename A::T* S) {
  const size_t D = w.D, K = w.K;
  constexpr size_t W = A::W;
  if (rows == 0 || K == 0) return;
  if (K < kWideK) {
    // Prefetch the next row group (never past the block: the last group prefetches itself).
    constexpr size_t R = kDotR;
    size_t r = 0;
    for (; r + R <= rows; r += R) {
      const typename A::T* next = X + (r + 2 * R <= rows ? r + R : r) * D;
      dot_rows<A, kDotR>(X + r * D, D, w.Wt, K, bias, S + r * K, next);
    }
    if (r < rows) dot_rows_tail<A, kDotR - 1>(X + r * D, D, w.Wt, K, rows - r, bias, S + r * K);
    return;
  }
  // Class tiles outer: the tile's D×(2W) slice of W stays in L1/L2 across the row tiles.
  const typename A::M full = A::mask(W);
  size_t k0 = 0;
  // 6 rows × 4 vectors of classes = 24 accumulators (of 32 registers); the rest of K in one tile of
  // 1 to 4 vectors, the last masked. (A separate 1-vector tile for a few leftover classes cost as
  // much as 20 full classes: 6 accumulators cannot hide the FMA latency.)
  for (; k0 + 4 * W <= K; k0 += 4 * W) gemm_cols<A, 4, false>(X, rows, D, w.W, K, k0, bias, S, full);
  const size_t rem = K - k0;
  const typename A::M last = A::mask(rem % W == 0 ? W : rem % W);
  switch ((rem + W - 1) / W) {
    case 4: gemm_cols<A, 4, true>(X, rows, D, w.W, K, k0, bias, S, last); break;
    case 3: gemm_cols<A, 3, true>(X, rows, D, w.W, K, k0, bias, S, last); break;
    case 2: gemm_cols<A, 2, true>(X, rows, D, w.W, K, k0, bias, S, last); break;
    case 1: gemm_cols<A, 1, true>(X, rows, D, w.W, K, k0, bias, S, last); break;
    default: break;
  }
}

// ------------------------------------------------------------------------------------------------
// grad_update, layout KD: acc[k][d] += sum_r G[r][k] X[r][d]; tile C classes × NV vectors along D.
// ------------------------------------------------------------------------------------------------

// Xd points at column d0 of the block's first row, rows ldx apart; accd at column d0 of class 0's
// accumulator row, classes D apart.
template <class A, int C, int NV, bool MASK>
void gkd_tile(const typename A::T* Xd, size_t ldx, size_t rows, size_t D, const typename A::T* G,
              size_t K, size_t k0, typename A::T* accd, typename A::M mlast) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V a[C][NV];
#pragma GCC unroll 8
  for (int j = 0; j < C; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const T* p = accd + (k0 + j) * D + v * W;
      a[j][v] = (MASK && v == NV - 1) ? A::loadm(p, mlast) : A::load(p);
    }
  const T* xp = Xd;
  const T* gp = G + k0;
  for (size_t r = 0; r < rows; ++r, xp += ldx, gp += K) {
    V xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      xv[v] = (MASK && v == NV - 1) ? A::loadm(xp + v * W, mlast) : A::load(xp + v * W);
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      const V g = A::bcast(gp + j);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) a[j][v] = A::fma(g, xv[v], a[j][v]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < C; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* p = accd + (k0 + j) * D + v * W;
      if (MASK && v == NV - 1)
        A::storem(p, mlast, a[j][v]);
      else
        A::store(p, a[j][v]);
    }
}

template <class A, int NV, bool MASK>
void gkd_classes(const typename A::T* Xd, size_t ldx, size_t rows, size_t D, const typename A::T* G,
                 size_t K, typename A::T* accd, typename A::M mlast) {
  constexpr size_t C = 5;
  size_t k0 = 0;
  for (; k0 + C <= K; k0 += C) gkd_tile<A, 5, NV, MASK>(Xd, ldx, rows, D, G, K, k0, accd, mlast);
  switch (K - k0) {
    case 4: gkd_tile<A, 4, NV, MASK>(Xd, ldx, rows, D, G, K, k0, accd, mlast); break;
    case 3: gkd_tile<A, 3, NV, MASK>(Xd, ldx, rows, D, G, K, k0, accd, mlast); break;
    case 2: gkd_tile<A, 2, NV, MASK>(Xd, ldx, rows, D, G, K, k0, accd, mlast); break;
    case 1: gkd_tile<A, 1, NV, MASK>(Xd, ldx, rows, D, G, K, k0, accd, mlast); break;
    default: break;
  }
}

// Rows of X whose stride is a multiple of 4 KiB (cifar: D = 3072 floats) put the same column of
// every row in the same L1 set; the tiles below walk rows at a fixed column, so beyond the L1's 8
// ways each row's line is evicted before the next class group (or the next vector) reuses it. Such
// blocks are first copied, a chunk of columns at a time, into a small tile-major buffer (each
// tile's rows 2W apart, contiguous), which the tiles then read from L1.
template <class A>
bool kd_needs_pack(size_t D, size_t rows) {
  const size_t stride = D * sizeof(typename A::T);
  size_t g = 4096;
  while (g > 64 && stride % g != 0) g >>= 1;  // largest power of two (64..4096) dividing the stride
  const size_t distinct = 4096 / g;           // distinct L1 sets the rows' same column falls in
  return rows > 4 * distinct;
}

constexpr size_t kPackBytes = 16 * 1024;

template <class A>
void grad_kd_packed(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
                    typename A::T* acc) {
  using T = typename A::T;
  constexpr size_t W = A::W;
  constexpr size_t TW = 2 * W;
  constexpr size_t kElems = kPackBytes / sizeof(T);
  alignas(64) T pack[kElems];
  const typename A::M full = A::mask(W);
  const size_t full_tiles = D / TW;
  size_t tiles_per_chunk = kElems / (rows * TW);
  if (tiles_per_chunk == 0) tiles_per_chunk = 1;
  for (size_t t0 = 0; t0 < full_tiles; t0 += tiles_per_chunk) {
    const size_t nt = full_tiles - t0 < tiles_per_chunk ? full_tiles - t0 : tiles_per_chunk;
    if (rows * TW * nt <= kElems) {
      for (size_t r = 0; r < rows; ++r) {
        const T* xr = X + r * D + t0 * TW;
        for (size_t t = 0; t < nt; ++t) {
          T* dst = pack + (t * rows + r) * TW;
          A::store(dst, A::load(xr + t * TW));
          A::store(dst + W, A::load(xr + t * TW + W));
        }
      }
      for (size_t t = 0; t < nt; ++t)
        gkd_classes<A, 2, false>(pack + t * rows * TW, TW, rows, D, G, K, acc + (t0 + t) * TW, full);
    } else {
      for (size_t t = 0; t < nt; ++t)
        gkd_classes<A, 2, false>(X + (t0 + t) * TW, D, rows, D, G, K, acc + (t0 + t) * TW, full);
    }
  }
  const size_t d0 = full_tiles * TW;
  const size_t rem = D - d0;
  if (rem > W)
    gkd_classes<A, 2, true>(X + d0, D, rows, D, G, K, acc + d0, A::mask(rem - W));
  else if (rem == W)
    gkd_classes<A, 1, false>(X + d0, D, rows, D, G, K, acc + d0, full);
  else if (rem > 0)
    gkd_classes<A, 1, true>(X + d0, D, rows, D, G, K, acc + d0, A::mask(rem));
}

template <class A>
void grad_kd(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
             typename A::T* acc) {
  constexpr size_t W = A::W;
  if (kd_needs_pack<A>(D, rows)) {
    grad_kd_packed<A>(X, rows, D, G, K, acc);
    return;
  }
  const typename A::M full = A::mask(W);
  // D tiles outer: the tile's rows×2W slice of X stays in L1 across the class groups.
  size_t d0 = 0;
  for (; d0 + 2 * W <= D; d0 += 2 * W) gkd_classes<A, 2, false>(X + d0, D, rows, D, G, K, acc + d0, full);
  const size_t rem = D - d0;
  if (rem > W)
    gkd_classes<A, 2, true>(X + d0, D, rows, D, G, K, acc + d0, A::mask(rem - W));
  else if (rem == W)
    gkd_classes<A, 1, false>(X + d0, D, rows, D, G, K, acc + d0, full);
  else if (rem > 0)
    gkd_classes<A, 1, true>(X + d0, D, rows, D, G, K, acc + d0, A::mask(rem));
}

// ------------------------------------------------------------------------------------------------
// grad_update, layout DK: acc[d][k] += sum_r X[r][d] G[r][k]; tile RD d's × NV vectors of classes.
// ------------------------------------------------------------------------------------------------

template <class A, int RD, int NV, bool MASK>
void gdk_tile(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
              size_t d0, size_t k0, typename A::T* acc, typename A::M mlast) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V a[RD][NV];
#pragma GCC unroll 8
  for (int i = 0; i < RD; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const T* p = acc + (d0 + i) * K + k0 + v * W;
      a[i][v] = (MASK && v == NV - 1) ? A::loadm(p, mlast) : A::load(p);
    }
  const T* xp = X + d0;
  const T* gp = G + k0;
  for (size_t r = 0; r < rows; ++r, xp += D, gp += K) {
    V gv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      gv[v] = (MASK && v == NV - 1) ? A::loadm(gp + v * W, mlast) : A::load(gp + v * W);
#pragma GCC unroll 8
    for (int i = 0; i < RD; ++i) {
      const V xb = A::bcast(xp + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) a[i][v] = A::fma(xb, gv[v], a[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RD; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* p = acc + (d0 + i) * K + k0 + v * W;
      if (MASK && v == NV - 1)
        A::storem(p, mlast, a[i][v]);
      else
        A::store(p, a[i][v]);
    }
}

template <class A, int RD>
void gdk_dtile(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
               size_t d0, typename A::T* acc) {
  constexpr size_t W = A::W;
  const typename A::M full = A::mask(W);
  size_t k0 = 0;
  // RD d's × 4 vectors of classes = 24 accumulators (of 32 registers); the rest of K in one tile of
  // 1 to 4 vectors, the last masked (see scores_avx512).
  for (; k0 + 4 * W <= K; k0 += 4 * W) gdk_tile<A, RD, 4, false>(X, rows, D, G, K, d0, k0, acc, full);
  const size_t rem = K - k0;
  const typename A::M last = A::mask(rem % W == 0 ? W : rem % W);
  switch ((rem + W - 1) / W) {
    case 4: gdk_tile<A, RD, 4, true>(X, rows, D, G, K, d0, k0, acc, last); break;
    case 3: gdk_tile<A, RD, 3, true>(X, rows, D, G, K, d0, k0, acc, last); break;
    case 2: gdk_tile<A, RD, 2, true>(X, rows, D, G, K, d0, k0, acc, last); break;
    case 1: gdk_tile<A, RD, 1, true>(X, rows, D, G, K, d0, k0, acc, last); break;
    default: break;
  }
}

template <class A>
void grad_dk(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
             typename A::T* acc) {
  constexpr size_t RD = 6;
  size_t d0 = 0;
  for (; d0 + RD <= D; d0 += RD) gdk_dtile<A, 6>(X, rows, D, G, K, d0, acc);
  switch (D - d0) {
    case 5: gdk_dtile<A, 5>(X, rows, D, G, K, d0, acc); break;
    case 4: gdk_dtile<A, 4>(X, rows, D, G, K, d0, acc); break;
    case 3: gdk_dtile<A, 3>(X, rows, D, G, K, d0, acc); break;
    case 2: gdk_dtile<A, 2>(X, rows, D, G, K, d0, acc); break;
    case 1: gdk_dtile<A, 1>(X, rows, D, G, K, d0, acc); break;
    default: break;
  }
}

template <class A>
void grad_update_avx512(const typename A::T* X, size_t rows, size_t D, const typename A::T* G,
                      size_t K, typename A::T* acc, GradLayout layout) {
  if (rows == 0 || D == 0 || K == 0) return;
  if (layout == GradLayout::KD)
    grad_kd<A>(X, rows, D, G, K, acc);
  else
    grad_dk<A>(X, rows, D, G, K, acc);
}

GradLayout grad_layout_avx512(size_t, size_t K) { return K < kWideK ? GradLayout::KD : GradLayout::DK; }

void scores_f32_avx512(const float* X, size_t rows, WeightsView<float> w, const float* bias, float* S) {
  scores_avx512<F32>(X, rows, w, bias, S);
}
void scores_f64_avx512(const double* X, size_t rows, WeightsView<double> w, const double* bias,
                     double* S) {
  scores_avx512<F64>(X, rows, w, bias, S);
}
void grad_update_f32_avx512(const float* X, size_t rows, size_t D, const float* G, size_t K,
                          float* acc, GradLayout layout) {
  grad_update_avx512<F32>(X, rows, D, G, K, acc, layout);
}
void grad_update_f64_avx512(const double* X, size_t rows, size_t D, const double* G, size_t K,
                          double* acc, GradLayout layout) {
  grad_update_avx512<F64>(X, rows, D, G, K, acc, layout);
}

// ------------------------------------------------------------------------------------------------
// The per-row steps around exp (kernels.hpp): along each row, 16 / 8 classes per vector.
// ------------------------------------------------------------------------------------------------

// fpclass categories QNaN | +Inf | −Inf | SNaN.
constexpr int kNotFinite = 0x01 | 0x08 | 0x10 | 0x80;

size_t row_max_shift_f32_avx512(const float* S, size_t rows, size_t K, float* M, float* G) {
  const __m512 lowest = _mm512_set1_ps(-__builtin_inff());
  for (size_t r = 0; r < rows; ++r) {
    const float* s = S + r * K;
    __m512 vm = lowest;
    __mmask16 bad = 0;
    size_t c = 0;
    for (; c + 16 <= K; c += 16) {
      const __m512 v = _mm512_loadu_ps(s + c);
      bad |= _mm512_fpclass_ps_mask(v, kNotFinite);
      vm = _mm512_max_ps(vm, v);
    }
    if (c < K) {
      const __mmask16 m = F32::mask(K - c);
      const __m512 v = _mm512_mask_loadu_ps(lowest, m, s + c);
      bad |= _mm512_mask_fpclass_ps_mask(m, v, kNotFinite);
      vm = _mm512_max_ps(vm, v);
    }
    if (bad) return r;
    const float mx = _mm512_reduce_max_ps(vm);  // exact in any order: every value is finite
    M[r] = mx;
    const __m512 vmx = _mm512_set1_ps(mx);
    float* g = G + r * K;
    for (c = 0; c + 16 <= K; c += 16) _mm512_storeu_ps(g + c, _mm512_sub_ps(_mm512_loadu_ps(s + c), vmx));
    if (c < K) {
      const __mmask16 m = F32::mask(K - c);
      _mm512_mask_storeu_ps(g + c, m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + c), vmx));
    }
  }
  return rows;
}

size_t row_max_shift_f64_avx512(const double* S, size_t rows, size_t K, double* M, double* G) {
  const __m512d lowest = _mm512_set1_pd(-__builtin_inf());
  for (size_t r = 0; r < rows; ++r) {
    const double* s = S + r * K;
    __m512d vm = lowest;
    __mmask8 bad = 0;
    size_t c = 0;
    for (; c + 8 <= K; c += 8) {
      const __m512d v = _mm512_loadu_pd(s + c);
      bad |= _mm512_fpclass_pd_mask(v, kNotFinite);
      vm = _mm512_max_pd(vm, v);
    }
    if (c < K) {
      const __mmask8 m = F64::mask(K - c);
      const __m512d v = _mm512_mask_loadu_pd(lowest, m, s + c);
      bad |= _mm512_mask_fpclass_pd_mask(m, v, kNotFinite);
      vm = _mm512_max_pd(vm, v);
    }
    if (bad) return r;
    const double mx = _mm512_reduce_max_pd(vm);
    M[r] = mx;
    const __m512d vmx = _mm512_set1_pd(mx);
    double* g = G + r * K;
    for (c = 0; c + 8 <= K; c += 8) _mm512_storeu_pd(g + c, _mm512_sub_pd(_mm512_loadu_pd(s + c), vmx));
    if (c < K) {
      const __mmask8 m = F64::mask(K - c);
      _mm512_mask_storeu_pd(g + c, m, _mm512_sub_pd(_mm512_maskz_loadu_pd(m, s + c), vmx));
    }
  }
  return rows;
}

// Two float64 accumulators of 8 lanes (float32: the low and high 8 values of each 16).
void row_sums_f32_avx512(const float* G, size_t rows, size_t K, double* Z) {
  for (size_t r = 0; r < rows; ++r) {
    const float* v = G + r * K;
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    size_t c = 0;
    for (; c + 16 <= K; c += 16) {
      const __m512 x = _mm512_loadu_ps(v + c);
      a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
      a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)));
    }
    if (c < K) {
      const __m512 x = _mm512_maskz_loadu_ps(F32::mask(K - c), v + c);
      a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
      a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)));
    }
    Z[r] = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  }
}

void row_sums_f64_avx512(const double* G, size_t rows, size_t K, double* Z) {
  for (size_t r = 0; r < rows; ++r) {
    const double* v = G + r * K;
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    size_t c = 0;
    for (; c + 16 <= K; c += 16) {
      a0 = _mm512_add_pd(a0, _mm512_loadu_pd(v + c));
      a1 = _mm512_add_pd(a1, _mm512_loadu_pd(v + c + 8));
    }
    for (; c < K; c += 8) a0 = _mm512_add_pd(a0, _mm512_maskz_loadu_pd(F64::mask(K - c < 8 ? K - c : 8), v + c));
    Z[r] = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  }
}

// T(double(g) · inv): the product rounded to double, then to float (cvtpd_ps rounds to nearest, as
// the cast does): the same two roundings as the scalar code.
inline __m512 scale16(__m512 x, __m512d f) {
  const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), f));
  const __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), f));
  return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

void scale_rows_f32_avx512(float* G, size_t rows, size_t K, const double* inv) {
  for (size_t r = 0; r < rows; ++r) {
    float* g = G + r * K;
    const __m512d f = _mm512_set1_pd(inv[r]);
    size_t c = 0;
    for (; c + 16 <= K; c += 16) _mm512_storeu_ps(g + c, scale16(_mm512_loadu_ps(g + c), f));
    if (c < K) {
      const __mmask16 m = F32::mask(K - c);
      _mm512_mask_storeu_ps(g + c, m, scale16(_mm512_maskz_loadu_ps(m, g + c), f));
    }
  }
}

void scale_rows_f64_avx512(double* G, size_t rows, size_t K, const double* inv) {
  for (size_t r = 0; r < rows; ++r) {
    double* g = G + r * K;
    const __m512d f = _mm512_set1_pd(inv[r]);
    size_t c = 0;
    for (; c + 8 <= K; c += 8) _mm512_storeu_pd(g + c, _mm512_mul_pd(_mm512_loadu_pd(g + c), f));
    if (c < K) {
      const __mmask8 m = F64::mask(K - c);
      _mm512_mask_storeu_pd(g + c, m, _mm512_mul_pd(_mm512_maskz_loadu_pd(m, g + c), f));
    }
  }
}

// Eight columns at a time, their rows added in order: per column the scalar code's sequence.
void add_columns_f32_avx512(const float* G, size_t rows, size_t K, double* db) {
  for (size_t c = 0; c < K; c += 8) {
    const __mmask8 m = F64::mask(K - c < 8 ? K - c : 8);
    __m512d a = _mm512_maskz_loadu_pd(m, db + c);
    for (size_t r = 0; r < rows; ++r) a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, G + r * K + c)));
    _mm512_mask_storeu_pd(db + c, m, a);
  }
}

void add_columns_f64_avx512(const double* G, size_t rows, size_t K, double* db) {
  for (size_t c = 0; c < K; c += 8) {
    const __mmask8 m = F64::mask(K - c < 8 ? K - c : 8);
    __m512d a = _mm512_maskz_loadu_pd(m, db + c);
    for (size_t r = 0; r < rows; ++r) a = _mm512_add_pd(a, _mm512_maskz_loadu_pd(m, G + r * K + c));
    _mm512_mask_storeu_pd(db + c, m, a);
  }
}

}  // namespace

const LinearKernels<float> linear_f32_avx512 = {
    "avx512", scores_f32_avx512, exp_f32_avx512, grad_update_f32_avx512, grad_layout_avx512,
    row_max_shift_f32_avx512, row_sums_f32_avx512, scale_rows_f32_avx512, add_columns_f32_avx512};
const LinearKernels<double> linear_f64_avx512 = {
    "avx512", scores_f64_avx512, exp_f64_avx512, grad_update_f64_avx512, grad_layout_avx512,
    row_max_shift_f64_avx512, row_sums_f64_avx512, scale_rows_f64_avx512, add_columns_f64_avx512};

}  // namespace softmax_simd
