// Portable kernels of the labelled Gram matrix (every CPU; the reference the SIMD kernels are
// tested against in test/native/gram_test.cpp). Each pair's chunk sum is one running float64 sum
// in increasing d (float32 products are exact in float64), so the value of a pair never depends on
// its place in the tile. Register block of 2×2 pairs to halve the loads.
//
// Every multiply-add goes through madd(): a fused one where the target has it (aarch64), a plain
// one elsewhere, never left to the compiler's contraction, which could fuse one code path and not
// another and so break the bitwise symmetry of Q in float64.
#include <cmath>
#include <cstddef>

#include "gram.hpp"

namespace softmax_simd {
namespace {

inline double madd(double u, double v, double s) {
#if defined(__FP_FAST_FMA)
  return std::fma(u, v, s);
#else
  return u * v + s;
#endif
}

template <typename T>
void put(double* c, double s, bool accumulate) {
  *c = accumulate ? *c + s : s;
}

template <typename T>
void tile_scalar(const T* Xi, size_t ni, const T* Xj, size_t nj, size_t len, size_t ldx, double* C,
                 size_t ldc, bool accumulate, bool upper) {
  size_t a = 0;
  for (; a + 2 <= ni; a += 2) {
    const T* x0 = Xi + a * ldx;
    const T* x1 = x0 + ldx;
    size_t b = upper ? a : 0;
    for (; b + 2 <= nj; b += 2) {
      const T* z0 = Xj + b * ldx;
      const T* z1 = z0 + ldx;
      double s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (size_t d = 0; d < len; ++d) {
        const double u0 = x0[d], u1 = x1[d], v0 = z0[d], v1 = z1[d];
        s00 = madd(u0, v0, s00);
        s01 = madd(u0, v1, s01);
        s10 = madd(u1, v0, s10);
        s11 = madd(u1, v1, s11);
      }
      put<T>(C + a * ldc + b, s00, accumulate);
      put<T>(C + a * ldc + b + 1, s01, accumulate);
      put<T>(C + (a + 1) * ldc + b, s10, accumulate);
      put<T>(C + (a + 1) * ldc + b + 1, s11, accumulate);
    }
    for (; b < nj; ++b) {
      const T* z0 = Xj + b * ldx;
      double s0 = 0, s1 = 0;
      for (size_t d = 0; d < len; ++d) {
        const double v = z0[d];
        s0 = madd(double(x0[d]), v, s0);
        s1 = madd(double(x1[d]), v, s1);
      }
      put<T>(C + a * ldc + b, s0, accumulate);
      put<T>(C + (a + 1) * ldc + b, s1, accumulate);
    }
  }
  for (; a < ni; ++a) {
    const T* x0 = Xi + a * ldx;
    for (size_t b = upper ? a : 0; b < nj; ++b) {
      const T* z0 = Xj + b * ldx;
      double s = 0;
      for (size_t d = 0; d < len; ++d) s = madd(double(x0[d]), double(z0[d]), s);
      put<T>(C + a * ldc + b, s, accumulate);
    }
  }
}

void gram_tile_f32_scalar(const float* Xi, size_t ni, const float* Xj, size_t nj, size_t len,
                          size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  tile_scalar<float>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

void gram_tile_f64_scalar(const double* Xi, size_t ni, const double* Xj, size_t nj, size_t len,
                          size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  tile_scalar<double>(Xi, ni, Xj, nj, len, ldx, C, ldc, accumulate, upper);
}

inline double scale_one(float yi, float yj, double s) {
  return static_cast<double>(yi) * static_cast<double>(yj) * s;  // y_i·y_j exact in double
}
inline double scale_one(double yi, double yj, double s) { return (yi * yj) * s; }

template <typename T>
void scale_rows(const double* C, size_t ldc, const T* yi, size_t ni, const T* yj, size_t nj,
                bool upper, T* out, size_t ldo) {
  for (size_t a = 0; a < ni; ++a) {
    const double* c = C + a * ldc;
    T* row = out + a * ldo;
    for (size_t b = upper ? a : 0; b < nj; ++b) row[b] = static_cast<T>(scale_one(yi[a], yj[b], c[b]));
  }
}

template <typename T>
void mirror_rows(const T* src, size_t lds, size_t ni, size_t nj, bool upper, T* dst, size_t ldd) {
  for (size_t b = 0; b < nj; ++b) {
    T* row = dst + b * ldd;
    const size_t a_end = upper ? b : ni;
    for (size_t a = 0; a < a_end; ++a) row[a] = src[a * lds + b];
  }
}

}  // namespace

void gram_scale_f32_scalar(const double* C, size_t ldc, const float* yi, size_t ni, const float* yj,
                           size_t nj, bool upper, float* out, size_t ldo) {
  scale_rows(C, ldc, yi, ni, yj, nj, upper, out, ldo);
}
void gram_scale_f64_scalar(const double* C, size_t ldc, const double* yi, size_t ni,
                           const double* yj, size_t nj, bool upper, double* out, size_t ldo) {
  scale_rows(C, ldc, yi, ni, yj, nj, upper, out, ldo);
}
void gram_mirror_f32_scalar(const float* src, size_t lds, size_t ni, size_t nj, bool upper,
                            float* dst, size_t ldd) {
  mirror_rows(src, lds, ni, nj, upper, dst, ldd);
}
void gram_mirror_f64_scalar(const double* src, size_t lds, size_t ni, size_t nj, bool upper,
                            double* dst, size_t ldd) {
  mirror_rows(src, lds, ni, nj, upper, dst, ldd);
}

const GramKernels<float> gram_f32_scalar = {"scalar", gram_tile_f32_scalar, gram_scale_f32_scalar,
                                            gram_mirror_f32_scalar};
const GramKernels<double> gram_f64_scalar = {"scalar", gram_tile_f64_scalar, gram_scale_f64_scalar,
                                             gram_mirror_f64_scalar};

}  // namespace softmax_simd
