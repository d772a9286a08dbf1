// NEON (AArch64 Advanced SIMD) kernels of the linear classifier: float32x4_t and float64x2_t with
// fused multiply-add. Advanced SIMD is part of the AArch64 baseline, so this file needs no extra
// compiler flags; it is still kept self-contained (helpers in an anonymous namespace, no std::
// templates) like every ISA file.
//
// Register blocking (AArch64 has 32 vector registers):
//  - small K (< kLargeK): scores are dot products along D of R=4 rows of X with C<=5 rows of the
//    packed transpose Wt (R*C accumulators, reduced across lanes at the end); grad_update uses the
//    transposed accumulator layout KD, acc[k][d] += G[r][k] * X[r][d], C<=5 classes by 4 vectors
//    of d, with the X block streamed once per 4-vector chunk of D.
//  - large K: GEMM broadcast form. scores: 4 rows by 4 vectors of K columns of W, X broadcast by
//    lane; grad_update in layout DK: 4 values of d by 4 vectors of K columns of acc, G rows loaded
//    as vectors, X broadcast by lane.
// Tails: the vector loops only touch whole vectors inside the arrays; the last D % lanes values,
// K % lanes columns and rows % 4 rows go through narrower instantiations or scalar loops, so no
// load or store ever reaches past the end of X, W, Wt, bias, S, G or acc.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels.hpp"

#define SOFTMAX_NEON_INLINE inline __attribute__((always_inline))

