// The kernel table of the labelled Gram matrix Q = (y∘X)(y∘X)ᵀ: one block micro-kernel per
// instruction set and dtype, named gram_<dtype>_<isa>. The driver (native/gram.cpp) does the
// blocking over Q, the symmetry, the scaling by y_i·y_j and the threads.
//
// The contract every tile kernel keeps, which makes Q bitwise symmetric and row blocks stitch into
// the full Q bitwise: the value a kernel produces for a pair of rows (x, x') depends only on the two
// rows' elements over the chunk, never on where the pair sits in the tile, on the tile's shape, or
// on the order of the two rows (a·b = b·a, and every running sum sees its products in increasing
// d). The driver splits D into chunks at the fixed offsets 0, c, 2c, ... (c = gram_chunk<T>())
// and sums the chunks of a pair in that order.
//
// Accuracy: no running sum in the dtype is longer than one chunk. The dot-form kernel (NEON) sums
// every W-th product of a chunk in each of W lanes (gram_chunk / W terms), the outer-product
// kernels (AVX2, AVX-512) sum a pair's products in order in slices of kGramChainOp; those
// sums are widened to float64 and everything after (lanes, slices, chunks) is float64, so the error
// of a float32 entry of Q does not grow with D beyond that (see the bound in test/gram.test.ts).
// The scalar kernels accumulate in float64 throughout.
#pragma once

#include <cstddef>

namespace softmax_simd {

// Elements of D per chunk, 4 KiB of a row: 1024 float32, 512 float64. A float32 lane of the dot-form
// kernel adds at most 1024 / 4 (NEON) products before its sum goes to float64, the outer-product
// kernels (AVX2, AVX-512) kGramChainOp in one chain (float32 BLAS sums all D products
// of an entry in one float32 register lane). Also the D-blocking of the driver: the tile kernels
// keep a few rows' chunks (dot form) or a slice of a packed panel (outer-product form) in L1 while
// the other rows stream past. Every chunk ends with a float64
// reduction per pair, so shorter chunks cost speed: for float32 on Zen 4, 512 measured ~10% faster
// than 256 and 1024 ~4% faster than 512 (N = 4096, D = 784: one chunk instead of two); for float64,
// 1024 was ~2% slower than 512 (8 KiB rows crowd the L1).
constexpr size_t kGramChunkBytes = 4096;
template <typename T>
constexpr size_t gram_chunk() {
  return kGramChunkBytes / sizeof(T);
}

// The outer-product tile (gram_simd.inl, AVX2 and AVX-512) sums each pair's products in order in slices of
// this many (the slice of a packed panel it keeps in L1), one running sum of the dtype per slice,
// then adds the slices in float64. 256 measured 6–7% faster than 128 (Zen 3, 2048 × 784, float32
// and float64, best of 32 interleaved runs), the flush of the accumulators to float64 being twice
// as frequent at 128.
constexpr size_t kGramChainOp = 256;

template <typename T>
struct GramKernels {
  const char* isa;

  // One D-chunk of a block of dot products, for a < ni, b < nj:
  //   s(a, b) = Σ_{d < len} Xi[a * ldx + d] · Xj[b * ldx + d], taken as partial sums s_0, s_1, ...
  //   over consecutive slices of the chunk (one slice, the whole chunk, except for a kernel that
  //   slices, see kGramChainOp), each rounded to double;
  //   C[a * ldc + b] = (s_0 + s_1) + ...            when accumulate is false,
  //   C[a * ldc + b] = ((C[a * ldc + b] + s_0) + s_1) + ...  when it is true.
  // With `upper` set, Xi and Xj are the same rows (ni == nj) and only entries b >= a are needed;
  // others may be left as they are or written. Reads exactly the rows' first len elements.
  void (*tile)(const T* Xi, size_t ni, const T* Xj, size_t nj, size_t len, size_t ldx, double* C,
               size_t ldc, bool accumulate, bool upper);

  // Rows of Q from a tile of sums: out[a * ldo + b] = y_i[a] · y_j[b] · C[a * ldc + b] for a < ni,
  // b < nj (b >= a only, with upper), as the driver defines it (native/gram.hpp): float32 entries
  // (double(y_i) · double(y_j)) · s rounded once, float64 entries (y_i · y_j) · s.
  void (*scale)(const double* C, size_t ldc, const T* yi, size_t ni, const T* yj, size_t nj,
                bool upper, T* out, size_t ldo);

  // The mirror, a copy: dst[b * ldd + a] = src[a * lds + b] for a < ni, b < nj. With upper, src and
  // dst are the same square (ni == nj, lds == ldd) and only b > a is copied (upper to lower
  // triangle); otherwise the two blocks do not overlap.
  void (*mirror)(const T* src, size_t lds, size_t ni, size_t nj, bool upper, T* dst, size_t ldd);
};

// The portable scale and mirror (gram_scalar.cpp), which the NEON tables use too.
void gram_scale_f32_scalar(const double* C, size_t ldc, const float* yi, size_t ni, const float* yj,
                           size_t nj, bool upper, float* out, size_t ldo);
void gram_scale_f64_scalar(const double* C, size_t ldc, const double* yi, size_t ni,
                           const double* yj, size_t nj, bool upper, double* out, size_t ldo);
void gram_mirror_f32_scalar(const float* src, size_t lds, size_t ni, size_t nj, bool upper,
                            float* dst, size_t ldd);
void gram_mirror_f64_scalar(const double* src, size_t lds, size_t ni, size_t nj, bool upper,
                            double* dst, size_t ldd);

#if defined(SOFTMAX_SIMD_HAVE_AVX2)
// The AVX2 scale and mirror (gram_avx2.cpp), which the AVX-512 tables use too.
void gram_scale_f32_avx2(const double* C, size_t ldc, const float* yi, size_t ni, const float* yj,
                         size_t nj, bool upper, float* out, size_t ldo);
void gram_scale_f64_avx2(const double* C, size_t ldc, const double* yi, size_t ni,
                         const double* yj, size_t nj, bool upper, double* out, size_t ldo);
void gram_mirror_f32_avx2(const float* src, size_t lds, size_t ni, size_t nj, bool upper,
                          float* dst, size_t ldd);
void gram_mirror_f64_avx2(const double* src, size_t lds, size_t ni, size_t nj, bool upper,
                          double* dst, size_t ldd);
#endif

extern const GramKernels<float> gram_f32_scalar;
extern const GramKernels<double> gram_f64_scalar;
#if defined(SOFTMAX_SIMD_HAVE_AVX2)
extern const GramKernels<float> gram_f32_avx2;
extern const GramKernels<double> gram_f64_avx2;
#endif
#if defined(SOFTMAX_SIMD_HAVE_AVX512)
extern const GramKernels<float> gram_f32_avx512;
extern const GramKernels<double> gram_f64_avx512;
#endif
#if defined(SOFTMAX_SIMD_HAVE_NEON)
extern const GramKernels<float> gram_f32_neon;
extern const GramKernels<double> gram_f64_neon;
#endif

}  // namespace softmax_simd
