// AVX2 + FMA kernels of the labelled Gram matrix (x86-64). This file alone is compiled with
// -mavx2 -mfma; dispatch calls it only on CPUs that have both.
//
// Rules for this translation unit (see kernels.hpp): every helper has internal linkage (anonymous
// namespace), and nothing here uses std:: templates or inline library functions.
//
// The tile kernel is the outer-product form of gram_simd.inl (op_tile) over the traits below: 6
// rows of Xi broadcast against 2 vectors of a packed, transposed panel of Xj = 12 accumulators, 8
// loads per 12 FMAs, all from L1. On Zen 3, side by side with the dot form it replaced (4 × 3
// pairs, 7 loads of which 3 stream from L2, then horizontal sums; 4096 × 784, bench/ab.cjs) it
// takes 0.96× the time on one thread and 0.93× on two (float64 0.81×), but 1.13× at 512 × 784 where
// diagonal tiles dominate; 4 rows × 3 vectors measured the same within noise
// (float32 4% faster, float64 9% slower). Its float32 error is about twice the dot form's (one
// chain of up to 256 products per pair instead of 8 lanes of up to 128), well inside the bound.
// Here also the scale and the mirror.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "gram.hpp"

namespace softmax_simd {
namespace {

alignas(32) const int32_t kMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
alignas(32) const int64_t kMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

// The outer-product tile (gram_simd.inl): 6 rows of Xi × 2 vectors of packed Xj = 12 accumulators,
// 2 panel loads and 6 broadcasts per 12 FMAs, all from L1 (a 256-long slice of a 16-row float32 or
// 8-row float64 panel is 16 KiB).
struct OpShape {
  static constexpr int kVectors = 2;
  static constexpr int kRows = 6;
  static constexpr size_t kSlice = kGramChainOp;
};

// Tail masks: the first n lanes set.
inline __m256i mask32(size_t n) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask32 + 8 - n)); }
inline __m256i mask64(size_t n) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask64 + 4 - n)); }

