// NEON-specific tests of the vectorized exp (native/kernels/linear_neon.cpp), beyond the generic
// kernel_test: the measured error bound (not just faithful rounding), also exhaustively over the
// inputs whose results are subnormal (rounded once, so held to the same bound), the positive range
// up to overflow, monotonicity, and exp_inplace on every tail length with the buffer's end against
// an inaccessible page (an over-read or over-write faults even without AddressSanitizer).
// Prints one line per failure and a final "N passed, M failed"; exits non-zero on failure. On a
// build without NEON kernels it runs nothing and reports 0 tests.
//
// Environment (for slow emulators; the defaults are the full test):
//   NEON_EXP_TEST_STRIDE=n       test every n-th float of the f32 sweeps (default 1: all of them)
//   NEON_EXP_TEST_F64_SAMPLES=n  samples of the f64 accuracy test (default 4·10^6)
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"

#if defined(SOFTMAX_SIMD_HAVE_NEON)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace {

size_t g_passed = 0, g_failed = 0;

[[maybe_unused]] void report(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    if (g_failed <= 50) std::printf("FAIL %s\n", what.c_str());
  }
}

#if defined(SOFTMAX_SIMD_HAVE_NEON)
using softmax_simd::linear_f32_neon;
using softmax_simd::linear_f64_neon;

// The bounds written in linear_neon.cpp (measured maxima, rounded up).
constexpr double kBoundF32 = 0.53;
constexpr double kBoundF64 = 0.52;

