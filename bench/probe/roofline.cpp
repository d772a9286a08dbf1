// roofline.cpp: measures this machine's limits for the benchmark's roofline.
//   peak FMA rate (GFLOP/s, an FMA counted as 2 flops) for float32 and float64, one thread and all threads;
//   memory read bandwidth (GB/s, 1e9 bytes/s) summing a buffer far larger than the caches, one and all threads.
// Prints one JSON object on stdout. Usage: roofline [threads] [bufferMiB] [peak f32|f64]
// (peak: only that dtype's FMA rate on `threads` threads, measured briefly; see main).
// Built by bench/run.cjs with the widest instruction set softmax-simd uses that the CPU has: `-mavx512f -mavx2
// -mfma` (512-bit FMAs) with AVX-512, `-mavx2 -mfma` with AVX2 and FMA, else plain -O2 and portable vector code.
// The peak is the machine's: on a CPU with AVX-512 that is the 512-bit rate, which 256-bit code cannot reach.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PROBE_AVX512 1
#define PROBE_AVX2 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PROBE_AVX2 1
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- peak FMA rate: kAcc independent FMA chains per thread, so the FMA latency is hidden. ----
constexpr int kAcc = 12;

// The accumulators are named variables (not an array) so they stay in registers.
#define PROBE_FMA_BODY(T, SET1, FMA, ADD, STORE, LANES)                                             \
  T a0 = SET1(0.001), a1 = SET1(0.002), a2 = SET1(0.003), a3 = SET1(0.004), a4 = SET1(0.005),      \
    a5 = SET1(0.006), a6 = SET1(0.007), a7 = SET1(0.008), a8 = SET1(0.009), a9 = SET1(0.010),      \
    a10 = SET1(0.011), a11 = SET1(0.012);                                                          \
  const T m = SET1(0.999999), c = SET1(1e-7);                                                      \
  for (long n = 0; n < iters; n++) {                                                               \
    a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c); a3 = FMA(a3, m, c);                \
    a4 = FMA(a4, m, c); a5 = FMA(a5, m, c); a6 = FMA(a6, m, c); a7 = FMA(a7, m, c);                \
    a8 = FMA(a8, m, c); a9 = FMA(a9, m, c); a10 = FMA(a10, m, c); a11 = FMA(a11, m, c);            \
  }                                                                                                \
  T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                         \
  s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                                     \
  *sink = STORE(s);                                                                                \
  return static_cast<double>(iters) * kAcc * LANES * 2;

#if defined(PROBE_AVX512)
// Each returns the flops done; the result is kept in *sink so the work is not optimised away.

inline __m512 set1_ps(double v) { return _mm512_set1_ps(static_cast<float>(v)); }
inline double first_ps(__m512 v) { return _mm512_cvtss_f32(v); }
inline double first_pd(__m512d v) { return _mm512_cvtsd_f64(v); }

double fma_f32(long iters, double* sink) {
  PROBE_FMA_BODY(__m512, set1_ps, _mm512_fmadd_ps, _mm512_add_ps, first_ps, 16)
}

double fma_f64(long iters, double* sink) {
  PROBE_FMA_BODY(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, first_pd, 8)
}
#elif defined(PROBE_AVX2)
// Each returns the flops done; the result is kept in *sink so the work is not optimised away.

inline __m256 set1_ps(double v) { return _mm256_set1_ps(static_cast<float>(v)); }
inline double first_ps(__m256 v) { return _mm256_cvtss_f32(v); }
inline double first_pd(__m256d v) { return _mm256_cvtsd_f64(v); }

double fma_f32(long iters, double* sink) {
  PROBE_FMA_BODY(__m256, set1_ps, _mm256_fmadd_ps, _mm256_add_ps, first_ps, 8)
}

double fma_f64(long iters, double* sink) {
  PROBE_FMA_BODY(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, first_pd, 4)
}
#else
// Portable fallback: 16-byte vectors (SSE2 on x86-64, NEON on aarch64); a*b+c contracts to FMA where the
// target has one (GCC's default -ffp-contract=fast).
typedef float v4f __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

template <typename V, typename T>
inline V splat(double v) {
  V r = {};
  return r + static_cast<T>(v);
}
template <typename V>
inline V fma_v(V a, V b, V c) { return a * b + c; }
template <typename V>
inline V add_v(V a, V b) { return a + b; }
template <typename V>
inline double first_v(V v) { return static_cast<double>(v[0]); }

template <typename V, typename T, int LANES>
double fma_generic(long iters, double* sink) {
  PROBE_FMA_BODY(V, (splat<V, T>), fma_v<V>, add_v<V>, first_v<V>, LANES)
}
double fma_f32(long iters, double* sink) { return fma_generic<v4f, float, 4>(iters, sink); }
double fma_f64(long iters, double* sink) { return fma_generic<v2d, double, 2>(iters, sink); }
#endif

// Runs `body` on `threads` threads at once, best of `reps`; returns the best aggregate rate (units/s).
template <typename Body>
double best_rate(int threads, int reps, Body body) {
  double best = 0;
  for (int r = 0; r < reps; r++) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> units(threads, 0.0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
      pool.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) {
        }
        units[t] = body(t);
      });
    }
    while (ready.load() < threads) {
    }
    const Clock::time_point t0 = Clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : pool) th.join();
    const double s = seconds_since(t0);
    double total = 0;
    for (double u : units) total += u;
    best = std::max(best, total / s);
  }
  return best;
}