namespace softmax_simd {
namespace {

// Below this K the dot-product form and layout KD win; from it on, the GEMM broadcast form and DK.
constexpr size_t kLargeK = 32;
// Rows per register tile of the row-blocked loops.
constexpr int kRowTile = 4;

template <typename T>
struct Neon;

template <>
struct Neon<float> {
  typedef float32x4_t V;
  static constexpr size_t L = 4;
  static SOFTMAX_NEON_INLINE V load(const float* p) { return vld1q_f32(p); }
  static SOFTMAX_NEON_INLINE void store(float* p, V v) { vst1q_f32(p, v); }
  static SOFTMAX_NEON_INLINE V load_dup(const float* p) { return vld1q_dup_f32(p); }
  static SOFTMAX_NEON_INLINE V zero() { return vdupq_n_f32(0.0f); }
  static SOFTMAX_NEON_INLINE V fma(V a, V b, V c) { return vfmaq_f32(a, b, c); }
  template <int J>
  static SOFTMAX_NEON_INLINE V fma_lane(V a, V b, V v) {
    return vfmaq_laneq_f32(a, b, v, J);
  }
  static SOFTMAX_NEON_INLINE float hsum(V v) { return vaddvq_f32(v); }
};

template <>
struct Neon<double> {
  typedef float64x2_t V;
  static constexpr size_t L = 2;
  static SOFTMAX_NEON_INLINE V load(const double* p) { return vld1q_f64(p); }
  static SOFTMAX_NEON_INLINE void store(double* p, V v) { vst1q_f64(p, v); }
  static SOFTMAX_NEON_INLINE V load_dup(const double* p) { return vld1q_dup_f64(p); }
  static SOFTMAX_NEON_INLINE V zero() { return vdupq_n_f64(0.0); }
  static SOFTMAX_NEON_INLINE V fma(V a, V b, V c) { return vfmaq_f64(a, b, c); }
  template <int J>
  static SOFTMAX_NEON_INLINE V fma_lane(V a, V b, V v) {
    return vfmaq_laneq_f64(a, b, v, J);
  }
  static SOFTMAX_NEON_INLINE double hsum(V v) { return vaddvq_f64(v); }
};

// Width of the next class group of the small-K loops for `rem` classes left: at most 5 (20
// accumulators plus the loaded operands fit the 32 registers), chosen so that K = 10 runs as 5 + 5
// and multiples of 4 as fours, with few narrow leftovers.
inline size_t class_group(size_t rem) {
  if (rem <= 5) return rem;
  if (rem % 5 == 0) return 5;
  if (rem % 4 == 0 || rem == 7) return 4;
  if (rem == 6) return 3;
  return 5;
}

// ---------------------------------------------------------------------------------------------
// exp

// exp, table-driven: x = (32 e + j) ln2/32 + r (f64: 64 e + j, ln2/64), |r| <= ln2/64 (ln2/128);
// exp(x) = 2^e * 2^(j/32) * exp(r). k = 32 e + j = round(x * 32/ln2); r = x - k*C_hi - k*C_lo where
// the FMA makes x - k*C_hi exact (C = ln2/32 split in a hi and a lo part); 2^(j/32) comes from a
// table of hi + lo pairs; exp(r) - 1 = r + r^2 q(r) with q a Chebyshev-fitted (near-minimax)
// polynomial. The result is T_hi + (T_hi*p + T_lo), rounded once, then scaled by 2^e (exact) built
// in the exponent bits. Lanes whose result may be subnormal (e <= emin) are rounded exactly once:
// v = value / 2^-149 = 2^m T_hi + 2^m small (both products exact) is rounded to an integer as
// round(2^m T_hi) plus the rounding of the exact remainder, so a subnormal result is the correctly
// rounded value of the accurate sum, never a double rounding. Lanes with e = emax+1 scale
// by 2^(e-1) and then 2 (overflow to +inf exactly when the rounded result exceeds the max).
// x < -104 (f64: -745.2) and -inf give +0 exactly; NaN gives NaN.

// 2^(j/32) for j < 32, as float hi, lo pairs (lo = the float nearest 2^(j/32) - hi).
alignas(16) const float kExp2TableF32[64] = {
    0x1p+0f, 0x0p+0f,
    0x1.059b0ep+0f, -0x1.9d4f52p-25f,
    0x1.0b5586p+0f, 0x1.9f3122p-25f,
    0x1.11301ep+0f, -0x1.fdb496p-25f,
    0x1.172b84p+0f, -0x1.c15742p-27f,
    0x1.1d4874p+0f, -0x1.d2e8cap-25f,
    0x1.2387a6p+0f, 0x1.ceac48p-25f,
    0x1.29e9ep+0f, -0x1.5c0424p-25f,
    0x1.306fep+0f, 0x1.4636e2p-25f,
    0x1.371a74p+0f, -0x1.18aac6p-25f,
    0x1.3dea64p+0f, 0x1.824684p-25f,
    0x1.44e086p+0f, 0x1.8624b4p-30f,
    0x1.4bfdaep+0f, -0x1.593abcp-25f,
    0x1.5342b6p+0f, -0x1.2c561p-25f,
    0x1.5ab07ep+0f, -0x1.5bd5ecp-27f,
    0x1.6247ecp+0f, -0x1.f8b55p-25f,
    0x1.6a09e6p+0f, 0x1.9fcef4p-26f,
    0x1.71f75ep+0f, 0x1.1d8beep-25f,
    0x1.7a1148p+0f, -0x1.829fdp-25f,
    0x1.82589ap+0f, -0x1.accc7cp-26f,
    0x1.8ace54p+0f, 0x1.15506ep-27f,
    0x1.93737cp+0f, -0x1.e64744p-25f,
    0x1.9c4918p+0f, 0x1.51f848p-27f,
    0x1.a5503cp+0f, -0x1.b83b54p-25f,
    0x1.ae89fap+0f, -0x1.a94b14p-26f,
    0x1.b7f77p+0f, -0x1.a09438p-25f,
    0x1.c199bep+0f, -0x1.3d56b2p-27f,
    0x1.cb720ep+0f, -0x1.8837ccp-27f,
    0x1.d5818ep+0f, -0x1.822dbcp-27f,
    0x1.dfc974p+0f, -0x1.908c94p-25f,
    0x1.ea4afap+0f, 0x1.52486cp-27f,
    0x1.f50766p+0f, -0x1.246ebp-26f
};

// 2^(j/64) for j < 64, as double hi, lo pairs.
alignas(16) const double kExp2TableF64[128] = {
    0x1p+0, 0x0p+0,
    0x1.02c9a3e778061p+0, -0x1.19083535b085dp-56,
    0x1.059b0d3158574p+0, 0x1.d73e2a475b465p-55,
    0x1.0874518759bc8p+0, 0x1.186be4bb284ffp-57,
    0x1.0b5586cf9890fp+0, 0x1.8a62e4adc610bp-54,
    0x1.0e3ec32d3d1a2p+0, 0x1.03a1727c57b53p-59,
    0x1.11301d0125b51p+0, -0x1.6c51039449b3ap-54,
    0x1.1429aaea92dep+0, -0x1.32fbf9af1369ep-54,
    0x1.172b83c7d517bp+0, -0x1.19041b9d78a76p-55,
    0x1.1a35beb6fcb75p+0, 0x1.e5b4c7b4968e4p-55,
    0x1.1d4873168b9aap+0, 0x1.e016e00a2643cp-54,
    0x1.2063b88628cd6p+0, 0x1.dc775814a8495p-55,
    0x1.2387a6e756238p+0, 0x1.9b07eb6c70573p-54,
    0x1.26b4565e27cddp+0, 0x1.2bd339940e9d9p-55,
    0x1.29e9df51fdee1p+0, 0x1.612e8afad1255p-55,
    0x1.2d285a6e4030bp+0, 0x1.0024754db41d5p-54,
    0x1.306fe0a31b715p+0, 0x1.6f46ad23182e4p-55,
    0x1.33c08b26416ffp+0, 0x1.32721843659a6p-54,
    0x1.371a7373aa9cbp+0, -0x1.63aeabf42eae2p-54,
    0x1.3a7db34e59ff7p+0, -0x1.5e436d661f5e3p-56,
    0x1.3dea64c123422p+0, 0x1.ada0911f09ebcp-55,
    0x1.4160a21f72e2ap+0, -0x1.ef3691c309278p-58,
    0x1.44e086061892dp+0, 0x1.89b7a04ef80dp-59,
    0x1.486a2b5c13cdp+0, 0x1.3c1a3b69062fp-56,
    0x1.4bfdad5362a27p+0, 0x1.d4397afec42e2p-56,
    0x1.4f9b2769d2ca7p+0, -0x1.4b309d25957e3p-54,
    0x1.5342b569d4f82p+0, -0x1.07abe1db13cadp-55,
    0x1.56f4736b527dap+0, 0x1.9bb2c011d93adp-54,
    0x1.5ab07dd485429p+0, 0x1.6324c054647adp-54,
    0x1.5e76f15ad2148p+0, 0x1.ba6f93080e65ep-54,
    0x1.6247eb03a5585p+0, -0x1.383c17e40b497p-54,
    0x1.6623882552225p+0, -0x1.bb60987591c34p-54,
    0x1.6a09e667f3bcdp+0, -0x1.bdd3413b26456p-54,
    0x1.6dfb23c651a2fp+0, -0x1.bbe3a683c88abp-57,
    0x1.71f75e8ec5f74p+0, -0x1.16e4786887a99p-55,
    0x1.75feb564267c9p+0, -0x1.0245957316dd3p-54,
    0x1.7a11473eb0187p+0, -0x1.41577ee04992fp-55,
    0x1.7e2f336cf4e62p+0, 0x1.05d02ba15797ep-56,
    0x1.82589994cce13p+0, -0x1.d4c1dd41532d8p-54,
    0x1.868d99b4492edp+0, -0x1.fc6f89bd4f6bap-54,
    0x1.8ace5422aa0dbp+0, 0x1.6e9f156864b27p-54,
    0x1.8f1ae99157736p+0, 0x1.5cc13a2e3976cp-55,
    0x1.93737b0cdc5e5p+0, -0x1.75fc781b57ebcp-57,
    0x1.97d829fde4e5p+0, -0x1.d185b7c1b85d1p-54,
    0x1.9c49182a3f09p+0, 0x1.c7c46b071f2bep-56,
    0x1.a0c667b5de565p+0, -0x1.359495d1cd533p-54,
    0x1.a5503b23e255dp+0, -0x1.d2f6edb8d41e1p-54,
    0x1.a9e6b5579fdbfp+0, 0x1.0fac90ef7fd31p-54,
    0x1.ae89f995ad3adp+0, 0x1.7a1cd345dcc81p-54,
    0x1.b33a2b84f15fbp+0, -0x1.2805e3084d708p-57,
    0x1.b7f76f2fb5e47p+0, -0x1.5584f7e54ac3bp-56,
    0x1.bcc1e904bc1d2p+0, 0x1.23dd07a2d9e84p-55,
    0x1.c199bdd85529cp+0, 0x1.11065895048ddp-55,
    0x1.c67f12e57d14bp+0, 0x1.2884dff483cadp-54,
    0x1.cb720dcef9069p+0, 0x1.503cbd1e949dbp-56,
    0x1.d072d4a07897cp+0, -0x1.cbc3743797a9cp-54,
    0x1.d5818dcfba487p+0, 0x1.2ed02d75b3707p-55,
    0x1.da9e603db3285p+0, 0x1.c2300696db532p-54,
    0x1.dfc97337b9b5fp+0, -0x1.1a5cd4f184b5cp-54,
    0x1.e502ee78b3ff6p+0, 0x1.39e8980a9cc8fp-55,
    0x1.ea4afa2a490dap+0, -0x1.e9c23179c2893p-54,
    0x1.efa1bee615a27p+0, 0x1.dc7f486a4b6bp-54,
    0x1.f50765b6e454p+0, 0x1.9d3e12dd8a18bp-54,
    0x1.fa7c1819e90d8p+0, 0x1.74853f3a5931ep-55
};

// Max error, measured (qemu) against the float64 exp as reference: 0.5231 ULP over every 13th float
// of [-104, 0] (86 million inputs), 0.5248 ULP over every 13th float of [0, 88.8], and 0.5075 ULP
// over every input whose result is subnormal (a subnormal result's ULP is 2^-149). Bound: 0.53 ULP
// (test/native/neon_exp_test.cpp holds it to that).
SOFTMAX_NEON_INLINE float32x4_t exp_f32x4(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-104.0f);
  const float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), vdupq_n_f32(89.0f));  // NaN stays NaN
  const int32x4_t k = vcvtnq_s32_f32(vmulq_f32(xc, vdupq_n_f32(0x1.715476p+5f)));  // 32/ln2
  const float32x4_t kf = vcvtq_f32_s32(k);
  float32x4_t r = vfmsq_f32(xc, kf, vdupq_n_f32(0x1.62e43p-6f));  // ln2/32 hi: exact
  r = vfmsq_f32(r, kf, vdupq_n_f32(-0x1.05c61p-34f));             // ln2/32 lo
  float32x4_t q = vfmaq_f32(vdupq_n_f32(0x1.5555bcp-3f), vdupq_n_f32(0x1.55559ap-5f), r);
  q = vfmaq_f32(vdupq_n_f32(0x1p-1f), q, r);
  const float32x4_t p = vfmaq_f32(r, q, vmulq_f32(r, r));  // exp(r) - 1
  const int32x4_t j = vandq_s32(k, vdupq_n_s32(31));
  const int32x4_t e = vshrq_n_s32(k, 5);  // floor(k / 32)
  const float32x2_t t0 = vld1_f32(kExp2TableF32 + 2 * vgetq_lane_s32(j, 0));
  const float32x2_t t1 = vld1_f32(kExp2TableF32 + 2 * vgetq_lane_s32(j, 1));
  const float32x2_t t2 = vld1_f32(kExp2TableF32 + 2 * vgetq_lane_s32(j, 2));
  const float32x2_t t3 = vld1_f32(kExp2TableF32 + 2 * vgetq_lane_s32(j, 3));
  const float32x4_t t01 = vcombine_f32(t0, t1), t23 = vcombine_f32(t2, t3);
  const float32x4_t thi = vuzp1q_f32(t01, t23), tlo = vuzp2q_f32(t01, t23);
  const float32x4_t small = vfmaq_f32(tlo, thi, p);  // T_hi p + T_lo, |small| < 0.023
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t scale = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e, bias), 23));
  float32x4_t y = vmulq_f32(vaddq_f32(thi, small), scale);
  const uint32x4_t sub = vcleq_s32(e, vdupq_n_s32(-126));
  const uint32x4_t big = vcgeq_s32(e, vdupq_n_s32(128));
  if (vmaxvq_u32(vorrq_u32(sub, big)) != 0) {
    // Subnormal range (and the lowest normal binade, same spacing): v = value * 2^149 =
    // 2^m (T_hi + small), m = e + 149 in [-2, 23], v < 2^24; result = round(v) * 2^-149.
    const int32x4_t m = vaddq_s32(e, vdupq_n_s32(149));
    const float32x4_t sm = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(m, bias), 23));
    const float32x4_t vhi = vmulq_f32(thi, sm), vlo = vmulq_f32(small, sm);  // both exact
    const float32x4_t ihi = vrndnq_f32(vhi);
    const float32x4_t rem = vaddq_f32(vsubq_f32(vhi, ihi), vlo);  // vhi - ihi is exact
    const float32x4_t iadj = vrndnq_f32(rem);                     // -1, 0 or 1
    const float32x4_t ysub = vmulq_f32(vaddq_f32(ihi, iadj), vdupq_n_f32(0x1p-149f));
    // e = 128: scale by 2^127, then by 2.
    const float32x4_t s127 = vdupq_n_f32(0x1p+127f);
    const float32x4_t ybig = vmulq_f32(vmulq_f32(vaddq_f32(thi, small), s127), vdupq_n_f32(2.0f));
    y = vbslq_f32(sub, ysub, vbslq_f32(big, ybig, y));
  }
  return vbslq_f32(vcltq_f32(x, lo), vdupq_n_f32(0.0f), y);
}

