// AVX2 + FMA kernels of the linear classifier (x86-64). This file alone is compiled with
// -mavx2 -mfma; dispatch calls it only on CPUs that have both.
//
// Rules for this translation unit (see kernels.hpp): every helper has internal linkage (anonymous
// namespace), and nothing here uses std:: templates or inline library functions, so no AVX2 copy of
// a shared inline function can leak to baseline callers through the linker. Plain loops, intrinsics,
// and our own helpers only.
//
// Tails: sizes that are not multiples of the vector width go through masked loads and stores
// (vmaskmov), which never touch the masked-out elements: no kernel reads or writes past the end of
// X, W, Wt, G, S, bias or acc.
//
// Shapes:
//   scores      K < kWideK: dot products along D with the packed transpose Wt (K×D), register
//               block of 4 rows × 3 classes, one vector accumulator per (row, class), horizontal
//               sums at the end; the first class group prefetches the next row group. K >= kWideK: GEMM broadcast form over W (D×K): tile of 6 rows ×
//               2 vectors of classes, broadcasts of X[r][d].
//   grad_update K < kWideK: layout KD (acc[k*D + d]), tile of 5 classes × 2 vectors along D,
//               loop over the block's rows inside (blocks whose row stride is a multiple of 4 KiB
//               are first copied into a tile-major L1 buffer: see kd_needs_pack). K >= kWideK: layout DK (acc[d*K + k]), tile of
//               6 d's × 2 vectors of classes, broadcasts of X[r][d], rows inside.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels.hpp"