std::string fmt(const char* f, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ULP of a result whose exact value is e > 0: the spacing of its binade, at least the subnormal one.
double ulp_f32(double e) {
  int ex;
  std::frexp(e, &ex);
  return std::ldexp(1.0, ex - 24 < -149 ? -149 : ex - 24);
}
long double ulp_f64(long double e) {
  int ex;
  std::frexp(static_cast<double>(e), &ex);
  return std::ldexp(1.0L, ex - 53 < -1074 ? -1074 : ex - 53);
}

// Error in ULP of y against exact e (the float64 exp is exact enough for float results). Beyond
// the overflow threshold the only right answer is +inf.
double err_f32(float y, double e) {
  const double overflow = 0x1.ffffffp+127;  // FLT_MAX + half an ULP: rounds to +inf from here
  if (e >= overflow) return std::isinf(y) && y > 0 ? 0.0 : 1e9;
  if (std::isinf(y) || std::isnan(y)) return 1e9;
  return std::fabs(static_cast<double>(y) - e) / ulp_f32(e);
}

struct Sweep {
  double worst = 0;
  double worst_sub = 0;  // over the results that are subnormal
  float worst_x = 0;
  uint64_t count = 0;
  bool monotonic = true;
};

// Every stride-th float from bit pattern a to b (a > b walks towards larger x for negatives).
void sweep_f32(uint32_t from, uint32_t to, uint32_t stride, Sweep* s) {
  constexpr size_t kChunk = 4096;
  std::vector<float> in(kChunk), out(kChunk);
  const int64_t step = from <= to ? int64_t(stride) : -int64_t(stride);
  float prev_x = 0, prev_y = 0;
  bool have_prev = false;
  for (int64_t u = from;;) {
    size_t n = 0;
    for (; n < kChunk && (step > 0 ? u <= int64_t(to) : u >= int64_t(to)); ++n, u += step)
      in[n] = float_of(static_cast<uint32_t>(u));
    if (n == 0) break;
    std::memcpy(out.data(), in.data(), n * sizeof(float));
    linear_f32_neon.exp_inplace(out.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const double e = std::exp(static_cast<double>(in[i]));
      const double err = err_f32(out[i], e);
      if (e < 0x1p-126 && !(err <= s->worst_sub)) s->worst_sub = err == err ? err : 1e9;
      if (!(err <= s->worst)) {
        s->worst = err == err ? err : 1e9;
        s->worst_x = in[i];
      }
      // exp is non-decreasing: so must be its rounding.
      if (have_prev && in[i] > prev_x && out[i] < prev_y) s->monotonic = false;
      if (have_prev && in[i] < prev_x && out[i] > prev_y) s->monotonic = false;
      prev_x = in[i];
      prev_y = out[i];
      have_prev = true;
    }
    s->count += n;
  }
}

void test_f32(uint32_t stride) {
  // Negative inputs, walked from -0 down to -104 (past the underflow edge ln 2^-150 = -103.972).
  Sweep neg;
  sweep_f32(0x80000000u, 0xC2D00000u, stride, &neg);
  std::printf("  exp_f32 on [-104, 0]: max %.4f ULP at x = %.9g (%" PRIu64 " floats)\n", neg.worst,
              double(neg.worst_x), neg.count);
  report(neg.worst <= kBoundF32, fmt("exp_f32 on [-104, 0]: %.4f ULP <= %.2f", neg.worst, kBoundF32));
  report(neg.monotonic, "exp_f32 is monotonic on [-104, 0]");

  // Every input whose result is subnormal or in the lowest normal binade, always exhaustively:
  // [-104, -86.6] (exp(-86.6) ~ 2^-125).
  Sweep sub;
  sweep_f32(0xC2AD3333u, 0xC2D00000u, 1, &sub);
  std::printf("  exp_f32 on [-104, -86.6]: max %.4f ULP, on subnormal results %.4f ULP (%" PRIu64
              " floats)\n", sub.worst, sub.worst_sub, sub.count);
  report(sub.worst <= kBoundF32, fmt("exp_f32 on [-104, -86.6]: %.4f ULP <= %.2f", sub.worst, kBoundF32));
  // Rounded once from the accurate sum: no double-rounding error on top of the bound.
  report(sub.worst_sub <= kBoundF32,
         fmt("exp_f32 subnormal results: %.4f ULP <= %.2f", sub.worst_sub, kBoundF32));
  report(sub.monotonic, "exp_f32 is monotonic on [-104, -86.6]");

  // Positive inputs up to and past the overflow threshold ln(FLT_MAX) = 88.7228.
  Sweep pos;
  sweep_f32(0x00000000u, 0x42B20000u, stride, &pos);  // [0, 89]
  std::printf("  exp_f32 on [0, 89]: max %.4f ULP at x = %.9g (%" PRIu64 " floats)\n", pos.worst,
              double(pos.worst_x), pos.count);
  report(pos.worst <= kBoundF32, fmt("exp_f32 on [0, 89]: %.4f ULP <= %.2f", pos.worst, kBoundF32));
  report(pos.monotonic, "exp_f32 is monotonic on [0, 89]");

  // Special values.
  const float inf = std::numeric_limits<float>::infinity();
  float v[12] = {0.0f, -0.0f, -inf, inf, std::numeric_limits<float>::quiet_NaN(), -1e30f,
                 -std::numeric_limits<float>::max(), 1e30f, std::numeric_limits<float>::max(),
                 88.72283f, 88.7228394f, -std::numeric_limits<float>::denorm_min()};
  linear_f32_neon.exp_inplace(v, 12);
  report(v[0] == 1.0f && v[1] == 1.0f, "exp_f32(+-0) == 1");
  report(bits_of(v[2]) == 0 && bits_of(v[5]) == 0 && bits_of(v[6]) == 0,
         "exp_f32(-inf), exp_f32(-1e30), exp_f32(-FLT_MAX) == +0");
  report(std::isinf(v[3]) && v[3] > 0 && std::isinf(v[7]) && std::isinf(v[8]),
         "exp_f32(+inf), exp_f32(1e30), exp_f32(FLT_MAX) == +inf");
  report(std::isnan(v[4]), "exp_f32(NaN) is NaN");
  report(std::isfinite(v[9]) && v[9] > 3.4e38f, "exp_f32(88.72283) is finite, near FLT_MAX");
  report(std::isinf(v[10]), "exp_f32(88.7228394) overflows to +inf");
  report(v[11] == 1.0f, "exp_f32(-denorm_min) == 1");
}

void test_f64(size_t samples) {
  uint64_t state = 0x5eed;
  auto next = [&state]() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  auto uniform = [&next]() { return static_cast<double>(next() >> 11) * 0x1p-53; };
  constexpr size_t kChunk = 4096;
  std::vector<double> in(kChunk), out(kChunk);
  long double worst = 0, worst_sub = 0;
  double worst_x = 0;
  for (size_t done = 0; done < samples;) {
    const size_t n = samples - done < kChunk ? samples - done : kChunk;
    for (size_t i = 0; i < n; ++i) {
      switch ((done + i) % 5) {
        case 0: in[i] = -745.25 * uniform(); break;
        case 1: in[i] = -std::exp(std::log(1e-300) + uniform() * (std::log(745.25) - std::log(1e-300))); break;
        case 2: in[i] = -708.3 - 36.95 * uniform(); break;  // subnormal results
        case 3: in[i] = 709.78 * uniform(); break;          // below ln(DBL_MAX) = 709.7827
        default: in[i] = -uniform(); break;
      }
    }
    std::memcpy(out.data(), in.data(), n * sizeof(double));
    linear_f64_neon.exp_inplace(out.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const long double e = expl(static_cast<long double>(in[i]));
      long double err = fabsl(static_cast<long double>(out[i]) - e) / ulp_f64(e);
      if (err != err || std::isinf(out[i])) err = 1e9;
      if (!(err <= worst)) {
        worst = err;
        worst_x = in[i];
      }
      if (e < 0x1p-1022L && err > worst_sub) worst_sub = err;
    }
    done += n;
  }
  std::printf("  exp_f64: max %.4f ULP at x = %.17g, subnormal results %.4f ULP (%zu samples)\n",
              double(worst), worst_x, double(worst_sub), samples);
  report(worst <= kBoundF64, fmt("exp_f64: %.4f ULP <= %.2f", double(worst), kBoundF64));
  report(worst_sub <= kBoundF64,
         fmt("exp_f64 subnormal results: %.4f ULP <= %.2f", double(worst_sub), kBoundF64));

  const double inf = std::numeric_limits<double>::infinity();
  double v[10] = {0.0, -0.0, -inf, inf, std::numeric_limits<double>::quiet_NaN(), -1e300,
                  -std::numeric_limits<double>::max(), 1e300, 709.782712893384,
                  709.78271289338409};
  linear_f64_neon.exp_inplace(v, 10);
  report(v[0] == 1.0 && v[1] == 1.0, "exp_f64(+-0) == 1");
  report(v[2] == 0 && !std::signbit(v[2]) && v[5] == 0 && !std::signbit(v[5]) && v[6] == 0 &&
             !std::signbit(v[6]),
         "exp_f64(-inf), exp_f64(-1e300), exp_f64(-DBL_MAX) == +0");
  report(std::isinf(v[3]) && v[3] > 0 && std::isinf(v[7]), "exp_f64(+inf), exp_f64(1e300) == +inf");
  report(std::isnan(v[4]), "exp_f64(NaN) is NaN");
  report(std::isfinite(v[8]) && v[8] > 1.79e308, "exp_f64(709.782712893384) is finite, near DBL_MAX");
  report(std::isinf(v[9]), "exp_f64(709.78271289338409) overflows to +inf");
}

// exp_inplace on n values that end exactly at an inaccessible page: any access past the end
// faults. The values must match a one-at-a-time evaluation.
template <typename T>
void test_tails(const softmax_simd::LinearKernels<T>& kern, const char* dname) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED || mprotect(static_cast<char*>(mem) + page, page, PROT_NONE) != 0) {
    report(false, std::string("mmap/mprotect for the guard page (") + dname + ")");
    return;
  }
  T* end = reinterpret_cast<T*>(static_cast<char*>(mem) + page);
  bool ok = true;
  for (size_t n = 0; n <= 19; ++n) {
    T* v = end - n;
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(-0.37 * double(i * i) - 0.01);
    std::vector<T> want(v, v + n);
    for (size_t i = 0; i < n; ++i) kern.exp_inplace(&want[i], 1);
    if (n > 0) end[-static_cast<ptrdiff_t>(n) - 1] = T(-7);  // the value just before must stay
    kern.exp_inplace(v, n);
    for (size_t i = 0; i < n; ++i) ok = ok && std::memcmp(&v[i], &want[i], sizeof(T)) == 0;
    if (n > 0) ok = ok && end[-static_cast<ptrdiff_t>(n) - 1] == T(-7);
  }
  munmap(mem, 2 * page);
  report(ok, std::string("exp_") + dname + " on every tail length 0..19 stays inside its buffer");
}
#endif  // SOFTMAX_SIMD_HAVE_NEON

}  // namespace

int main() {
#if defined(SOFTMAX_SIMD_HAVE_NEON)
  const char* s = std::getenv("NEON_EXP_TEST_STRIDE");
  const uint32_t stride = s && std::atoi(s) > 0 ? static_cast<uint32_t>(std::atoi(s)) : 1;
  const char* f = std::getenv("NEON_EXP_TEST_F64_SAMPLES");
  const size_t samples = f && std::atoll(f) > 0 ? static_cast<size_t>(std::atoll(f)) : 4000000;
  report(std::strcmp(linear_f32_neon.isa, "neon") == 0 && std::strcmp(linear_f64_neon.isa, "neon") == 0,
         "the NEON tables say isa 'neon'");
  test_f32(stride);
  test_f64(samples);
  test_tails(linear_f32_neon, "f32");
  test_tails(linear_f64_neon, "f64");
#else
  std::printf("neon_exp_test: this build has no NEON kernels; nothing to test\n");
#endif
  std::printf("%zu passed, %zu failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