// Max error, measured (qemu) against binary128 expl as reference on 4 million inputs spread over
// [-745.25, 0] (uniform, log-uniform in |x|, the subnormal range) and [0, 709.78]: 0.5113 ULP,
// 0.5020 ULP on subnormal results (a subnormal result's ULP is 2^-1074). Bound: 0.52 ULP.
SOFTMAX_NEON_INLINE float64x2_t exp_f64x2(float64x2_t x) {
  const float64x2_t lo = vdupq_n_f64(-745.2);
  const float64x2_t xc = vminq_f64(vmaxq_f64(x, lo), vdupq_n_f64(710.0));  // NaN stays NaN
  const int64x2_t k = vcvtnq_s64_f64(vmulq_f64(xc, vdupq_n_f64(0x1.71547652b82fep+6)));  // 64/ln2
  const float64x2_t kf = vcvtq_f64_s64(k);
  float64x2_t r = vfmsq_f64(xc, kf, vdupq_n_f64(0x1.62e42fefa39efp-7));  // ln2/64 hi: exact
  r = vfmsq_f64(r, kf, vdupq_n_f64(0x1.abc9e3b39803fp-62));              // ln2/64 lo
  float64x2_t q = vfmaq_f64(vdupq_n_f64(0x1.11112150f2623p-7), vdupq_n_f64(0x1.6c16d1abf7fb7p-10), r);
  q = vfmaq_f64(vdupq_n_f64(0x1.5555555555146p-5), q, r);
  q = vfmaq_f64(vdupq_n_f64(0x1.5555555554d36p-3), q, r);
  q = vfmaq_f64(vdupq_n_f64(0x1p-1), q, r);
  const float64x2_t p = vfmaq_f64(r, q, vmulq_f64(r, r));  // exp(r) - 1
  const int64x2_t j = vandq_s64(k, vdupq_n_s64(63));
  const int64x2_t e = vshrq_n_s64(k, 6);  // floor(k / 64)
  const float64x2_t t0 = vld1q_f64(kExp2TableF64 + 2 * vgetq_lane_s64(j, 0));
  const float64x2_t t1 = vld1q_f64(kExp2TableF64 + 2 * vgetq_lane_s64(j, 1));
  const float64x2_t thi = vzip1q_f64(t0, t1), tlo = vzip2q_f64(t0, t1);
  const float64x2_t small = vfmaq_f64(tlo, thi, p);  // T_hi p + T_lo, |small| < 0.012
  const int64x2_t bias = vdupq_n_s64(1023);
  const float64x2_t scale = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(e, bias), 52));
  float64x2_t y = vmulq_f64(vaddq_f64(thi, small), scale);
  const uint64x2_t sub = vcleq_s64(e, vdupq_n_s64(-1022));
  const uint64x2_t big = vcgeq_s64(e, vdupq_n_s64(1024));
  const uint64x2_t any = vorrq_u64(sub, big);
  if ((vgetq_lane_u64(any, 0) | vgetq_lane_u64(any, 1)) != 0) {
    // Subnormal range (and the lowest normal binade): v = value * 2^1074 = 2^m (T_hi + small),
    // m = e + 1074 in [-2, 52], v < 2^53; result = round(v) * 2^-1074.
    const int64x2_t m = vaddq_s64(e, vdupq_n_s64(1074));
    const float64x2_t sm = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(m, bias), 52));
    const float64x2_t vhi = vmulq_f64(thi, sm), vlo = vmulq_f64(small, sm);  // both exact
    const float64x2_t ihi = vrndnq_f64(vhi);
    const float64x2_t rem = vaddq_f64(vsubq_f64(vhi, ihi), vlo);  // vhi - ihi is exact
    const float64x2_t iadj = vrndnq_f64(rem);                     // -1, 0 or 1
    const float64x2_t ysub = vmulq_f64(vaddq_f64(ihi, iadj), vdupq_n_f64(0x1p-1074));
    const float64x2_t s1023 = vdupq_n_f64(0x1p+1023);
    const float64x2_t ybig = vmulq_f64(vmulq_f64(vaddq_f64(thi, small), s1023), vdupq_n_f64(2.0));
    y = vbslq_f64(sub, ysub, vbslq_f64(big, ybig, y));
  }
  return vbslq_f64(vcltq_f64(x, lo), vdupq_n_f64(0.0), y);
}

