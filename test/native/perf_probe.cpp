// Performance probe (not a test): this machine's single-core peak FMA rate (f32, f64), then the fused
// loss-and-gradients pass (native/linear.hpp loss_grad, one thread) for each ISA this build holds and
// this CPU runs, on the benchmark shapes, as ms, GFLOP/s (4·N·D·K flops per call) and % of peak.
//
//   perf_probe [--isa NAME] [--shape NAME] [--reps N]
//
// Timings are thread CPU time, the best of --reps calls (default 3 for SIMD ISAs, 1 for scalar), so
// a shared, noisy machine shows its quiet moments.
#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "dispatch.hpp"
#include "linear.hpp"

using namespace softmax_simd;

namespace {

// CPU time of this thread: on a shared machine the wall clock also counts time other processes
// held the core. loss_grad with one thread runs on the calling thread.
struct Clock {
  using time_point = double;
  static double now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
};

double seconds_since(double t0) { return Clock::now() - t0; }

// Peak: kChains independent FMA chains held in registers; each FMA is 2 flops per lane.
constexpr int kChains = 12;
constexpr long kIters = 5000000;

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double peak_f32_once() {
  // Twelve named accumulators (not an array: an array may live in memory, and store-to-load
  // forwarding would then sit in every chain).
  __m256 c0 = _mm256_set1_ps(1.0f + 0 * 0.001f), c1 = _mm256_set1_ps(1.0f + 1 * 0.001f), c2 = _mm256_set1_ps(1.0f + 2 * 0.001f), c3 = _mm256_set1_ps(1.0f + 3 * 0.001f), c4 = _mm256_set1_ps(1.0f + 4 * 0.001f), c5 = _mm256_set1_ps(1.0f + 5 * 0.001f), c6 = _mm256_set1_ps(1.0f + 6 * 0.001f), c7 = _mm256_set1_ps(1.0f + 7 * 0.001f), c8 = _mm256_set1_ps(1.0f + 8 * 0.001f), c9 = _mm256_set1_ps(1.0f + 9 * 0.001f), c10 = _mm256_set1_ps(1.0f + 10 * 0.001f), c11 = _mm256_set1_ps(1.0f + 11 * 0.001f);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  const double t0 = Clock::now();
  for (long it = 0; it < kIters; ++it) {
    c0 = _mm256_fmadd_ps(c0, m, a); c1 = _mm256_fmadd_ps(c1, m, a); c2 = _mm256_fmadd_ps(c2, m, a);
    c3 = _mm256_fmadd_ps(c3, m, a); c4 = _mm256_fmadd_ps(c4, m, a); c5 = _mm256_fmadd_ps(c5, m, a);
    c6 = _mm256_fmadd_ps(c6, m, a); c7 = _mm256_fmadd_ps(c7, m, a); c8 = _mm256_fmadd_ps(c8, m, a);
    c9 = _mm256_fmadd_ps(c9, m, a); c10 = _mm256_fmadd_ps(c10, m, a); c11 = _mm256_fmadd_ps(c11, m, a);
  }
  const double s = seconds_since(t0);
  __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)), _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  t = _mm256_add_ps(t, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  float sink[8];
  _mm256_storeu_ps(sink, t);
  if (sink[0] == 12345) std::printf(" ");
  return 2.0 * 8 * kChains * double(kIters) / s / 1e9;
}
__attribute__((target("avx2,fma"))) double peak_f64_once() {
  // Twelve named accumulators (not an array: an array may live in memory, and store-to-load
  // forwarding would then sit in every chain).
  __m256d c0 = _mm256_set1_pd(1.0 + 0 * 0.001), c1 = _mm256_set1_pd(1.0 + 1 * 0.001), c2 = _mm256_set1_pd(1.0 + 2 * 0.001), c3 = _mm256_set1_pd(1.0 + 3 * 0.001), c4 = _mm256_set1_pd(1.0 + 4 * 0.001), c5 = _mm256_set1_pd(1.0 + 5 * 0.001), c6 = _mm256_set1_pd(1.0 + 6 * 0.001), c7 = _mm256_set1_pd(1.0 + 7 * 0.001), c8 = _mm256_set1_pd(1.0 + 8 * 0.001), c9 = _mm256_set1_pd(1.0 + 9 * 0.001), c10 = _mm256_set1_pd(1.0 + 10 * 0.001), c11 = _mm256_set1_pd(1.0 + 11 * 0.001);
  const __m256d m = _mm256_set1_pd(0.999999), a = _mm256_set1_pd(1e-6);
  const double t0 = Clock::now();
  for (long it = 0; it < kIters; ++it) {
    c0 = _mm256_fmadd_pd(c0, m, a); c1 = _mm256_fmadd_pd(c1, m, a); c2 = _mm256_fmadd_pd(c2, m, a);
    c3 = _mm256_fmadd_pd(c3, m, a); c4 = _mm256_fmadd_pd(c4, m, a); c5 = _mm256_fmadd_pd(c5, m, a);
    c6 = _mm256_fmadd_pd(c6, m, a); c7 = _mm256_fmadd_pd(c7, m, a); c8 = _mm256_fmadd_pd(c8, m, a);
    c9 = _mm256_fmadd_pd(c9, m, a); c10 = _mm256_fmadd_pd(c10, m, a); c11 = _mm256_fmadd_pd(c11, m, a);
  }
  const double s = seconds_since(t0);
  __m256d t = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(c0, c1), _mm256_add_pd(c2, c3)), _mm256_add_pd(_mm256_add_pd(c4, c5), _mm256_add_pd(c6, c7)));
  t = _mm256_add_pd(t, _mm256_add_pd(_mm256_add_pd(c8, c9), _mm256_add_pd(c10, c11)));
  double sink[4];
  _mm256_storeu_pd(sink, t);
  if (sink[0] == 12345) std::printf(" ");
  return 2.0 * 4 * kChains * double(kIters) / s / 1e9;
}
// On a CPU with AVX-512 the machine's peak is the 512-bit rate (Zen 5: twice the 256-bit one).
__attribute__((target("avx512f"))) double peak512_f32_once() {
  __m512 c[kChains];
  for (int i = 0; i < kChains; ++i) c[i] = _mm512_set1_ps(1.0f + i * 0.001f);
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  const double t0 = Clock::now();
  for (long it = 0; it < kIters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) c[i] = _mm512_fmadd_ps(c[i], m, a);
  const double s = seconds_since(t0);
  __m512 t = c[0];
  for (int i = 1; i < kChains; ++i) t = _mm512_add_ps(t, c[i]);
  if (_mm512_cvtss_f32(t) == 12345.f) std::printf(" ");
  return 2.0 * 16 * kChains * double(kIters) / s / 1e9;
}
__attribute__((target("avx512f"))) double peak512_f64_once() {
  __m512d c[kChains];
  for (int i = 0; i < kChains; ++i) c[i] = _mm512_set1_pd(1.0 + i * 0.001);
  const __m512d m = _mm512_set1_pd(0.999999), a = _mm512_set1_pd(1e-6);
  const double t0 = Clock::now();
  for (long it = 0; it < kIters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) c[i] = _mm512_fmadd_pd(c[i], m, a);
  const double s = seconds_since(t0);
  __m512d t = c[0];
  for (int i = 1; i < kChains; ++i) t = _mm512_add_pd(t, c[i]);
  if (_mm512_cvtsd_f64(t) == 12345.) std::printf(" ");
  return 2.0 * 8 * kChains * double(kIters) / s / 1e9;
}
bool have_peak() { return cpu_supports(Isa::avx2); }
bool wide_peak() { return cpu_supports(Isa::avx512); }
const char* peak_isa() { return wide_peak() ? "AVX-512 FMA, 512-bit" : "AVX2 FMA, 256-bit"; }
#elif defined(__aarch64__)
double peak_f32_once() {
  float32x4_t acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = vdupq_n_f32(1.0f + i * 1e-3f);
  const float32x4_t m = vdupq_n_f32(0.999999f), a = vdupq_n_f32(1e-6f);
  const auto t0 = Clock::now();
  for (long it = 0; it < kIters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = vfmaq_f32(a, acc[i], m);
  const double s = seconds_since(t0);
  float t = 0;
  for (int i = 0; i < kChains; ++i) t += vgetq_lane_f32(acc[i], 0);
  if (t == 12345.f) std::printf(" ");
  return 2.0 * 4 * kChains * double(kIters) / s / 1e9;
}
double peak_f64_once() {
  float64x2_t acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = vdupq_n_f64(1.0 + i * 1e-3);
  const float64x2_t m = vdupq_n_f64(0.999999), a = vdupq_n_f64(1e-6);
  const auto t0 = Clock::now();
  for (long it = 0; it < kIters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = vfmaq_f64(a, acc[i], m);
  const double s = seconds_since(t0);
  double t = 0;
  for (int i = 0; i < kChains; ++i) t += vgetq_lane_f64(acc[i], 0);
  if (t == 12345.) std::printf(" ");
  return 2.0 * 2 * kChains * double(kIters) / s / 1e9;
}
bool have_peak() { return true; }
bool wide_peak() { return false; }
double peak512_f32_once() { return 0; }
double peak512_f64_once() { return 0; }
const char* peak_isa() { return "NEON FMA, 128-bit"; }
#else
double peak_f32_once() { return 0; }
double peak_f64_once() { return 0; }
bool have_peak() { return false; }
bool wide_peak() { return false; }
double peak512_f32_once() { return 0; }
double peak512_f64_once() { return 0; }
const char* peak_isa() { return "none"; }
#endif

double best_of(double (*f)(), int n) {
  double best = 0;
  for (int i = 0; i < n; ++i) best = std::max(best, f());
  return best;
}

size_t g_x_offset = 0;

struct Shape {
  const char* name;
  size_t N, D, K;
};

template <typename T>
struct Data {
  std::vector<T> X, W, b;
  std::vector<int32_t> y;
  std::vector<double> sums;
  Data(const Shape& s) : X(s.N * s.D), W(s.D * s.K), b(s.K), y(s.N), sums(loss_sums_size(s.D, s.K)) {
    uint64_t st = 42;
    auto next = [&] {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<double>(st >> 11) * (1.0 / 9007199254740992.0);
    };
    for (auto& v : X) v = static_cast<T>(next());  // pixel-like, in [0, 1)
    const double ws = 1.0 / std::sqrt(double(s.D));
    for (auto& v : W) v = static_cast<T>(ws * (2 * next() - 1));
    for (auto& v : b) v = static_cast<T>(0.01 * (2 * next() - 1));
    for (size_t i = 0; i < s.N; ++i) y[i] = static_cast<int32_t>(i % s.K);
  }
};

template <typename T>
double time_loss_grad(const LinearKernels<T>& kern, const Shape& s, Data<T>& d, int reps) {
  LossProblem<T> pb;
  // X at a chosen distance past a 64-byte line boundary (--x-offset bytes), as callers' arrays come:
  // a large typed array's data usually starts 16 bytes past one (malloc's chunk header).
  static std::vector<T> shifted;
  shifted.assign(d.X.size() + 64 / sizeof(T) * 2, T(0));
  const uintptr_t base = (reinterpret_cast<uintptr_t>(shifted.data()) + 63) / 64 * 64 + g_x_offset;
  T* x = reinterpret_cast<T*>(base);
  std::copy(d.X.begin(), d.X.end(), x);
  pb.X = x;
  pb.N = s.N;
  pb.D = s.D;
  pb.K = s.K;
  pb.W = d.W.data();
  pb.b = d.b.data();
  pb.labels = d.y.data();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    const LossOutcome o = loss_grad(kern, pb, 1, d.sums.data());
    const double t = seconds_since(t0);
    if (o.status != LossStatus::ok) {
      std::printf("loss_grad failed: status %d\n", int(o.status));
      std::exit(1);
    }
    best = std::min(best, t);
  }
  return best;
}

const LinearKernels<float>& table(const KernelSet& ks, float*) { return *ks.linear_f32; }
const LinearKernels<double>& table(const KernelSet& ks, double*) { return *ks.linear_f64; }

template <typename T>
void run_shape(const Shape& s, const std::vector<Isa>& isas, double peak, int reps_arg) {
  Data<T> d(s);
  const double flops = 4.0 * double(s.N) * double(s.D) * double(s.K);
  for (Isa isa : isas) {
    const KernelSet ks = kernel_set(isa);
    const int reps = reps_arg > 0 ? reps_arg : (isa == Isa::scalar ? 1 : 3);
    const double t = time_loss_grad(table(ks, static_cast<T*>(nullptr)), s, d, reps);
    const double gf = flops / t / 1e9;
    std::printf("%-4s %-7s N=%-6zu D=%-4zu K=%-4zu B=%-4zu %9.2f ms %8.2f GFLOP/s %6.1f%% of peak\n",
                sizeof(T) == 4 ? "f32" : "f64", isa_name(isa), s.N, s.D, s.K, block_rows(s.D, s.K, sizeof(T)),
                t * 1e3, gf, peak > 0 ? 100.0 * gf / peak : 0.0);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string only_isa, only_shape;
  int reps = 0;
  size_t rows = 0, cols = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--isa" && i + 1 < argc) only_isa = argv[++i];
    else if (a == "--shape" && i + 1 < argc) only_shape = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--rows" && i + 1 < argc) rows = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--cols" && i + 1 < argc) cols = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--x-offset" && i + 1 < argc) g_x_offset = std::strtoul(argv[++i], nullptr, 10);
    else {
      std::printf("usage: perf_probe [--isa NAME] [--shape mnist|cifar|wideK|big] [--reps N] [--rows N] [--cols D] [--x-offset BYTES]\n");
      return 0;
    }
  }
  double peak32 = 0, peak64 = 0;
  if (have_peak()) {
    peak32 = best_of(wide_peak() ? peak512_f32_once : peak_f32_once, 7);
    peak64 = best_of(wide_peak() ? peak512_f64_once : peak_f64_once, 7);
  }
  std::printf("single-core peak (%s, %d chains): f32 %.1f GFLOP/s, f64 %.1f GFLOP/s\n", peak_isa(), kChains,
              peak32, peak64);
  std::vector<Isa> isas;
  for (Isa isa : compiled_isas())
    if (cpu_supports(isa) && (only_isa.empty() || only_isa == isa_name(isa))) isas.push_back(isa);
  const Shape shapes[] = {{"mnist", 60000, 784, 10}, {"cifar", 10000, 3072, 10}, {"wideK", 4096, 512, 1000},
                          {"big", 200000, 256, 100}};
  for (Shape s : shapes) {
    if (!only_shape.empty() && only_shape != s.name) continue;
    if (rows > 0) s.N = rows;
    if (cols > 0) s.D = cols;
    std::printf("-- %s\n", s.name);
    run_shape<float>(s, isas, peak32, reps);
    run_shape<double>(s, isas, peak64, reps);
  }
  return 0;
}
