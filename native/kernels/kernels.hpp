// The kernel table: the few hot loops that differ per instruction set. Everything else (blocking,
// loss options and their per-row rules, threads) is ISA-independent driver code in native/*.cpp.
//
// A kernel file per instruction set per operation family (native/kernels/<family>_<isa>.cpp) defines
// tables named <family>_<dtype>_<isa>, e.g. linear_f32_avx2. Files compiled with ISA flags must not
// define or instantiate inline functions shared with other translation units (std:: templates
// included): the linker could keep their AVX2 copy for callers on any CPU. Keep their helpers in an
// anonymous namespace and use only plain loops and intrinsics there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace softmax_simd {

enum class Isa : int { scalar = 0, avx2 = 1, neon = 2, avx512 = 3 };

// Layout of a gradient accumulator block: DK is acc[d * K + k] (the layout of W and dW),
// KD is acc[k * ld + d] (transposed; long contiguous runs along D when K is small; ld >= D, see
// grad_update).
enum class GradLayout : int { DK = 0, KD = 1 };

// From this many classes on, the x86 score tiles run the GEMM form over W (classes along the
// vector) instead of the dot form over Wt.
constexpr size_t kWideK = 32;

// W as the kernels see it: W is D×K row-major as the user gave it, Wt is its K×D transpose,
// packed once per call by the driver so each kernel can use the layout its loop wants.
template <typename T>
struct WeightsView {
  const T* W;
  const T* Wt;
  size_t D;
  size_t K;
  // W's row stride in elements: K, or, for a table with aligned_weights, K rounded up to whole
  // 64-byte lines (the driver's line-aligned copy of W); the scalar and NEON kernels take K.
  size_t ldw;
  // Wt's row stride in elements: D, or more (the driver's kd_stride), a whole number of 64-byte
  // lines more, so that Wt's rows keep X's offset within a line.
  size_t ldt;
};

template <typename T>
struct LinearKernels {
  const char* isa;

  // S[r * K + k] = bias[k] + sum_d X[r * D + d] * W[d * K + k]   for r < rows, k < K.
  // bias may be null (no bias). X rows are contiguous (stride D); S is rows×K contiguous.
  // next (next_rows × D, or null and 0): the rows the caller scores next, as for grad_update below
  // (a scores-only pass has no gradient update to ask for them).
  void (*scores)(const T* X, size_t rows, WeightsView<T> w, const T* bias, T* S, const T* next,
                 size_t next_rows);

  // v[i] = exp(v[i]) for i < n. The driver only passes v <= 0 (the row max is subtracted first);
  // values below the underflow edge must give +0 exactly, never NaN or a denormal garbage value.
  void (*exp_inplace)(T* v, size_t n);

  // acc += X^T G for one block of rows: X is rows×D, G is rows×K, acc is D×K in `layout`; in
  // layout KD its K rows are ld >= D elements apart (the elements between are never touched), in
  // layout DK its D rows are K apart (ld unused).
  // next (next_rows × D, or null and 0): the rows the caller works on next. A kernel may ask the
  // cache for them while it computes (a prefetch, which never faults and changes no result), so
  // that the next block's scores read X from L2 instead of waiting for memory; it never reads them.
  void (*grad_update)(const T* X, size_t rows, size_t D, const T* G, size_t K, T* acc, size_t ld,
                      GradLayout layout, const T* next, size_t next_rows);

  // The accumulator layout grad_update is fastest with for this shape.
  GradLayout (*grad_layout)(size_t D, size_t K);

  // The per-row steps of the softmax around exp, over a block of rows × K values, row-major:
  // row_max_shift: M[r] = max_c S[r][c] and G[r][c] = S[r][c] − M[r]; returns the first row that
  //   holds a NaN or ±Inf (its M and G, and those of later rows, are then unspecified), else rows.
  size_t (*row_max_shift)(const T* S, size_t rows, size_t K, T* M, T* G);
  // row_sums: Z[r] = Σ_c G[r][c] in float64, in an order fixed per ISA.
  void (*row_sums)(const T* G, size_t rows, size_t K, double* Z);
  // scale_rows: G[r][c] = T(double(G[r][c]) · inv[r]), one rounding.
  void (*scale_rows)(T* G, size_t rows, size_t K, const double* inv);
  // add_columns: db[c] += double(G[r][c]) for r = 0, 1, ... in that order (the order is part of
  //   the contract: every ISA adds a column's rows alike).
  void (*add_columns)(const T* G, size_t rows, size_t K, double* db);

  // Whether scores wants its weights aligned: Wt packed at the same offset within a 64-byte line
  // as X's rows (its tiles then start each row at an aligned vector: RowPhase in linear_simd.inl),
  // and W copied to rows of whole lines (ldw) where K's rows are not. Else Wt line-aligned, W as
  // given (ldw = K).
  bool aligned_weights;

  // Optional (null: the driver's portable loop): out[i] += double(a[i]) for i < n, each element one
  // addition (so every ISA gives the same bits); with clear, a[i] = 0 as it is read. The float32
  // pass flushes its gradient accumulator into the float64 sums with it every 256 rows (with
  // clear) and at the end of each part (without).
  void (*add_to_sums)(double* out, T* a, size_t n, bool clear);
};

// The portable row steps (linear_scalar.cpp), which the AVX2 and NEON tables use too: K-long rows
// are short next to the products around them there.
size_t row_max_shift_f32_scalar(const float* S, size_t rows, size_t K, float* M, float* G);
size_t row_max_shift_f64_scalar(const double* S, size_t rows, size_t K, double* M, double* G);
void row_sums_f32_scalar(const float* G, size_t rows, size_t K, double* Z);
void row_sums_f64_scalar(const double* G, size_t rows, size_t K, double* Z);
void scale_rows_f32_scalar(float* G, size_t rows, size_t K, const double* inv);
void scale_rows_f64_scalar(double* G, size_t rows, size_t K, const double* inv);
void add_columns_f32_scalar(const float* G, size_t rows, size_t K, double* db);
void add_columns_f64_scalar(const double* G, size_t rows, size_t K, double* db);

extern const LinearKernels<float> linear_f32_scalar;
extern const LinearKernels<double> linear_f64_scalar;
#if defined(SOFTMAX_SIMD_HAVE_AVX2)
extern const LinearKernels<float> linear_f32_avx2;
extern const LinearKernels<double> linear_f64_avx2;
#endif
#if defined(SOFTMAX_SIMD_HAVE_AVX512)
extern const LinearKernels<float> linear_f32_avx512;
extern const LinearKernels<double> linear_f64_avx512;
#endif
#if defined(SOFTMAX_SIMD_HAVE_NEON)
extern const LinearKernels<float> linear_f32_neon;
extern const LinearKernels<double> linear_f64_neon;
#endif

}  // namespace softmax_simd