void exp_f32_neon(float* v, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t a = exp_f32x4(vld1q_f32(v + i));
    const float32x4_t b = exp_f32x4(vld1q_f32(v + i + 4));
    vst1q_f32(v + i, a);
    vst1q_f32(v + i + 4, b);
  }
  for (; i + 4 <= n; i += 4) vst1q_f32(v + i, exp_f32x4(vld1q_f32(v + i)));
  if (i < n) {
    float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t j = 0; i + j < n; ++j) buf[j] = v[i + j];
    vst1q_f32(buf, exp_f32x4(vld1q_f32(buf)));
    for (size_t j = 0; i + j < n; ++j) v[i + j] = buf[j];
  }
}

void exp_f64_neon(double* v, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float64x2_t a = exp_f64x2(vld1q_f64(v + i));
    const float64x2_t b = exp_f64x2(vld1q_f64(v + i + 2));
    vst1q_f64(v + i, a);
    vst1q_f64(v + i + 2, b);
  }
  for (; i + 2 <= n; i += 2) vst1q_f64(v + i, exp_f64x2(vld1q_f64(v + i)));
  if (i < n) {
    double buf[2] = {v[i], 0.0};
    vst1q_f64(buf, exp_f64x2(vld1q_f64(buf)));
    v[i] = buf[0];
  }
}