struct OpF32 : OpShape {
  using T = float;
  using V = __m256;
  static constexpr size_t W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static V loadm(const T* p, size_t n) { return _mm256_maskload_ps(p, mask32(n)); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static void store(T* p, V v) { _mm256_store_ps(p, v); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static void flush(double* c, V v, size_t n, bool first) {
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    if (n == 8) {
      if (!first) {
        lo = _mm256_add_pd(_mm256_loadu_pd(c), lo);
        hi = _mm256_add_pd(_mm256_loadu_pd(c + 4), hi);
      }
      _mm256_storeu_pd(c, lo);
      _mm256_storeu_pd(c + 4, hi);
      return;
    }
    // A half with no columns is not touched at all (c + 4 may lie past C's end).
    const __m256i m0 = mask64(n < 4 ? n : 4);
    if (!first) lo = _mm256_add_pd(_mm256_maskload_pd(c, m0), lo);
    _mm256_maskstore_pd(c, m0, lo);
    if (n > 4) {
      const __m256i m1 = mask64(n - 4);
      if (!first) hi = _mm256_add_pd(_mm256_maskload_pd(c + 4, m1), hi);
      _mm256_maskstore_pd(c + 4, m1, hi);
    }
  }
  static void transpose(V r[8]) {
    V t[8], u[8];
#pragma GCC unroll 4
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
      t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
#pragma GCC unroll 2
    for (int k = 0; k < 8; k += 4) {
      u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
      u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
      u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
      u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
      r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
    }
  }
};

struct OpF64 : OpShape {
  using T = double;
  using V = __m256d;
  static constexpr size_t W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static V loadm(const T* p, size_t n) { return _mm256_maskload_pd(p, mask64(n)); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static void store(T* p, V v) { _mm256_store_pd(p, v); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static void flush(double* c, V v, size_t n, bool first) {
    if (n == 4) {
      _mm256_storeu_pd(c, first ? v : _mm256_add_pd(_mm256_loadu_pd(c), v));
      return;
    }
    const __m256i m = mask64(n);
    _mm256_maskstore_pd(c, m, first ? v : _mm256_add_pd(_mm256_maskload_pd(c, m), v));
  }
  static void transpose(V r[4]) {
    const V t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const V t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
};

#include "gram_simd.inl"

void gram_tile_f32_avx2(const float* Xi, size_t ni, const float* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  op_tile<OpF32>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

void gram_tile_f64_avx2(const double* Xi, size_t ni, const double* Xj, size_t nj, size_t len,
                        size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  op_tile<OpF64>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

// The scale, entry by entry the expression of the scalar code: (double(y_i) · double(y_j)) · s
// rounded once to float32 (cvtpd_ps rounds to nearest like the cast), or (y_i · y_j) · s.
void scale_f32(const double* C, size_t ldc, const float* yi, size_t ni, const float* yj,
                         size_t nj, bool upper, float* out, size_t ldo) {
  for (size_t a = 0; a < ni; ++a) {
    const double* c = C + a * ldc;
    float* row = out + a * ldo;
    const double ya = static_cast<double>(yi[a]);
    const __m256d va = _mm256_set1_pd(ya);
    size_t b = upper ? a : 0;
    for (; b + 8 <= nj; b += 8) {
      const __m256d y0 = _mm256_cvtps_pd(_mm_loadu_ps(yj + b));
      const __m256d y1 = _mm256_cvtps_pd(_mm_loadu_ps(yj + b + 4));
      const __m128 r0 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_mul_pd(va, y0), _mm256_loadu_pd(c + b)));
      const __m128 r1 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_mul_pd(va, y1), _mm256_loadu_pd(c + b + 4)));
      _mm256_storeu_ps(row + b, _mm256_set_m128(r1, r0));
    }
    for (; b < nj; ++b) row[b] = static_cast<float>(ya * static_cast<double>(yj[b]) * c[b]);
  }
}

void scale_f64(const double* C, size_t ldc, const double* yi, size_t ni,
                         const double* yj, size_t nj, bool upper, double* out, size_t ldo) {
  for (size_t a = 0; a < ni; ++a) {
    const double* c = C + a * ldc;
    double* row = out + a * ldo;
    const double ya = yi[a];
    const __m256d va = _mm256_set1_pd(ya);
    size_t b = upper ? a : 0;
    for (; b + 4 <= nj; b += 4)
      _mm256_storeu_pd(row + b, _mm256_mul_pd(_mm256_mul_pd(va, _mm256_loadu_pd(yj + b)), _mm256_loadu_pd(c + b)));
    for (; b < nj; ++b) row[b] = (ya * yj[b]) * c[b];
  }
}

// dst[c * ldd + r] = src[r * lds + c] for an 8×8 (float32) or 4×4 (float64) block.
template <typename F>
inline void transpose_block(const typename F::T* src, size_t lds, typename F::T* dst, size_t ldd) {
  typename F::V r[F::W];
#pragma GCC unroll 8
  for (size_t k = 0; k < F::W; ++k) r[k] = F::loadu(src + k * lds);
  F::transpose(r);
#pragma GCC unroll 8
  for (size_t k = 0; k < F::W; ++k) F::storeu(dst + k * ldd, r[k]);
}

// The mirror in whole W×W blocks (with upper, only those wholly above the diagonal), the rest
// (edges, the blocks on the diagonal) entry by entry.
template <typename F>
void mirror(const typename F::T* src, size_t lds, size_t ni, size_t nj, bool upper, typename F::T* dst,
            size_t ldd) {
  constexpr size_t W = F::W;
  const size_t na = ni / W * W, nb = nj / W * W;
  // dst-row blocks outer: W rows of dst are written left to right, each cache line completed by
  // consecutive blocks (the other order leaves every line half written for a whole sweep).
  for (size_t b = 0; b < nb; b += W)
    for (size_t a = 0; a < (upper ? b : na); a += W) transpose_block<F>(src + a * lds + b, lds, dst + b * ldd + a, ldd);
  for (size_t b = 0; b < nj; ++b) {
    const size_t a_end = upper ? b : ni;
    size_t a = b < nb ? (upper ? b / W * W : na) : 0;
    for (; a < a_end; ++a) dst[b * ldd + a] = src[a * lds + b];
  }
}

void mirror_f32(const float* src, size_t lds, size_t ni, size_t nj, bool upper, float* dst,
                          size_t ldd) {
  mirror<OpF32>(src, lds, ni, nj, upper, dst, ldd);
}

void mirror_f64(const double* src, size_t lds, size_t ni, size_t nj, bool upper,
                          double* dst, size_t ldd) {
  mirror<OpF64>(src, lds, ni, nj, upper, dst, ldd);
}

}  // namespace

// Also the scale and mirror of the AVX-512 tables (gram_avx512.cpp): every AVX-512 CPU runs AVX2,
// and these two are bound by memory, not by vector width.
void gram_scale_f32_avx2(const double* C, size_t ldc, const float* yi, size_t ni, const float* yj,
                         size_t nj, bool upper, float* out, size_t ldo) {
  scale_f32(C, ldc, yi, ni, yj, nj, upper, out, ldo);
}
void gram_scale_f64_avx2(const double* C, size_t ldc, const double* yi, size_t ni,
                         const double* yj, size_t nj, bool upper, double* out, size_t ldo) {
  scale_f64(C, ldc, yi, ni, yj, nj, upper, out, ldo);
}
void gram_mirror_f32_avx2(const float* src, size_t lds, size_t ni, size_t nj, bool upper, float* dst,
                          size_t ldd) {
  mirror_f32(src, lds, ni, nj, upper, dst, ldd);
}
void gram_mirror_f64_avx2(const double* src, size_t lds, size_t ni, size_t nj, bool upper,
                          double* dst, size_t ldd) {
  mirror_f64(src, lds, ni, nj, upper, dst, ldd);
}

const GramKernels<float> gram_f32_avx2 = {"avx2", gram_tile_f32_avx2, gram_scale_f32_avx2,
                                          gram_mirror_f32_avx2};
const GramKernels<double> gram_f64_avx2 = {"avx2", gram_tile_f64_avx2, gram_scale_f64_avx2,
                                           gram_mirror_f64_avx2};

}  // namespace softmax_simd