namespace softmax_simd {
namespace {

// From this many classes on, the GEMM forms (classes along the vector) win over the dot forms.
constexpr size_t kWideK = 32;

alignas(32) const int32_t kMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
alignas(32) const int64_t kMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

// Vector traits: the kernels below are written once over these.
struct F32 {
  using T = float;
  using V = __m256;
  static constexpr size_t W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V loadm(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void storem(T* p, __m256i m, V v) { _mm256_maskstore_ps(p, m, v); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  // Lanes [0, n) on, n in [0, 8].
  static __m256i mask(size_t n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask32 + 8 - n));
  }
  static T hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr size_t W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V loadm(const T* p, __m256i m) { return _mm256_maskload_pd(p, m); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void storem(T* p, __m256i m, V v) { _mm256_maskstore_pd(p, m, v); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  // Lanes [0, n) on, n in [0, 4].
  static __m256i mask(size_t n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask64 + 4 - n));
  }
  static T hsum(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
};

// ------------------------------------------------------------------------------------------------
// exp
//
// exp(x) = 2^n · exp(r), n = round(x·log2 e) (by adding 1.5·2^p), r = x − n·ln2 = r1 + c with
// r1 = x − n·ln2_hi exact (one FMA; |r1| < 0.35) and c = −n·ln2_lo. exp(r) = 1 + r1 + r1²/2 +
// r1³·q3(r1) + c·exp(r1), q3 the Taylor tail (the whole polynomial is of degree 8 for float, 14 for
// double: truncation < 0.004 ULP); the large terms 1 + r1 + r1²/2 are summed exactly (TwoSum, and
// r1² split by FMA), the small ones into lo, and p = u + lo is the only rounding. The scale 2^n is
// applied as two exact powers of two, 2^floor(n/2)·2^ceil(n/2).
// Subnormal results are COMPUTED (gradual underflow), not flushed to 0, and rounded once: a lane
// whose result is below the smallest normal takes (1 + (u + lo)·2^(n+emin)) − 1, whose addition
// rounds on the subnormal grid, then scales by 2^-emin exactly.
// Inputs are clamped to [lo, hi] first (lo = −104 for float, −746 for double: below the point where
// exp(x) rounds to 0; hi = 89 / 710: above the overflow point), with the operand order of max/min
// chosen so that a NaN passes through the clamp and comes out NaN. Hence:
//   x < ln(2^-150) ≈ −103.972 (float), x < ln(2^-1075) ≈ −745.133 (double), −inf  → exactly +0;
//   NaN → NaN; 0 and −0 → exactly 1; x above the overflow point (never passed by the driver) → +inf.
//
// Measured maximum error, max |y − exp(x)| / ulp(exp(x)) (test/native/kernel_test.cpp measures
// and enforces <= 0.52 for both):
//   float:  0.5164 ULP (at x = −57.8758698) against exp in double, over EVERY float in [−104, 0]
//           (1,120,927,745 inputs), subnormal results included (their ULP = 2^-149); at most 1 ULP
//           from (float)exp((double)x).
//   double: 0.5176 ULP (at x = −76.5826763) against expl (x87 long double), 2·10^7 samples over
//           [−745.25, 0] (half uniform, half log-uniform in |x| down to 1e-300), subnormal results
//           included (ULP = 2^-1074).
// ------------------------------------------------------------------------------------------------

inline __m256 exp8(__m256 x) {
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);     // NaN in x is returned as is
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
  const __m256 tn = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 n = _mm256_sub_ps(tn, magic);
  // r1 = x − n·ln2_hi is exact (FMA, |r1| < 0.35); c = −n·ln2_lo is the small rest of r.
  const __m256 r1 = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693147182464599609375f), x);
  const __m256 c = _mm256_mul_ps(n, _mm256_set1_ps(1.904654323148236017e-09f));
  __m256 q = _mm256_set1_ps(1.0f / 40320.0f);  // q3(r) = 1/3! + r/4! + ... + r^5/8!
  q = _mm256_fmadd_ps(q, r1, _mm256_set1_ps(1.0f / 5040.0f));
  q = _mm256_fmadd_ps(q, r1, _mm256_set1_ps(1.0f / 720.0f));
  q = _mm256_fmadd_ps(q, r1, _mm256_set1_ps(1.0f / 120.0f));
  q = _mm256_fmadd_ps(q, r1, _mm256_set1_ps(1.0f / 24.0f));
  q = _mm256_fmadd_ps(q, r1, _mm256_set1_ps(1.0f / 6.0f));
  // exp(r1 + c) = 1 + r1 + r1²/2 + r1³·q3(r1) + c·exp(r1). The big terms are summed exactly
  // (1 + r1 = s + e, s + r1²/2 = u + ue, r1² = r2 + r2e), the small ones go to lo; one rounding
  // at p = u + lo.
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 r2 = _mm256_mul_ps(r1, r1);
  const __m256 r2e = _mm256_fmsub_ps(r1, r1, r2);
  const __m256 th = _mm256_mul_ps(half, r2);
  const __m256 tl = _mm256_fmadd_ps(r2, _mm256_mul_ps(r1, q), _mm256_mul_ps(half, r2e));
  const __m256 s = _mm256_add_ps(one, r1);
  const __m256 e = _mm256_add_ps(_mm256_sub_ps(one, s), r1);
  const __m256 u = _mm256_add_ps(s, th);
  const __m256 ue = _mm256_add_ps(_mm256_sub_ps(s, u), th);
  const __m256 approx = _mm256_add_ps(u, tl);
  const __m256 lo = _mm256_fmadd_ps(c, approx, _mm256_add_ps(_mm256_add_ps(e, ue), tl));
  const __m256 p = _mm256_add_ps(u, lo);
  // 2^n1 · 2^n2 with n1 = floor(n/2), n2 = n − n1, both in [−75, 64]: normal powers of two.
  const __m256 n1 = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
  const __m256 n2 = _mm256_sub_ps(n, n1);
  const __m256 bias = _mm256_set1_ps(12582912.0f + 127.0f);
  // The low mantissa bits of (m + 1.5·2^23) hold the integer m; shifting by 23 keeps m's low 9 bits
  // in the sign and exponent field (m in [52, 191]).
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(n1, bias)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(n2, bias)), 23));
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  // Subnormal results (y < 2^-126, so n <= -126): rounding p to 24 bits and then again to the
  // subnormal grid would cost up to 0.75 ULP. Instead round once: with sd = 2^(n+126) (normal),
  // (s + lo)·sd < 1 is added to 1, which rounds it on the grid 2^-23 = the subnormal grid scaled by
  // 2^126; then (z − 1)·2^-126 is exact.
  const __m256 sd = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(n, _mm256_set1_ps(12582912.0f + 253.0f))), 23));
  const __m256 yh = _mm256_mul_ps(u, sd);
  const __m256 h = _mm256_add_ps(one, yh);
  const __m256 l = _mm256_add_ps(_mm256_sub_ps(one, h), yh);
  const __m256 z = _mm256_add_ps(h, _mm256_fmadd_ps(lo, sd, l));
  const __m256 ys = _mm256_mul_ps(_mm256_sub_ps(z, one), _mm256_set1_ps(1.17549435082228751e-38f));
  return _mm256_blendv_ps(y, ys, _mm256_cmp_ps(y, _mm256_set1_ps(1.17549435082228751e-38f), _CMP_LT_OQ));
}

