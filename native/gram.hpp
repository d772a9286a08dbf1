// The labelled Gram matrix of the SVM dual, Q_ij = y_i y_j x_iᵀ x_j (DESIGN.md §1), or a block of
// its rows. ISA-independent: the dot products come from a GramKernels table (kernels/gram.hpp).
// No Node headers here; callers hand in plain pointers whose sizes they have checked.
#pragma once

#include <cstddef>

#include "kernels/gram.hpp"
#include "kernels/kernels.hpp"

namespace softmax_simd {

// The Gram kernel table of an ISA compiled into this build (scalar for any other).
const GramKernels<float>& gram_kernels_f32(Isa isa);
const GramKernels<double>& gram_kernels_f64(Isa isa);

// Rows [row_start, row_end) of Q for X (N×D, row-major) and y (N):
//   out[(i − row_start) · N + j] = y_i y_j Σ_d X[i][d] X[j][d],   row_start <= i < row_end, j < N.
// Requires 0 <= row_start < row_end <= N, D >= 1, out of (row_end − row_start)·N elements.
// Float32 entries are the float64 value y_i y_j · s_ij rounded once to float32 (s_ij as the kernel
// sums it, kernels/gram.hpp); float64 entries are (y_i y_j) · s_ij.
// Every entry has the same value whichever row block, tile, thread count or orientation computes
// it: Q is bitwise symmetric, and row blocks stitch into the full Q bitwise. Tiles of the square
// [row_start, row_end)² are computed on or above the diagonal only and mirrored.
// Returns false (out untouched or partly written) only when scratch memory cannot be allocated.
template <typename T>
bool labeled_gram(const GramKernels<T>& kern, const T* X, size_t N, size_t D, const T* y,
                  size_t row_start, size_t row_end, T* out, size_t threads);

// The edge of the square tiles of Q the driver hands to the threads (exposed for tests).
size_t gram_block(size_t D, size_t elem_size);

}  // namespace softmax_simd
