// The operations of the softmax linear classifier over a whole batch: scores, softmax, predict and the
// fused loss-and-gradients pass. ISA-independent: the hot loops come from a LinearKernels table.
// No Node headers here; callers hand in plain pointers whose sizes they have checked.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.hpp"

namespace softmax_simd {

// What the fused pass is asked to compute. Exactly one of labels / targets is set.
template <typename T>
struct LossProblem {
  const T* X = nullptr;  // N×D
  size_t N = 0, D = 0, K = 0;
  const T* W = nullptr;              // D×K
  const T* b = nullptr;              // K, or null when the model has no bias
  const int32_t* labels = nullptr;   // N class indices in [0, K), or ignore_index
  const T* targets = nullptr;        // N×K probability rows
  const double* class_weights = nullptr;   // K, or null (all 1)
  const double* sample_weights = nullptr;  // N, or null (all 1)
  bool has_ignore_index = false;
  int64_t ignore_index = -100;
  double label_smoothing = 0;
  T* row_losses = nullptr;  // N, written when not null
};

enum class LossStatus : int { ok = 0, non_finite = 1, bad_label = 2, bad_target = 3, no_memory = 4 };

struct LossOutcome {
  LossStatus status = LossStatus::ok;
  size_t row = 0;  // the first offending row, for every status but ok and no_memory
};

// Size of the sums buffer of loss_grad: [loss numerator, weight (the 'mean' denominator),
// dW sums (D×K, row-major), db sums (K)], all float64.
inline size_t loss_sums_size(size_t D, size_t K) { return 2 + D * K + K; }

// One pass over X. On success writes the unscaled float64 sums into `sums` (loss_sums_size doubles);
// on failure leaves `sums` untouched and says which row failed first.
// For a given problem and `threads` the result is bitwise reproducible.
template <typename T>
LossOutcome loss_grad(const LinearKernels<T>& kern, const LossProblem<T>& problem, size_t threads,
                      double* sums);

// The gradient of W from the pass's sums, as src/prepare.ts finalizeSums computes it, operation for
// operation (so that either gives the same bits): dW[i] = T((sums[2 + i] · scale) / divisor +
// grad_coef · W[i]) for i < n, each step rounded to double, never fused (native/finalize.cpp). For
// D×K large enough that the JavaScript loop weighs on a call: cifar's 30,720 took 45–85 µs.
template <typename T>
void finalize_gradients(const double* sums, const T* W, size_t n, double scale, double divisor,
                        double grad_coef, T* dW);

// Σ W[i]² for i < n in the fixed order of src/prepare.ts sumOfSquares (four partial sums), so that
// either gives the same bits (native/finalize.cpp): the regularisation term of the loss.
template <typename T>
double sum_of_squares(const T* W, size_t n);

// S = XW + b (N×K). b may be null.
template <typename T>
bool scores(const LinearKernels<T>& kern, const T* X, size_t N, size_t D, const T* W, size_t K,
            const T* b, T* S, size_t threads);

// P = softmax(S) row-wise (N×K); P may alias S.
template <typename T>
bool softmax(const LinearKernels<T>& kern, const T* S, size_t N, size_t K, T* P, size_t threads);

// out[i] = argmax_k (XW + b)[i][k], ties to the lowest index; NaN scores never win.
template <typename T>
bool predict(const LinearKernels<T>& kern, const T* X, size_t N, size_t D, const T* W, size_t K,
             const T* b, int32_t* out, size_t threads);

// How many parts a batch of N rows is split into for `threads` threads: small batches stay on one
// thread, where waking others would cost more than it saves. Depends only on the shape and threads.
size_t parts_for(size_t N, size_t D, size_t K, size_t threads);

// Rows per block of the fused pass for this shape and element size.
size_t block_rows(size_t D, size_t K, size_t elem_size);

// The fused pass's chunks for `parts` parts (B = block_rows): each keeps its own sums, the parts take
// them in turn, and the sums are added in chunk order, so the result depends on the shape and the
// part count only. Chunk c is the rows [chunk_begin(c), chunk_begin(c + 1)), whole blocks of B.
size_t chunks_for(size_t N, size_t D, size_t K, size_t B, size_t parts);
size_t chunk_begin(size_t N, size_t B, size_t c, size_t chunks);

}  // namespace softmax_simd