// ---- memory read bandwidth: each thread sums its own slice (first touched by that thread). ----
double sum_slice(const float* p, size_t n) {
#ifdef PROBE_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  float out[8];
  _mm256_storeu_ps(out, s);
  double total = 0;
  for (float v : out) total += v;
  for (; i < n; i++) total += p[i];
  return total;
#else
  v4f a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v4f x0, x1, x2, x3;
    std::memcpy(&x0, p + i, 16);
    std::memcpy(&x1, p + i + 4, 16);
    std::memcpy(&x2, p + i + 8, 16);
    std::memcpy(&x3, p + i + 12, 16);
    a0 += x0;
    a1 += x1;
    a2 += x2;
    a3 += x3;
  }
  v4f s = (a0 + a1) + (a2 + a3);
  double total = static_cast<double>(s[0]) + s[1] + s[2] + s[3];
  for (; i < n; i++) total += p[i];
  return total;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  const long mib = argc > 2 ? std::atol(argv[2]) : 512;
  volatile double sink_total = 0;

  // FMA rate: the iteration count doubled until one run on one thread takes over 0.05 s, times
  // `scale`; the best of `runs` runs on `nthreads` threads.
  auto fma_rate = [&](double (*fn)(long, double*), int nthreads, long scale, int runs) {
    long iters = 1 << 18;
    for (;;) {
      double sink;
      const Clock::time_point t0 = Clock::now();
      fn(iters, &sink);
      sink_total = sink_total + sink;
      if (seconds_since(t0) > 0.05) break;
      iters *= 2;
    }
    iters *= scale;
    std::vector<double> sinks(nthreads, 0.0);
    const double rate = best_rate(nthreads, runs, [&](int t) { return fn(iters, &sinks[t]); });
    for (double s : sinks) sink_total = sink_total + s;
    return rate / 1e9;
  };
  // "peak f32|f64": that dtype's FMA rate on `threads` threads alone, in about half a second (best of 5
  // runs of 50-100 ms): the bench's probe beside each round of a kernel (its side-by-side table), where
  // the full probe's seconds would be too long.
  if (argc > 4 && std::strcmp(argv[3], "peak") == 0) {
    const bool f64 = std::strcmp(argv[4], "f64") == 0;
    const double rate = fma_rate(f64 ? fma_f64 : fma_f32, threads, 1, 5);
    std::printf("{\"threads\":%d,\"dtype\":\"%s\",\"gflops\":%.2f,\"sink\":%g}\n", threads, f64 ? "f64" : "f32", rate,
                static_cast<double>(sink_total) * 0.0);
    return 0;
  }
  const double f32_1 = fma_rate(fma_f32, 1, 3, 3), f32_all = fma_rate(fma_f32, threads, 3, 3);
  const double f64_1 = fma_rate(fma_f64, 1, 3, 3), f64_all = fma_rate(fma_f64, threads, 3, 3);

  // Bandwidth: a buffer of `mib` MiB of floats, split into per-thread slices.
  const size_t n = static_cast<size_t>(mib) * 1024 * 1024 / sizeof(float);
  float* buf = static_cast<float*>(std::malloc(n * sizeof(float)));
  if (!buf) {
    std::fprintf(stderr, "roofline: cannot allocate %ld MiB\n", mib);
    return 1;
  }
  {
    std::vector<std::thread> pool;  // first touch by the thread that will read the slice
    for (int t = 0; t < threads; t++) {
      pool.emplace_back([=] {
        const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        for (size_t i = lo; i < hi; i++) buf[i] = static_cast<float>(i & 1023) * 1e-3f;
      });
    }
    for (auto& th : pool) th.join();
  }
  auto bandwidth = [&](int nthreads) {
    std::vector<double> sinks(nthreads, 0.0);
    const double rate = best_rate(nthreads, 5, [&](int t) {
      const size_t lo = n * t / nthreads, hi = n * (t + 1) / nthreads;
      sinks[t] += sum_slice(buf + lo, hi - lo);
      return static_cast<double>((hi - lo) * sizeof(float));
    });
    for (double s : sinks) sink_total = sink_total + s;
    return rate / 1e9;
  };
  const double bw_1 = bandwidth(1), bw_all = bandwidth(threads);
  std::free(buf);

#if defined(PROBE_AVX512)
  const char* isa = "avx512f+fma";
#elif defined(PROBE_AVX2)
  const char* isa = "avx2+fma";
#else
  const char* isa = "generic-128bit";
#endif
  std::printf(
      "{\"isa\":\"%s\",\"threads\":%d,\"bufferMiB\":%ld,"
      "\"f32\":{\"gflops1\":%.2f,\"gflopsAll\":%.2f},"
      "\"f64\":{\"gflops1\":%.2f,\"gflopsAll\":%.2f},"
      "\"bandwidth\":{\"gbps1\":%.2f,\"gbpsAll\":%.2f},\"sink\":%g}\n",
      isa, threads, mib, f32_1, f32_all, f64_1, f64_all, bw_1, bw_all, static_cast<double>(sink_total) * 0.0);
  return 0;
}
