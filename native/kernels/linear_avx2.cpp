// AVX2 + FMA kernels of the linear classifier (x86-64). This file alone is compiled with
// -mavx2 -mfma; dispatch calls it only on CPUs that have both.
//
// Rules for this translation unit (see kernels.hpp): every helper has internal linkage (anonymous
// namespace), and nothing here uses std:: templates or inline library functions, so no AVX2 copy of
// a shared inline function can leak to baseline callers through the linker. Plain loops, intrinsics,
// and our own helpers only.
//
// The exp here; scores and the gradient update are written once over the vector traits below, in
// linear_simd.inl (shapes, tails), shared with the AVX-512 file.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels.hpp"

namespace softmax_simd {
namespace {

alignas(32) const int32_t kMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
alignas(32) const int64_t kMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

// Vector traits: the kernels below are written once over these.
struct F32 {
  using T = float;
  using V = __m256;
  using M = __m256i;
  static constexpr int kRegisters = 16;
  // 12 accumulators: the row vectors do not also fit, so each class's FMA reloads its row from L1.
  // On Zen 5 2 × 5 (rows in registers) measured the same; 4 × 3 is the one measured on Zen 3.
  static constexpr int kDotRows = 4, kDotClasses = 3;
  static constexpr int kGradClasses = 5;
  static constexpr int kWideVectors = 2;
  // Rows from their first element, as given: a 32-byte load splits a line only every other step,
  // and aligning them (RowPhase) measured 1.10× slower on mnist (bench/ab.cjs, Intel Xeon, 8 rounds).
  static constexpr bool kAlignRows = false;
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
  // No hsum4 (linear_simd.inl store_sums): written as AVX-512's, four vectors' sums at once, it
  // measured the same for float32 and 1.8% slower for float64 (perf_probe in cache, Zen 4): the
  // 4 × 3 tile's 12 sums are 256-bit vectors whose halves are cheap to add.
  static constexpr bool kHsum4 = false;
};

struct F64 {
  using T = double;
  using V = __m256d;
  using M = __m256i;
  static constexpr int kRegisters = 16;
  static constexpr int kDotRows = 4, kDotClasses = 3;
  static constexpr int kGradClasses = 5;
  static constexpr int kWideVectors = 2;
  static constexpr bool kAlignRows = false;
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
  static constexpr bool kHsum4 = false;  // see F32
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

#include "linear_simd.inl"


void scores_f32_avx2(const float* X, size_t rows, WeightsView<float> w, const float* bias, float* S,
                     const float* next, size_t next_rows) {
  scores_simd<F32>(X, rows, w, bias, S, next, next_rows);
}
void scores_f64_avx2(const double* X, size_t rows, WeightsView<double> w, const double* bias, double* S,
                     const double* next, size_t next_rows) {
  scores_simd<F64>(X, rows, w, bias, S, next, next_rows);
}
void grad_update_f32_avx2(const float* X, size_t rows, size_t D, const float* G, size_t K,
                          float* acc, size_t ld, GradLayout layout, const float* next, size_t next_rows) {
  grad_update_simd<F32>(X, rows, D, G, K, acc, ld, layout, next, next_rows);
}
void grad_update_f64_avx2(const double* X, size_t rows, size_t D, const double* G, size_t K,
                          double* acc, size_t ld, GradLayout layout, const double* next, size_t next_rows) {
  grad_update_simd<F64>(X, rows, D, G, K, acc, ld, layout, next, next_rows);
}

// add_to_sums (kernels.hpp) for float32: 8 floats a step, as two vectors of 4 doubles; the tail
// (fewer than 8) one by one. For CPUs whose best is AVX2 (Zen 3 among this project's hosts), where
// the float32 flush otherwise runs in the baseline build's SSE2 at 4 floats a step; on Zen 4 the
// `avx2` mnist pass measured 0.995× with it (6 of 10 rounds: within the noise).
void add_to_sums_f32_avx2(double* out, float* a, size_t n, bool clear) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i);
    _mm256_storeu_pd(out + i, _mm256_add_pd(_mm256_loadu_pd(out + i), _mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    _mm256_storeu_pd(out + i + 4,
                     _mm256_add_pd(_mm256_loadu_pd(out + i + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    if (clear) _mm256_storeu_ps(a + i, _mm256_setzero_ps());
  }
  for (; i < n; ++i) {
    out[i] += static_cast<double>(a[i]);
    if (clear) a[i] = 0.0f;
  }
}

}  // namespace

const LinearKernels<float> linear_f32_avx2 = {
    "avx2", scores_f32_avx2, exp_f32_avx2, grad_update_f32_avx2, grad_layout_simd,
    row_max_shift_f32_scalar, row_sums_f32_scalar, scale_rows_f32_scalar, add_columns_f32_scalar, false,
    add_to_sums_f32_avx2};
const LinearKernels<double> linear_f64_avx2 = {
    "avx2", scores_f64_avx2, exp_f64_avx2, grad_update_f64_avx2, grad_layout_simd,
    row_max_shift_f64_scalar, row_sums_f64_scalar, scale_rows_f64_scalar, add_columns_f64_scalar, false, nullptr};

}  // namespace softmax_simd