// ---------------------------------------------------------------------------------------------
// scores, small K: dot products along D with the packed transpose Wt (K×D).

// s[r*K + c] = bias[c] + x_r · wt_c for r < R, c < C; x rows have stride D, wt rows stride ldt.
template <typename T, int R, int C>
void dot_tile(const T* x, size_t D, const T* wt, size_t ldt, const T* bias, T* s, size_t K) {
  typedef Neon<T> N;
  typedef typename N::V V;
  V acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = N::zero();
  size_t d = 0;
  for (; d + N::L <= D; d += N::L) {
    V xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xv[r] = N::load(x + r * D + d);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const V w = N::load(wt + c * ldt + d);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = N::fma(acc[r][c], xv[r], w);
    }
  }
  T tail[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) tail[r][c] = T(0);
  for (; d < D; ++d)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) tail[r][c] += x[r * D + d] * wt[c * ldt + d];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      s[r * K + c] = (bias ? bias[c] : T(0)) + (N::hsum(acc[r][c]) + tail[r][c]);
}

template <typename T, int R>
void dot_tile_c(size_t C, const T* x, size_t D, const T* wt, size_t ldt, const T* bias, T* s, size_t K) {
  switch (C) {
    case 1: dot_tile<T, R, 1>(x, D, wt, ldt, bias, s, K); break;
    case 2: dot_tile<T, R, 2>(x, D, wt, ldt, bias, s, K); break;
    case 3: dot_tile<T, R, 3>(x, D, wt, ldt, bias, s, K); break;
    case 4: dot_tile<T, R, 4>(x, D, wt, ldt, bias, s, K); break;
    default: dot_tile<T, R, 5>(x, D, wt, ldt, bias, s, K); break;
  }
}