inline __m256d exp4(__m256d x) {
  const __m256d magic = _mm256_set1_pd(6755399441055744.0);  // 1.5 * 2^52
  x = _mm256_max_pd(_mm256_set1_pd(-746.0), x);              // NaN in x is returned as is
  x = _mm256_min_pd(_mm256_set1_pd(710.0), x);
  const __m256d tn = _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634074), magic);
  const __m256d n = _mm256_sub_pd(tn, magic);
  // r1 = x − n·ln2_hi is exact (FMA, |r1| < 0.35); c = −n·ln2_lo is the small rest of r.
  const __m256d r1 = _mm256_fnmadd_pd(n, _mm256_set1_pd(0.6931471805599452862), x);
  const __m256d c = _mm256_mul_pd(n, _mm256_set1_pd(-2.319046813846299558e-17));
  __m256d q = _mm256_set1_pd(1.0 / 87178291200.0);  // q3(r) = 1/3! + r/4! + ... + r^11/14!
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 6227020800.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 479001600.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 39916800.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 3628800.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 362880.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 40320.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 5040.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 720.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 120.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 24.0));
  q = _mm256_fmadd_pd(q, r1, _mm256_set1_pd(1.0 / 6.0));
  // As in exp8: 1 + r1 + r1²/2 summed exactly, the small terms in lo, one rounding at u + lo.
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d half = _mm256_set1_pd(0.5);
  const __m256d r2 = _mm256_mul_pd(r1, r1);
  const __m256d r2e = _mm256_fmsub_pd(r1, r1, r2);
  const __m256d th = _mm256_mul_pd(half, r2);
  const __m256d tl = _mm256_fmadd_pd(r2, _mm256_mul_pd(r1, q), _mm256_mul_pd(half, r2e));
  const __m256d s = _mm256_add_pd(one, r1);
  const __m256d e = _mm256_add_pd(_mm256_sub_pd(one, s), r1);
  const __m256d u = _mm256_add_pd(s, th);
  const __m256d ue = _mm256_add_pd(_mm256_sub_pd(s, u), th);
  const __m256d approx = _mm256_add_pd(u, tl);
  const __m256d lo = _mm256_fmadd_pd(c, approx, _mm256_add_pd(_mm256_add_pd(e, ue), tl));
  const __m256d p = _mm256_add_pd(u, lo);
  // 2^n1 · 2^n2 with n1 = floor(n/2), n2 = n − n1, both in [−538, 513]: normal powers of two.
  const __m256d n1 = _mm256_floor_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
  const __m256d n2 = _mm256_sub_pd(n, n1);
  const __m256d bias = _mm256_set1_pd(6755399441055744.0 + 1023.0);
  const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(n1, bias)), 52));
  const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(n2, bias)), 52));
  const __m256d y = _mm256_mul_pd(_mm256_mul_pd(p, s1), s2);
  // Subnormal results: one rounding, as in exp8 (sd = 2^(n+1022), grid 2^-52 scaled by 2^1022).
  const __m256d sd = _mm256_castsi256_pd(
      _mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(6755399441055744.0 + 2045.0))), 52));
  const __m256d yh = _mm256_mul_pd(u, sd);
  const __m256d h = _mm256_add_pd(one, yh);
  const __m256d l = _mm256_add_pd(_mm256_sub_pd(one, h), yh);
  const __m256d z = _mm256_add_pd(h, _mm256_fmadd_pd(lo, sd, l));
  const __m256d ys = _mm256_mul_pd(_mm256_sub_pd(z, one), _mm256_set1_pd(2.2250738585072014e-308));
  return _mm256_blendv_pd(y, ys, _mm256_cmp_pd(y, _mm256_set1_pd(2.2250738585072014e-308), _CMP_LT_OQ));
}

void exp_f32_avx2(float* v, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, exp8(_mm256_loadu_ps(v + i)));
  if (i < n) {
    const __m256i m = F32::mask(n - i);
    _mm256_maskstore_ps(v + i, m, exp8(_mm256_maskload_ps(v + i, m)));
  }
}

