// AVX-512 kernels of the linear classifier (x86-64 with AVX-512 F, DQ, BW and VL: Intel Skylake-SP
// and later, AMD Zen 4 and later). This file alone is compiled with those flags; dispatch calls it
// only on CPUs (and OSes) that have them.
//
// Scores and the gradient update are linear_simd.inl over the traits below, as in linear_avx2.cpp, at
// twice the width (16 float / 8 double lanes) and with wide-K tiles of 6 × 4 vectors (24 of the 32
// registers). Tails use AVX-512's mask registers: masked loads and stores never touch the
// masked-out elements. Here: the exp (the AVX2 one at 16 / 8 lanes) and the per-row softmax steps
// (row_max_shift, row_sums, scale_rows, add_columns), vectorized along each row.
// Rules for this translation unit as for every ISA file (see kernels.hpp): internal linkage only,
// no std:: templates or inline library functions.
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

// Vector traits: the kernels below are written once over these.
struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int kRegisters = 32;
  // 20 accumulators, 4 row vectors and a class vector: K = 10 in two tiles, each row read from
  // memory once. perf_probe mnist float32 (Zen 5): 4 × 3 24.4 ms, 2 × 10 19–21 ms, 4 × 5 17.3 ms.
  static constexpr int kDotRows = 4, kDotClasses = 5;
  // 10 classes × 2 vectors: K = 10 in one pass over each slice of the block (perf_probe, 3
  // interleaved rounds: mnist float32 15.3 → 13.6 ms, float64 30.5 → 28.0 against 5 classes).
  static constexpr int kGradClasses = 10;
  static constexpr int kWideVectors = 4;
  // Every 512-bit load of a typed array's rows spans two lines; aligned (RowPhase): see there.
  static constexpr bool kAlignRows = true;
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
  static M mask_range(size_t lo, size_t hi) { return static_cast<M>(mask(hi) & ~mask(lo)); }
  static V fmam(M m, V a, V b, V c) { return _mm512_mask3_fmadd_ps(a, b, c, m); }
  static T hsum(V v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // hsum of four vectors at once, as four lanes: each step puts two vectors' halves side by side
  // in one vector, so the additions are hsum's, in its order (lanes 8 apart, 4, 2, then 1): the
  // same four sums in 14 instructions instead of 32 (linear_simd.inl store_sums).
  static constexpr bool kHsum4 = true;
  using Q = __m128;
  static Q hsum4(V a, V b, V c, V d) {
    const V ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    const V cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    V u = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xEE));
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x55));
    const __m512i firsts = _mm512_castsi128_si512(_mm_setr_epi32(0, 4, 8, 12));  // lane 0 of each quarter
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(firsts, u));
  }
  static Q qload(const T* p) { return _mm_loadu_ps(p); }
  static Q qset1(T x) { return _mm_set1_ps(x); }
  static Q qadd(Q a, Q b) { return _mm_add_ps(a, b); }
  static void qstore(T* p, Q q) { _mm_storeu_ps(p, q); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int kRegisters = 32;
  static constexpr int kDotRows = 4, kDotClasses = 5;
  static constexpr int kGradClasses = 10;
  static constexpr int kWideVectors = 4;
  static constexpr bool kAlignRows = true;
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
  static M mask_range(size_t lo, size_t hi) { return static_cast<M>(mask(hi) & ~mask(lo)); }
  static V fmam(M m, V a, V b, V c) { return _mm512_mask3_fmadd_pd(a, b, c, m); }
  static T hsum(V v) {
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  // hsum of four vectors at once, as F32's (lanes 4 apart, 2, then 1).
  static constexpr bool kHsum4 = true;
  using Q = __m256d;
  static Q hsum4(V a, V b, V c, V d) {
    const V ab = _mm512_add_pd(_mm512_shuffle_f64x2(a, b, 0x44), _mm512_shuffle_f64x2(a, b, 0xEE));
    const V cd = _mm512_add_pd(_mm512_shuffle_f64x2(c, d, 0x44), _mm512_shuffle_f64x2(c, d, 0xEE));
    V u = _mm512_add_pd(_mm512_shuffle_f64x2(ab, cd, 0x88), _mm512_shuffle_f64x2(ab, cd, 0xDD));
    u = _mm512_add_pd(u, _mm512_permute_pd(u, 0x55));
    const __m512i firsts = _mm512_castsi256_si512(_mm256_setr_epi64x(0, 2, 4, 6));  // lane 0 of each quarter
    return _mm512_castpd512_pd256(_mm512_permutexvar_pd(firsts, u));
  }
  static Q qload(const T* p) { return _mm256_loadu_pd(p); }
  static Q qset1(T x) { return _mm256_set1_pd(x); }
  static Q qadd(Q a, Q b) { return _mm256_add_pd(a, b); }
  static void qstore(T* p, Q q) { _mm256_storeu_pd(p, q); }
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

#include "linear_simd.inl"


void scores_f32_avx512(const float* X, size_t rows, WeightsView<float> w, const float* bias, float* S,
                       const float* next, size_t next_rows) {
  scores_simd<F32>(X, rows, w, bias, S, next, next_rows);
}
void scores_f64_avx512(const double* X, size_t rows, WeightsView<double> w, const double* bias, double* S,
                       const double* next, size_t next_rows) {
  scores_simd<F64>(X, rows, w, bias, S, next, next_rows);
}
void grad_update_f32_avx512(const float* X, size_t rows, size_t D, const float* G, size_t K,
                          float* acc, size_t ld, GradLayout layout, const float* next, size_t next_rows) {
  grad_update_simd<F32>(X, rows, D, G, K, acc, ld, layout, next, next_rows);
}
void grad_update_f64_avx512(const double* X, size_t rows, size_t D, const double* G, size_t K,
                          double* acc, size_t ld, GradLayout layout, const double* next, size_t next_rows) {
  grad_update_simd<F64>(X, rows, D, G, K, acc, ld, layout, next, next_rows);
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

// Rows whose 64-byte footprint reaches into the next row's (K·size < 64) are taken in `step` passes
// of every step-th row: a masked store's footprint then never overlaps the next masked load (such
// a load waits for the store to retire; row by row that was 6% of the float32 mnist pass in cache).
// Each element is scaled exactly as before; only the order of the rows changes.
inline size_t scale_step(size_t K, size_t elem_size) {
  const size_t row_bytes = K * elem_size;
  return row_bytes >= 64 ? 1 : (64 + row_bytes - 1) / row_bytes;
}

void scale_rows_f32_avx512(float* G, size_t rows, size_t K, const double* inv) {
  const size_t step = scale_step(K, sizeof(float));
  for (size_t r0 = 0; r0 < step; ++r0)
    for (size_t r = r0; r < rows; r += step) {
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
  const size_t step = scale_step(K, sizeof(double));
  for (size_t r0 = 0; r0 < step; ++r0)
    for (size_t r = r0; r < rows; r += step) {
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

// add_to_sums (kernels.hpp) for float32: 16 floats a step, as two vectors of 8 doubles. The
// driver's portable loop (SSE2 at the addon's baseline flags) took 3% of the float32 mnist pass.
void add_to_sums_f32_avx512(double* out, float* a, size_t n, bool clear) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(a + i);
    _mm512_storeu_pd(out + i, _mm512_add_pd(_mm512_loadu_pd(out + i), _mm512_cvtps_pd(_mm512_castps512_ps256(x))));
    _mm512_storeu_pd(out + i + 8,
                     _mm512_add_pd(_mm512_loadu_pd(out + i + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1))));
    if (clear) _mm512_storeu_ps(a + i, _mm512_setzero_ps());
  }
  if (i < n) {
    const __mmask16 m = F32::mask(n - i);
    const __mmask8 lo = static_cast<__mmask8>(m), hi = static_cast<__mmask8>(m >> 8);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + i);
    _mm512_mask_storeu_pd(out + i, lo,
                          _mm512_add_pd(_mm512_maskz_loadu_pd(lo, out + i), _mm512_cvtps_pd(_mm512_castps512_ps256(x))));
    if (hi) {  // out + i + 8 is only formed inside the array
      _mm512_mask_storeu_pd(out + i + 8, hi,
                            _mm512_add_pd(_mm512_maskz_loadu_pd(hi, out + i + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1))));
    }
    if (clear) _mm512_mask_storeu_ps(a + i, m, _mm512_setzero_ps());
  }
}

}  // namespace

const LinearKernels<float> linear_f32_avx512 = {
    "avx512", scores_f32_avx512, exp_f32_avx512, grad_update_f32_avx512, grad_layout_simd,
    row_max_shift_f32_avx512, row_sums_f32_avx512, scale_rows_f32_avx512, add_columns_f32_avx512, true,
    add_to_sums_f32_avx512};
const LinearKernels<double> linear_f64_avx512 = {
    "avx512", scores_f64_avx512, exp_f64_avx512, grad_update_f64_avx512, grad_layout_simd,
    row_max_shift_f64_avx512, row_sums_f64_avx512, scale_rows_f64_avx512, add_columns_f64_avx512, true,
    nullptr};

}  // namespace softmax_simd