// Scores of columns [kbeg, kend) of every row, by dot products with rows of Wt.
template <typename T>
void scores_dot(const T* X, size_t rows, size_t D, const T* Wt, size_t ldt, const T* bias, T* S,
                size_t K, size_t kbeg, size_t kend) {
  for (size_t r0 = 0; r0 < rows; r0 += kRowTile) {
    const size_t R = rows - r0 < size_t(kRowTile) ? rows - r0 : size_t(kRowTile);
    const T* x = X + r0 * D;
    T* s = S + r0 * K;
    for (size_t k = kbeg; k < kend;) {
      const size_t C = class_group(kend - k);
      const T* b = bias ? bias + k : nullptr;
      switch (R) {
        case 1: dot_tile_c<T, 1>(C, x, D, Wt + k * ldt, ldt, b, s + k, K); break;
        case 2: dot_tile_c<T, 2>(C, x, D, Wt + k * ldt, ldt, b, s + k, K); break;
        case 3: dot_tile_c<T, 3>(C, x, D, Wt + k * ldt, ldt, b, s + k, K); break;
        default: dot_tile_c<T, 4>(C, x, D, Wt + k * ldt, ldt, b, s + k, K); break;
      }
      k += C;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// scores, large K: GEMM broadcast form with W (D×K), R rows by CV vectors of columns.

template <typename T, int R, int CV, int J>
SOFTMAX_NEON_INLINE void gemm_lane_step(typename Neon<T>::V (&acc)[R][CV],
                                        const typename Neon<T>::V (&xv)[R], const T* wrow) {
  typedef Neon<T> N;
  typename N::V w[CV];
#pragma GCC unroll 8
  for (int c = 0; c < CV; ++c) w[c] = N::load(wrow + c * N::L);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) acc[r][c] = N::template fma_lane<J>(acc[r][c], w[c], xv[r]);
}

// s[r*K + j] = bias[j] + sum_d x[r*D + d] * w[d*K + j] for r < R, j < CV*lanes.
template <typename T, int R, int CV>
void gemm_tile(const T* x, size_t D, const T* w, size_t K, const T* bias, T* s) {
  typedef Neon<T> N;
  typedef typename N::V V;
  V acc[R][CV];
#pragma GCC unroll 8
  for (int c = 0; c < CV; ++c) {
    const V b0 = bias ? N::load(bias + c * N::L) : N::zero();
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][c] = b0;
  }
  size_t d = 0;
  for (; d + N::L <= D; d += N::L) {
    V xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) xv[r] = N::load(x + r * D + d);
    const T* wd = w + d * K;
    gemm_lane_step<T, R, CV, 0>(acc, xv, wd);
    gemm_lane_step<T, R, CV, 1>(acc, xv, wd + K);
    if constexpr (N::L == 4) {
      gemm_lane_step<T, R, CV, 2>(acc, xv, wd + 2 * K);
      gemm_lane_step<T, R, CV, 3>(acc, xv, wd + 3 * K);
    }
  }
  for (; d < D; ++d) {
    V wv[CV];
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) wv[c] = N::load(w + d * K + c * N::L);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V xs = N::load_dup(x + r * D + d);
#pragma GCC unroll 8
      for (int c = 0; c < CV; ++c) acc[r][c] = N::fma(acc[r][c], wv[c], xs);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) N::store(s + r * K + c * N::L, acc[r][c]);
}

template <typename T, int R>
void gemm_tile_cv(size_t CV, const T* x, size_t D, const T* w, size_t K, const T* bias, T* s) {
  switch (CV) {
    case 1: gemm_tile<T, R, 1>(x, D, w, K, bias, s); break;
    case 2: gemm_tile<T, R, 2>(x, D, w, K, bias, s); break;
    case 3: gemm_tile<T, R, 3>(x, D, w, K, bias, s); break;
    default: gemm_tile<T, R, 4>(x, D, w, K, bias, s); break;
  }
}

template <typename T>
void scores_gemm(const T* X, size_t rows, WeightsView<T> wv, const T* bias, T* S) {
  typedef Neon<T> N;
  const size_t D = wv.D, K = wv.K;
  const size_t Kv = K / N::L * N::L;  // columns covered by whole vectors
  // Column panels outside, rows inside: the panel of W (D × up to 4 vectors) stays in L1/L2
  // while every row of the block passes over it.
  for (size_t k0 = 0; k0 < Kv;) {
    const size_t left = (Kv - k0) / N::L;
    const size_t CV = left < 4 ? left : 4;
    const T* w = wv.W + k0;
    const T* b = bias ? bias + k0 : nullptr;
    size_t r0 = 0;
    for (; r0 + kRowTile <= rows; r0 += kRowTile)
      gemm_tile_cv<T, 4>(CV, X + r0 * D, D, w, K, b, S + r0 * K + k0);
    switch (rows - r0) {
      case 1: gemm_tile_cv<T, 1>(CV, X + r0 * D, D, w, K, b, S + r0 * K + k0); break;
      case 2: gemm_tile_cv<T, 2>(CV, X + r0 * D, D, w, K, b, S + r0 * K + k0); break;
      case 3: gemm_tile_cv<T, 3>(CV, X + r0 * D, D, w, K, b, S + r0 * K + k0); break;
      default: break;
    }
    k0 += CV * N::L;
  }
  // The last K % lanes columns: dot products with their rows of Wt.
  if (Kv < K) scores_dot(X, rows, D, wv.Wt, wv.ldt, bias, S, K, Kv, K);
}

template <typename T>
void scores_neon(const T* X, size_t rows, WeightsView<T> wv, const T* bias, T* S) {
  if (rows == 0) return;
  if (wv.K >= kLargeK)
    scores_gemm(X, rows, wv, bias, S);
  else
    scores_dot(X, rows, wv.D, wv.Wt, wv.ldt, bias, S, wv.K, 0, wv.K);
}

// ---------------------------------------------------------------------------------------------
// grad_update, layout KD (and the K % lanes tail of DK): a[c*ld + j] += sum_r G[r][k+c] X[r][d+j].