void exp_f64_avx2(double* v, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(v + i, exp4(_mm256_loadu_pd(v + i)));
  if (i < n) {
    const __m256i m = F64::mask(n - i);
    _mm256_maskstore_pd(v + i, m, exp4(_mm256_maskload_pd(v + i, m)));
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
    const __m256i m = A::mask(D - d);
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
               const typename A::T* bias, typename A::T* S, __m256i mlast) {
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
               size_t k0, const typename A::T* bias, typename A::T* S, __m256i mlast) {
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
void scores_avx2(const typename A::T* X, size_t rows, WeightsView<typename A::T> w,
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
  const __m256i full = A::mask(W);
  size_t k0 = 0;
  for (; k0 + 2 * W <= K; k0 += 2 * W) gemm_cols<A, 2, false>(X, rows, D, w.W, K, k0, bias, S, full);
  const size_t rem = K - k0;
  if (rem > W)
    gemm_cols<A, 2, true>(X, rows, D, w.W, K, k0, bias, S, A::mask(rem - W));
  else if (rem == W)
    gemm_cols<A, 1, false>(X, rows, D, w.W, K, k0, bias, S, full);
  else if (rem > 0)
    gemm_cols<A, 1, true>(X, rows, D, w.W, K, k0, bias, S, A::mask(rem));
}

// ------------------------------------------------------------------------------------------------
// grad_update, layout KD: acc[k][d] += sum_r G[r][k] X[r][d]; tile C classes × NV vectors along D.
// ------------------------------------------------------------------------------------------------

// Xd points at column d0 of the block's first row, rows ldx apart; accd at column d0 of class 0's
// accumulator row, classes D apart.
template <class A, int C, int NV, bool MASK>
void gkd_tile(const typename A::T* Xd, size_t ldx, size_t rows, size_t D, const typename A::T* G,
              size_t K, size_t k0, typename A::T* accd, __m256i mlast) {
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
                 size_t K, typename A::T* accd, __m256i mlast) {
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
  const __m256i full = A::mask(W);
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
  const __m256i full = A::mask(W);
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
              size_t d0, size_t k0, typename A::T* acc, __m256i mlast) {
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
  const __m256i full = A::mask(W);
  size_t k0 = 0;
  for (; k0 + 2 * W <= K; k0 += 2 * W) gdk_tile<A, RD, 2, false>(X, rows, D, G, K, d0, k0, acc, full);
  const size_t rem = K - k0;
  if (rem > W)
    gdk_tile<A, RD, 2, true>(X, rows, D, G, K, d0, k0, acc, A::mask(rem - W));
  else if (rem == W)
    gdk_tile<A, RD, 1, false>(X, rows, D, G, K, d0, k0, acc, full);
  else if (rem > 0)
    gdk_tile<A, RD, 1, true>(X, rows, D, G, K, d0, k0, acc, A::mask(rem));
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
void grad_update_avx2(const typename A::T* X, size_t rows, size_t D, const typename A::T* G,
                      size_t K, typename A::T* acc, GradLayout layout) {
  if (rows == 0 || D == 0 || K == 0) return;
  if (layout == GradLayout::KD)
    grad_kd<A>(X, rows, D, G, K, acc);
  else
    grad_dk<A>(X, rows, D, G, K, acc);
}

GradLayout grad_layout_avx2(size_t, size_t K) { return K < kWideK ? GradLayout::KD : GradLayout::DK; }

void scores_f32_avx2(const float* X, size_t rows, WeightsView<float> w, const float* bias, float* S) {
  scores_avx2<F32>(X, rows, w, bias, S);
}
void scores_f64_avx2(const double* X, size_t rows, WeightsView<double> w, const double* bias,
                     double* S) {
  scores_avx2<F64>(X, rows, w, bias, S);
}
void grad_update_f32_avx2(const float* X, size_t rows, size_t D, const float* G, size_t K,
                          float* acc, GradLayout layout) {
  grad_update_avx2<F32>(X, rows, D, G, K, acc, layout);
}
void grad_update_f64_avx2(const double* X, size_t rows, size_t D, const double* G, size_t K,
                          double* acc, GradLayout layout) {
  grad_update_avx2<F64>(X, rows, D, G, K, acc, layout);
}

}  // namespace

const LinearKernels<float> linear_f32_avx2 = {
    "avx2", scores_f32_avx2, exp_f32_avx2, grad_update_f32_avx2, grad_layout_avx2,
    row_max_shift_f32_scalar, row_sums_f32_scalar, scale_rows_f32_scalar, add_columns_f32_scalar};
const LinearKernels<double> linear_f64_avx2 = {
    "avx2", scores_f64_avx2, exp_f64_avx2, grad_update_f64_avx2, grad_layout_avx2,
    row_max_shift_f64_scalar, row_sums_f64_scalar, scale_rows_f64_scalar, add_columns_f64_scalar};

}  // namespace softmax_simd
