// libFuzzer target for the labelled Gram matrix (native/gram.hpp labeled_gram, what binding/gram.cpp
// calls): the fuzz input picks a dtype, N, D (across the chunk edges: 512 float64, 1024 float32), a row range, a
// thread count and the values; X, y and the output are allocated with exactly their sizes, so
// AddressSanitizer catches any access past an end. Every ISA this CPU supports is run against the
// scalar kernels: on moderate finite inputs each entry agrees within the error bound of the
// summation (float32 lanes or slices, float64 across them and across chunks), the square part is bitwise symmetric, and any
// input (NaN, infinities, huge values) runs without a crash.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>

#include "dispatch.hpp"
#include "fuzz_input.hpp"
#include "gram.hpp"

using namespace softmax_simd;
using softmax_simd_fuzz::exact;
using softmax_simd_fuzz::Reader;
using softmax_simd_fuzz::value;

namespace {

const GramKernels<float>& kernels(Isa isa, float*) { return gram_kernels_f32(isa); }
const GramKernels<double>& kernels(Isa isa, double*) { return gram_kernels_f64(isa); }

template <typename T>
void run(Reader& r) {
  const size_t N = 1 + r.byte() % 48;
  const size_t D = 1 + r.u16() % 1100;
  const size_t row_start = r.byte() % N;
  const size_t row_end = row_start + 1 + r.byte() % (N - row_start);
  const uint8_t flags = r.byte();
  const size_t threads = 1 + flags % 3;
  const bool adversarial = flags & 128;
  bool moderate = true;
  auto X = exact<T>(N * D);
  auto y = exact<T>(N);
  for (size_t i = 0; i < N * D; ++i) X[i] = static_cast<T>(value(r, adversarial, &moderate));
  for (size_t i = 0; i < N; ++i) y[i] = static_cast<T>(r.byte() % 3 == 0 ? value(r, adversarial, &moderate) : (r.byte() & 1 ? 1.0 : -1.0));
  const size_t rows = row_end - row_start;
  auto want = exact<T>(rows * N);
  auto got = exact<T>(rows * N);

  T* tag = nullptr;
  if (!labeled_gram(kernels(Isa::scalar, tag), X.get(), N, D, y.get(), row_start, row_end, want.get(), 1)) return;
  // The float32 kernels sum up to 256 products in one float32 sum (a NEON lane: 1024 / 4 of a chunk;
  // the outer-product kernels (AVX2, AVX-512): kGramChainOp in order), then in float64; |Q_ij − Q'_ij| is
  // bounded by that many roundings of Σ|y_i y_j x_i[d] x_j[d]|.
  const double u = std::is_same<T, float>::value ? std::ldexp(1.0, -24) : std::ldexp(1.0, -53);
  const double lane_terms =
      std::is_same<T, float>::value ? double(std::max(kGramChainOp, gram_chunk<float>() / 4)) + 8 : double(D) + 8;

  for (Isa isa : compiled_isas()) {
    if (!cpu_supports(isa)) continue;
    if (!labeled_gram(kernels(isa, tag), X.get(), N, D, y.get(), row_start, row_end, got.get(), threads)) continue;
    if (!moderate) continue;
    for (size_t a = 0; a < rows; ++a) {
      const size_t i = row_start + a;
      for (size_t j = 0; j < N; ++j) {
        double absdot = 0;
        for (size_t d = 0; d < D; ++d) absdot += std::fabs(double(X[i * D + d]) * double(X[j * D + d]));
        // Plus the absolute spacing of subnormal results, where products of tiny values underflow.
        const double yy = std::fabs(double(y[i]) * double(y[j]));
        const double bound = 2 * lane_terms * u * yy * absdot + 4 * u * std::fabs(double(want[a * N + j])) +
                             2 * (double(D) + 8) * (1 + yy) * double(std::numeric_limits<T>::denorm_min());
        const double diff = std::fabs(double(got[a * N + j]) - double(want[a * N + j]));
        if (!(diff <= bound)) {
          std::fprintf(stderr, "isa %d: Q[%zu][%zu] = %.17g, scalar %.17g (N=%zu D=%zu rows [%zu, %zu))\n", int(isa), i, j,
                       double(got[a * N + j]), double(want[a * N + j]), N, D, row_start, row_end);
          std::abort();
        }
        // Inside the square [row_start, row_end)² the result is symmetric, bit for bit.
        if (j >= row_start && j < row_end && std::memcmp(&got[a * N + j], &got[(j - row_start) * N + i], sizeof(T)) != 0) {
          std::fprintf(stderr, "isa %d: Q[%zu][%zu] != Q[%zu][%zu] bitwise (N=%zu D=%zu)\n", int(isa), i, j, j, i, N, D);
          std::abort();
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  if (r.byte() & 1) run<double>(r); else run<float>(r);
  return 0;
}