// C classes by VN vectors of d: x = X + d (stride D), g = G + k (stride K), a = acc of (k, d).
template <typename T, int C, int VN>
void kd_tile(const T* x, size_t D, size_t rows, const T* g, size_t K, T* a, size_t ld) {
  typedef Neon<T> N;
  typedef typename N::V V;
  V acc[C][VN];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
    for (int v = 0; v < VN; ++v) acc[c][v] = N::load(a + c * ld + v * N::L);
  for (size_t r = 0; r < rows; ++r) {
    V xv[VN];
#pragma GCC unroll 8
    for (int v = 0; v < VN; ++v) xv[v] = N::load(x + r * D + v * N::L);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const V gv = N::load_dup(g + r * K + c);
#pragma GCC unroll 8
      for (int v = 0; v < VN; ++v) acc[c][v] = N::fma(acc[c][v], xv[v], gv);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
    for (int v = 0; v < VN; ++v) N::store(a + c * ld + v * N::L, acc[c][v]);
}

template <typename T, int VN>
void kd_tile_c(size_t C, const T* x, size_t D, size_t rows, const T* g, size_t K, T* a,
               size_t ld) {
  switch (C) {
    case 1: kd_tile<T, 1, VN>(x, D, rows, g, K, a, ld); break;
    case 2: kd_tile<T, 2, VN>(x, D, rows, g, K, a, ld); break;
    case 3: kd_tile<T, 3, VN>(x, D, rows, g, K, a, ld); break;
    case 4: kd_tile<T, 4, VN>(x, D, rows, g, K, a, ld); break;
    default: kd_tile<T, 5, VN>(x, D, rows, g, K, a, ld); break;
  }
}

// a[(k - kbeg)*ld + (d - dbeg)] += sum_r G[r*K + k] * X[r*D + d] for k in [kbeg, kend),
// d in [dbeg, dend).
template <typename T>
void grad_kd(const T* X, size_t rows, size_t D, const T* G, size_t K, size_t kbeg, size_t kend,
             size_t dbeg, size_t dend, T* a, size_t ld) {
  typedef Neon<T> N;
  size_t d = dbeg;
  // Chunks of D outside, class groups inside: the chunk of the X block (rows × 4 vectors) is
  // read from L1 by every class group.
  for (; d + 4 * N::L <= dend; d += 4 * N::L)
    for (size_t k = kbeg; k < kend;) {
      const size_t C = class_group(kend - k);
      kd_tile_c<T, 4>(C, X + d, D, rows, G + k, K, a + (k - kbeg) * ld + (d - dbeg), ld);
      k += C;
    }
  for (; d + N::L <= dend; d += N::L)
    for (size_t k = kbeg; k < kend;) {
      const size_t C = class_group(kend - k);
      kd_tile_c<T, 1>(C, X + d, D, rows, G + k, K, a + (k - kbeg) * ld + (d - dbeg), ld);
      k += C;
    }
  for (; d < dend; ++d)
    for (size_t k = kbeg; k < kend; ++k) {
      T s = T(0);
      for (size_t r = 0; r < rows; ++r) s += G[r * K + k] * X[r * D + d];
      a[(k - kbeg) * ld + (d - dbeg)] += s;
    }
}

// ---------------------------------------------------------------------------------------------
// grad_update, layout DK: acc[d*K + k] += sum_r X[r][d] G[r][k]; RD values of d by CV vectors of k.

template <typename T, int RD, int CV>
void dk_tile(const T* x, size_t D, size_t rows, const T* g, size_t K, T* a) {
  typedef Neon<T> N;
  typedef typename N::V V;
  V acc[RD][CV];
#pragma GCC unroll 8
  for (int i = 0; i < RD; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) acc[i][c] = N::load(a + i * K + c * N::L);
  for (size_t r = 0; r < rows; ++r) {
    V gv[CV];
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) gv[c] = N::load(g + r * K + c * N::L);
    const T* xr = x + r * D;
    if constexpr (RD == 4 && N::L == 4) {
      const V xv = N::load(xr);
#pragma GCC unroll 8
      for (int c = 0; c < CV; ++c) {
        acc[0][c] = N::template fma_lane<0>(acc[0][c], gv[c], xv);
        acc[1][c] = N::template fma_lane<1>(acc[1][c], gv[c], xv);
        acc[2][c] = N::template fma_lane<2>(acc[2][c], gv[c], xv);
        acc[3][c] = N::template fma_lane<3>(acc[3][c], gv[c], xv);
      }
    } else if constexpr (RD == 4 && N::L == 2) {
      const V x01 = N::load(xr);
      const V x23 = N::load(xr + 2);
#pragma GCC unroll 8
      for (int c = 0; c < CV; ++c) {
        acc[0][c] = N::template fma_lane<0>(acc[0][c], gv[c], x01);
        acc[1][c] = N::template fma_lane<1>(acc[1][c], gv[c], x01);
        acc[2][c] = N::template fma_lane<0>(acc[2][c], gv[c], x23);
        acc[3][c] = N::template fma_lane<1>(acc[3][c], gv[c], x23);
      }
    } else {
#pragma GCC unroll 8
      for (int i = 0; i < RD; ++i) {
        const V xs = N::load_dup(xr + i);
#pragma GCC unroll 8
        for (int c = 0; c < CV; ++c) acc[i][c] = N::fma(acc[i][c], gv[c], xs);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RD; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) N::store(a + i * K + c * N::L, acc[i][c]);
}

template <typename T, int RD>
void dk_tile_cv(size_t CV, const T* x, size_t D, size_t rows, const T* g, size_t K, T* a) {
  switch (CV) {
    case 1: dk_tile<T, RD, 1>(x, D, rows, g, K, a); break;
    case 2: dk_tile<T, RD, 2>(x, D, rows, g, K, a); break;
    case 3: dk_tile<T, RD, 3>(x, D, rows, g, K, a); break;
    default: dk_tile<T, RD, 4>(x, D, rows, g, K, a); break;
  }
}

template <typename T>
void grad_dk(const T* X, size_t rows, size_t D, const T* G, size_t K, T* acc) {
  typedef Neon<T> N;
  const size_t Kv = K / N::L * N::L;
  // Column panels outside, d inside: the panel of the G block (rows × up to 4 vectors) stays in
  // L1 while the tiles walk down D.
  for (size_t k0 = 0; k0 < Kv;) {
    const size_t left = (Kv - k0) / N::L;
    const size_t CV = left < 4 ? left : 4;
    size_t d0 = 0;
    for (; d0 + 4 <= D; d0 += 4) dk_tile_cv<T, 4>(CV, X + d0, D, rows, G + k0, K, acc + d0 * K + k0);
    switch (D - d0) {
      case 1: dk_tile_cv<T, 1>(CV, X + d0, D, rows, G + k0, K, acc + d0 * K + k0); break;
      case 2: dk_tile_cv<T, 2>(CV, X + d0, D, rows, G + k0, K, acc + d0 * K + k0); break;
      case 3: dk_tile_cv<T, 3>(CV, X + d0, D, rows, G + k0, K, acc + d0 * K + k0); break;
      default: break;
    }
    k0 += CV * N::L;
  }
  if (Kv == K) return;
  // The last K % lanes columns are strided in DK: accumulate them along d (contiguous in X) into a
  // small KD scratch, then add it into acc.
  constexpr size_t kChunk = 64;
  T tmp[(N::L - 1) * kChunk];
  const size_t kt = K - Kv;
  for (size_t d0 = 0; d0 < D; d0 += kChunk) {
    const size_t len = D - d0 < kChunk ? D - d0 : kChunk;
    for (size_t i = 0; i < kt * kChunk; ++i) tmp[i] = T(0);
    grad_kd(X, rows, D, G, K, Kv, K, d0, d0 + len, tmp, kChunk);
    for (size_t j = 0; j < len; ++j)
      for (size_t c = 0; c < kt; ++c) acc[(d0 + j) * K + Kv + c] += tmp[c * kChunk + j];
  }
}

template <typename T>
void grad_update_neon(const T* X, size_t rows, size_t D, const T* G, size_t K, T* acc, size_t ld,
                      GradLayout layout) {
  if (rows == 0 || D == 0 || K == 0) return;
  if (layout == GradLayout::KD)
    grad_kd(X, rows, D, G, K, 0, K, 0, D, acc, ld);
  else
    grad_dk(X, rows, D, G, K, acc);
}

GradLayout grad_layout_neon(size_t, size_t K) {
  return K >= kLargeK ? GradLayout::DK : GradLayout::KD;
}

// The table entries, by the names <op>_<dtype>_neon.
void scores_f32_neon(const float* X, size_t rows, WeightsView<float> w, const float* bias,
                     float* S, const float*, size_t) {
  scores_neon<float>(X, rows, w, bias, S);
}
void scores_f64_neon(const double* X, size_t rows, WeightsView<double> w, const double* bias,
                     double* S, const double*, size_t) {
  scores_neon<double>(X, rows, w, bias, S);
}
// No prefetch of the next rows here: NEON's speed cannot be measured on this project's machines
// (qemu), so nothing tuned for it is claimed.
void grad_update_f32_neon(const float* X, size_t rows, size_t D, const float* G, size_t K,
                          float* acc, size_t ld, GradLayout layout, const float*, size_t) {
  grad_update_neon<float>(X, rows, D, G, K, acc, ld, layout);
}
void grad_update_f64_neon(const double* X, size_t rows, size_t D, const double* G, size_t K,
                          double* acc, size_t ld, GradLayout layout, const double*, size_t) {
  grad_update_neon<double>(X, rows, D, G, K, acc, ld, layout);
}
GradLayout grad_layout_f32_neon(size_t D, size_t K) { return grad_layout_neon(D, K); }
GradLayout grad_layout_f64_neon(size_t D, size_t K) { return grad_layout_neon(D, K); }

}  // namespace

const LinearKernels<float> linear_f32_neon = {
    "neon", scores_f32_neon, exp_f32_neon, grad_update_f32_neon, grad_layout_f32_neon,
    row_max_shift_f32_scalar, row_sums_f32_scalar, scale_rows_f32_scalar, add_columns_f32_scalar, false, nullptr};
const LinearKernels<double> linear_f64_neon = {
    "neon", scores_f64_neon, exp_f64_neon, grad_update_f64_neon, grad_layout_f64_neon,
    row_max_shift_f64_scalar, row_sums_f64_scalar, scale_rows_f64_scalar, add_columns_f64_scalar, false, nullptr};

}  // namespace softmax_simd
