// libFuzzer target for the native entry points (the functions binding/ calls): the fuzz input picks a
// dtype, a shape, options and the values, every array is allocated with exactly its size (so
// AddressSanitizer catches any read or write past an end), and each ISA this CPU supports is run
// against the scalar kernels. On finite inputs of moderate size the results must agree to rounding;
// on any input (NaN, infinities, huge values, bad labels) nothing may crash or touch memory it was
// not given.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "dispatch.hpp"
#include "fuzz_input.hpp"
#include "linear.hpp"

using namespace softmax_simd;
using softmax_simd_fuzz::exact;
using softmax_simd_fuzz::Reader;
using softmax_simd_fuzz::value;

namespace {

bool close(double a, double b, double tol) { return std::fabs(a - b) <= tol * (1.0 + std::fabs(a) + std::fabs(b)); }

template <typename T>
void run(Reader& r) {
  const size_t N = 1 + r.byte() % 40, D = 1 + r.byte() % 70, K = 1 + r.byte() % 36;
  const uint8_t flags = r.byte();
  const bool has_bias = flags & 1, use_targets = flags & 2, use_cw = flags & 4, use_sw = flags & 8;
  const bool use_ignore = flags & 16;
  const double smoothing = (flags & 32) ? (r.byte() % 101) / 100.0 : 0.0;
  const size_t threads = 1 + ((flags >> 6) & 1);
  const bool adversarial = flags & 128;
  bool moderate = true;
  auto X = exact<T>(N * D);
  auto W = exact<T>(D * K);
  auto b = exact<T>(K);
  for (size_t i = 0; i < N * D; ++i) X[i] = static_cast<T>(value(r, adversarial, &moderate));
  for (size_t i = 0; i < D * K; ++i) W[i] = static_cast<T>(value(r, adversarial, &moderate) / std::sqrt(double(D)));
  for (size_t i = 0; i < K; ++i) b[i] = static_cast<T>(value(r, adversarial, &moderate));
  auto labels = exact<int32_t>(N);
  // Labels may be out of range: the native side must refuse them, never index with them.
  for (size_t i = 0; i < N; ++i) labels[i] = static_cast<int32_t>(r.byte() % (K + 3)) - (r.byte() % 7 == 0 ? 1 : 0);
  auto targets = exact<T>(N * K);
  for (size_t i = 0; i < N; ++i) {
    double s = 0;
    for (size_t k = 0; k < K; ++k) s += targets[i * K + k] = static_cast<T>(r.byte() + 1);
    for (size_t k = 0; k < K; ++k) targets[i * K + k] = static_cast<T>(targets[i * K + k] / s);
  }
  auto cw = exact<double>(K);
  for (size_t k = 0; k < K; ++k) cw[k] = (r.byte() % 8) / 2.0;
  auto sw = exact<double>(N);
  for (size_t i = 0; i < N; ++i) sw[i] = (r.byte() % 8) / 4.0;

  LossProblem<T> pb;
  pb.X = X.get(); pb.N = N; pb.D = D; pb.K = K; pb.W = W.get(); pb.b = has_bias ? b.get() : nullptr;
  if (use_targets) pb.targets = targets.get(); else pb.labels = labels.get();
  pb.class_weights = use_cw ? cw.get() : nullptr;
  pb.sample_weights = use_sw ? sw.get() : nullptr;
  pb.has_ignore_index = use_ignore && !use_targets;
  pb.ignore_index = -1;
  pb.label_smoothing = smoothing;

  const double eps = std::is_same<T, float>::value ? 1.2e-7 : 2.3e-16;
  const double tol = 64 * eps * (D + K + 8) * 32;  // values up to 8, |w| up to 8/sqrt(D)

  std::vector<double> want(loss_sums_size(D, K)), got(loss_sums_size(D, K));
  auto losses_want = exact<T>(N), losses_got = exact<T>(N);
  auto S_want = exact<T>(N * K), S_got = exact<T>(N * K);
  auto P_want = exact<T>(N * K), P_got = exact<T>(N * K);
  auto pred_want = exact<int32_t>(N), pred_got = exact<int32_t>(N);

  const KernelSet scalar = kernel_set(Isa::scalar);
  const LinearKernels<T>& ks = *reinterpret_cast<const LinearKernels<T>*>(
      std::is_same<T, float>::value ? static_cast<const void*>(scalar.linear_f32) : static_cast<const void*>(scalar.linear_f64));
  pb.row_losses = losses_want.get();
  const LossOutcome o_want = loss_grad(ks, pb, 1, want.data());
  scores(ks, X.get(), N, D, W.get(), K, pb.b, S_want.get(), 1);
  softmax(ks, S_want.get(), N, K, P_want.get(), 1);
  predict(ks, X.get(), N, D, W.get(), K, pb.b, pred_want.get(), 1);

  for (Isa isa : compiled_isas()) {
    if (!cpu_supports(isa)) continue;
    const KernelSet set = kernel_set(isa);
    const LinearKernels<T>& kern = *reinterpret_cast<const LinearKernels<T>*>(
        std::is_same<T, float>::value ? static_cast<const void*>(set.linear_f32) : static_cast<const void*>(set.linear_f64));
    pb.row_losses = losses_got.get();
    const LossOutcome o_got = loss_grad(kern, pb, threads, got.data());
    scores(kern, X.get(), N, D, W.get(), K, pb.b, S_got.get(), threads);
    softmax(kern, S_got.get(), N, K, P_got.get(), threads);
    predict(kern, X.get(), N, D, W.get(), K, pb.b, pred_got.get(), threads);
    if (!moderate) continue;  // overflow edges may differ between FMA and separate rounding
    if (o_got.status != o_want.status || (o_got.status != LossStatus::ok && o_got.row != o_want.row)) {
      std::fprintf(stderr, "%s: status %d row %zu, scalar %d row %zu (N=%zu D=%zu K=%zu)\n", set.name,
                   int(o_got.status), o_got.row, int(o_want.status), o_want.row, N, D, K);
      std::abort();
    }
    if (o_got.status != LossStatus::ok) continue;
    for (size_t j = 0; j < want.size(); ++j) {
      if (!close(got[j], want[j], tol * (1 + std::fabs(want[1])))) {
        std::fprintf(stderr, "%s: sums[%zu] = %.17g, scalar %.17g (N=%zu D=%zu K=%zu)\n", set.name, j, got[j], want[j], N, D, K);
        std::abort();
      }
    }
    for (size_t j = 0; j < N * K; ++j) {
      if (!close(S_got[j], S_want[j], tol)) {
        std::fprintf(stderr, "%s: S[%zu] = %.9g, scalar %.9g\n", set.name, j, double(S_got[j]), double(S_want[j]));
        std::abort();
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
