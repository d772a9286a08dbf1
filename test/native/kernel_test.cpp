// Native kernel tests: every ISA compiled into this build and supported by this CPU is compared with
// the portable scalar table, kernel by kernel and through the driver functions of native/linear.hpp,
// in float32 and float64; and each ISA's exp is measured in ULP against a higher-precision reference.
// No framework: prints one line per failure and a final "N passed, M failed"; exits non-zero on
// failure. Generic over ISAs (x86-64 AVX2 natively, aarch64 NEON under qemu).
//
// Inputs live at the very end of buffers allocated with exactly their size (optionally one element
// in, so the pointer is unaligned), so an over-read is caught when built with AddressSanitizer.
//
// Environment (for slow emulators only; the defaults are the full test):
//   KERNEL_TEST_F32_EXP_STRIDE=n   test every n-th float of the f32 exp sweep (default 1: all of them)
//   KERNEL_TEST_F64_EXP_SAMPLES=n  samples of the f64 exp accuracy test (default 2·10^7)
//   KERNEL_TEST_SMAPS=0            do not read the advice back from /proc/self/smaps (qemu-user makes up
//                                  that file for its guest, without the flags the kernel keeps)
#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "linear.hpp"
#include "memory_hints.hpp"

using namespace softmax_simd;

namespace {

size_t g_passed = 0, g_failed = 0;

void report(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    if (g_failed <= 50) std::printf("FAIL %s\n", what.c_str());
  }
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// splitmix64: deterministic inputs on every platform.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double sym() { return 2 * uniform() - 1; }  // [-1, 1)
};

// A buffer of exactly `off + n` elements whose data pointer is `off` elements in: the data ends at
// the allocation's end.
template <typename T>
struct Buf {
  std::unique_ptr<T[]> mem;
  T* p = nullptr;
  size_t n = 0;
  Buf(size_t n_, size_t off) : mem(new T[n_ + off]), p(mem.get() + off), n(n_) {}
  T& operator[](size_t i) { return p[i]; }
  const T& operator[](size_t i) const { return p[i]; }
};

template <typename T>
void fill(Buf<T>& b, Rng& rng, double scale) {
  for (size_t i = 0; i < b.n; ++i) b[i] = static_cast<T>(scale * rng.sym());
}

template <typename T>
const char* dname() {
  return sizeof(T) == 4 ? "f32" : "f64";
}

template <typename T>
constexpr double eps() {
  return static_cast<double>(std::numeric_limits<T>::epsilon());
}

template <typename T>
const LinearKernels<T>& table(const KernelSet& ks);
template <>
const LinearKernels<float>& table<float>(const KernelSet& ks) {
  return *ks.linear_f32;
}
template <>
const LinearKernels<double>& table<double>(const KernelSet& ks) {
  return *ks.linear_f64;
}

template <typename T>
void transpose(const T* W, size_t D, size_t K, T* Wt, size_t ldt) {
  for (size_t d = 0; d < D; ++d)
    for (size_t k = 0; k < K; ++k) Wt[k * ldt + d] = W[d * K + k];
}

// What the gaps of padded row strides hold: in Wt (ldt), a NaN, which a read into a score would
// spread; in an accumulator (ld), a finite value, which any write would change (a NaN would
// survive a read-modify-write).
template <typename T>
T wt_gap_value() {
  return std::numeric_limits<T>::quiet_NaN();
}
template <typename T>
T acc_gap_value() {
  return T(-7.25);
}

// Whether every gap element (columns [D, ld) of each of the K rows) still holds acc_gap_value().
template <typename T>
bool gaps_untouched(const T* a, size_t D, size_t K, size_t ld) {
  for (size_t k = 0; k < K; ++k)
    for (size_t j = D; j < ld; ++j)
      if (a[k * ld + j] != acc_gap_value<T>()) return false;
  return true;
}

// Width of the widest vector of any ISA (AVX-512), in elements: sizes 1..2W+1 cover below, at and
// above it.
template <typename T>
constexpr size_t vec_width() {
  return 64 / sizeof(T);
}

template <typename T>
std::vector<size_t> dims() {
  std::vector<size_t> v;
  for (size_t i = 1; i <= 2 * vec_width<T>() + 1; ++i) v.push_back(i);
  for (size_t p : {17, 31, 97, 257}) v.push_back(p);
  return v;
}

template <typename T>
std::vector<size_t> classes() {
  std::vector<size_t> v;
  for (size_t i = 1; i <= 2 * vec_width<T>() + 1; ++i) v.push_back(i);
  for (size_t k : {10, 17, 31, 32, 33, 100, 1000}) v.push_back(k);
  return v;
}

// ------------------------------------------------------------------------------------------------
// Kernel: scores. Error bound of a dot product of length n in any order (FMA or not):
// |fl - exact| <= gamma_n * sum|a_i b_i|, gamma_n ~ n*u (u = eps/2). Two implementations differ by at
// most twice that; we allow (n + 2) * eps * sum|a_i b_i| (the bias is term n + 1).
// ------------------------------------------------------------------------------------------------
template <typename T>
void test_scores_kernel(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref,
                        Rng& rng) {
  // D = 1024 as well: rows whose class group of Wt exceeds kGroupWtBytes (linear_simd.inl), where
  // the SIMD tiles take the classes of each row group together instead of one group at a time.
  std::vector<size_t> Ds = dims<T>();
  Ds.push_back(1024);
  for (size_t D : Ds)
    for (size_t K : classes<T>())
      for (size_t rows : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(13)}) {
        if (K == 1000 && D > 31 && rows > 3) continue;  // keep the run short; tiles are covered
        if (D == 1024 && K > 33) continue;
        for (size_t off : {0, 1})
          for (int with_bias = 0; with_bias < 2; ++with_bias) {
            const double xs = (off && with_bias) ? 30.0 : 1.0;  // large logits on one variant
            // Wt's rows a line further apart than D on the variant with a bias (as the driver
            // packs them for rows of a multiple of 512 bytes), the gaps NaN.
            const size_t ldt = with_bias ? D + vec_width<T>() : D;
            Buf<T> X(rows * D, off), W(D * K, off), Wt(K * ldt, off), b(K, off);
            Buf<T> S(rows * K, off), Sref(rows * K, off);
            fill(X, rng, xs);
            fill(W, rng, xs);
            fill(b, rng, xs);
            std::fill(Wt.p, Wt.p + K * ldt, wt_gap_value<T>());
            transpose(W.p, D, K, Wt.p, ldt);
            const WeightsView<T> wv{W.p, Wt.p, D, K, K, ldt};
            const T* bias = with_bias ? b.p : nullptr;
            // The next rows to ask the cache for (a scores-only pass): X itself, or none (the
            // fused pass's scores) on one variant.
            const bool ask = with_bias || !off;
            kern.scores(X.p, rows, wv, bias, S.p, ask ? X.p : nullptr, ask ? rows : 0);
            ref.scores(X.p, rows, wv, bias, Sref.p, nullptr, 0);
            double worst = 0;
            bool ok = true;
            for (size_t r = 0; r < rows; ++r)
              for (size_t k = 0; k < K; ++k) {
                double abs_sum = bias ? std::fabs(double(b[k])) : 0.0;
                for (size_t d = 0; d < D; ++d) abs_sum += std::fabs(double(X[r * D + d]) * double(W[d * K + k]));
                const double tol = (D + 2) * eps<T>() * abs_sum;
                const double err = std::fabs(double(S[r * K + k]) - double(Sref[r * K + k]));
                if (!(err <= tol)) ok = false;
                if (tol > 0 && err / tol > worst) worst = err / tol;
              }
            report(ok, fmt("%s scores_%s rows=%zu D=%zu K=%zu ldt=%zu off=%zu bias=%d: worst err/tol %.3g",
                           isa, dname<T>(), rows, D, K, ldt, off, with_bias, worst));
          }
      }
}

// ------------------------------------------------------------------------------------------------
// Kernel: grad_update, both layouts (the table must honour the one it is given).
// acc + sum_r x g: length rows + 1 sums, bound (rows + 3) * eps * (|acc0| + sum |x g|).
// ------------------------------------------------------------------------------------------------
template <typename T>
void test_grad_kernel(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref,
                      Rng& rng) {
  std::vector<std::array<size_t, 3>> cases;  // D, K, rows
  for (size_t D : dims<T>())
    for (size_t K : classes<T>())
      for (size_t rows : {size_t(1), size_t(2), size_t(5), size_t(13)}) {
        if (K == 1000 && D > 31 && rows > 2) continue;
        cases.push_back({D, K, rows});
      }
  // Row strides that are multiples of 4 KiB (cifar's D = 3072; the AVX2 kernel copies such blocks
  // into a tile-major buffer first), with blocks of the driver's sizes and beyond.
  for (size_t D : {size_t(512), size_t(1024), size_t(3072)})
    for (size_t K : {size_t(1), size_t(5), size_t(10), size_t(17)})
      for (size_t rows : {size_t(5), size_t(26), size_t(64), size_t(300)}) cases.push_back({D, K, rows});
  for (const auto& c : cases) {
        const size_t D = c[0], K = c[1], rows = c[2];
        for (GradLayout layout : {GradLayout::KD, GradLayout::DK})
          for (size_t off : {0, 1}) {
            // Layout KD with off = 1: acc's rows a line further apart than D (as the driver keeps
            // them for rows of a multiple of 512 bytes), the gaps checked untouched.
            const bool padded = layout == GradLayout::KD && off;
            const size_t ld = padded ? D + vec_width<T>() : D;
            const size_t n = K * ld;
            Buf<T> X(rows * D, off), G(rows * K, off), acc(n, off), accref(n, off);
            fill(X, rng, 1.0);
            fill(G, rng, off ? 1e3 : 1.0);
            fill(acc, rng, 1.0);
            if (padded)
              for (size_t k = 0; k < K; ++k) std::fill(acc.p + k * ld + D, acc.p + (k + 1) * ld, acc_gap_value<T>());
            std::memcpy(accref.p, acc.p, sizeof(T) * n);
            Buf<T> acc0(n, 0);
            std::memcpy(acc0.p, acc.p, sizeof(T) * n);
            // The next rows to prefetch: X itself again (any readable rows; results never change).
            kern.grad_update(X.p, rows, D, G.p, K, acc.p, ld, layout, X.p, rows);
            ref.grad_update(X.p, rows, D, G.p, K, accref.p, ld, layout, nullptr, 0);
            bool ok = !padded || gaps_untouched(acc.p, D, K, ld);
            double worst = 0;
            for (size_t d = 0; d < D; ++d)
              for (size_t k = 0; k < K; ++k) {
                const size_t i = layout == GradLayout::DK ? d * K + k : k * ld + d;
                double abs_sum = std::fabs(double(acc0[i]));
                for (size_t r = 0; r < rows; ++r) abs_sum += std::fabs(double(X[r * D + d]) * double(G[r * K + k]));
                const double tol = (rows + 3) * eps<T>() * abs_sum;
                const double err = std::fabs(double(acc[i]) - double(accref[i]));
                if (!(err <= tol)) ok = false;
                if (tol > 0 && err / tol > worst) worst = err / tol;
              }
            report(ok, fmt("%s grad_update_%s layout=%s rows=%zu D=%zu K=%zu ld=%zu off=%zu: worst err/tol %.3g",
                           isa, dname<T>(), layout == GradLayout::DK ? "DK" : "KD", rows, D, K, ld, off,
                           worst));
          }
      }
  for (size_t D : {1, 10, 784})
    for (size_t K : {1, 10, 1000}) {
      const GradLayout l = kern.grad_layout(D, K);
      report(l == GradLayout::DK || l == GradLayout::KD,
             fmt("%s grad_layout_%s(%zu, %zu) is a valid layout", isa, dname<T>(), D, K));
    }
}

// ------------------------------------------------------------------------------------------------
// exp: accuracy against a higher-precision reference, special values, and kernel vs scalar on
// exact-size buffers of every tail length.
// ------------------------------------------------------------------------------------------------

// The bound each ISA's exp is held to, in ULP of the exact result (a subnormal result's ULP is the
// subnormal spacing). The avx2 numbers are the measured maxima (see native/kernels/linear_avx2.cpp)
// rounded up; any other ISA must at least be faithfully rounded (< 1 ULP).
double exp_bound(const char* isa, bool f32) {
  // The measured bounds written at each ISA's exp (native/kernels/linear_<isa>.cpp); scalar is libm.
  if (std::strcmp(isa, "avx2") == 0 || std::strcmp(isa, "avx512") == 0) return f32 ? 0.52 : 0.52;
  if (std::strcmp(isa, "neon") == 0) return f32 ? 0.53 : 0.52;
  return 1.0;
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

// ULP of a float at the exact value e > 0 (e in double): 2^(exponent(e) - 23), at least 2^-149.
// From the bits rather than frexp/ldexp: this runs once per float of the exhaustive sweep.
double ulp_f32(double e) {
  uint64_t u;
  std::memcpy(&u, &e, 8);
  const int ex = static_cast<int>((u >> 52) & 0x7FF) - 1022;  // e = m * 2^ex, m in [0.5, 1); e is a normal double
  const int p = ex - 24 < -149 ? -149 : ex - 24;
  const uint64_t bits = static_cast<uint64_t>(p + 1023) << 52;
  double r;
  std::memcpy(&r, &bits, 8);
  return r;
}
long double ulp_f64(long double e) {
  int ex;
  std::frexp(static_cast<double>(e), &ex);
  const int p = ex - 53 < -1074 ? -1074 : ex - 53;
  return std::ldexp(1.0L, p);
}

// The exhaustive float32 sweep checks every ISA in one pass: the correctly rounded reference (a
// float64 exp per float, most of the sweep's time) is computed once per float, not once per ISA.
struct ExpF32Sweep {
  const char* isa;
  const LinearKernels<float>* kern;
  double worst = 0;
  float worst_x = 0;
  uint32_t worst_int = 0;
  bool zero_ok = true;
};

void test_exp_f32(std::vector<ExpF32Sweep>& sweeps) {
  const char* env = std::getenv("KERNEL_TEST_F32_EXP_STRIDE");
  const uint32_t stride = env && std::atoi(env) > 0 ? static_cast<uint32_t>(std::atoi(env)) : 1;
  // Every float in [-104, -0]: bit patterns 0x80000000 (-0) .. 0xC2D00000 (-104), past the
  // underflow edge ln(2^-150) = -103.972.
  const uint32_t first = 0x80000000u, last = 0xC2D00000u;
  constexpr size_t kChunk = 4096;
  std::vector<float> in(kChunk), out(kChunk);
  std::vector<double> exact(kChunk), ulp(kChunk);
  std::vector<uint32_t> rounded(kChunk);
  uint64_t count = 0;
  for (uint64_t u = first; u <= last;) {
    size_t n = 0;
    for (; n < kChunk && u <= last; ++n, u += stride) in[n] = float_of(static_cast<uint32_t>(u));
    for (size_t i = 0; i < n; ++i) {
      exact[i] = std::exp(static_cast<double>(in[i]));
      ulp[i] = ulp_f32(exact[i]);
      rounded[i] = bits_of(static_cast<float>(exact[i]));
    }
    for (ExpF32Sweep& sw : sweeps) {
      std::memcpy(out.data(), in.data(), n * sizeof(float));
      sw.kern->exp_inplace(out.data(), n);
      for (size_t i = 0; i < n; ++i) {
        const float y = out[i];
        const double err = std::fabs(static_cast<double>(y) - exact[i]) / ulp[i];
        if (err != err) {
          sw.worst = 1e9;  // a NaN result: fail loudly
          sw.worst_x = in[i];
        } else if (err > sw.worst) {
          sw.worst = err;
          sw.worst_x = in[i];
        }
        const uint32_t a = bits_of(y), b = rounded[i];
        const uint32_t dist = a > b ? a - b : b - a;
        if (dist > sw.worst_int) sw.worst_int = dist;
        if (exact[i] < std::ldexp(1.0, -150) && a != 0) sw.zero_ok = false;
      }
    }
    count += n;
  }
  for (const ExpF32Sweep& sw : sweeps) {
    const char* isa = sw.isa;
    std::printf("  %s exp_f32: max error %.4f ULP at x = %.9g (max %u ULP from (float)exp((double)x)) over %" PRIu64
                " floats in [-104, 0]\n",
                isa, sw.worst, static_cast<double>(sw.worst_x), sw.worst_int, count);
    report(sw.worst <= exp_bound(isa, true),
           fmt("%s exp_f32 max error %.4f ULP <= %.2f", isa, sw.worst, exp_bound(isa, true)));
    report(sw.worst_int <= 1, fmt("%s exp_f32 within 1 ULP of (float)exp((double)x) (got %u)", isa, sw.worst_int));
    report(sw.zero_ok, fmt("%s exp_f32 gives exactly +0 below the underflow edge", isa));

    // Far below the edge down to -inf: exactly +0 (every 997th pattern).
    bool below_ok = true;
    for (uint64_t u = last; u <= 0xFF800000u; u += 997) {
      float v = float_of(static_cast<uint32_t>(u));
      sw.kern->exp_inplace(&v, 1);
      if (bits_of(v) != 0) below_ok = false;
    }
    report(below_ok, fmt("%s exp_f32 is +0 on [-inf, -104]", isa));
  }
}

void test_exp_f64(const char* isa, const LinearKernels<double>& kern) {
  const char* env = std::getenv("KERNEL_TEST_F64_EXP_SAMPLES");
  const size_t samples = env && std::atoll(env) > 0 ? static_cast<size_t>(std::atoll(env)) : 20000000;
  Rng rng(12345);
  constexpr size_t kChunk = 4096;
  std::vector<double> in(kChunk), out(kChunk);
  long double worst = 0;
  double worst_x = 0;
  bool zero_ok = true;
  const double lo = -745.25;  // below ln(2^-1075) = -745.1332
  for (size_t done = 0; done < samples;) {
    const size_t n = samples - done < kChunk ? samples - done : kChunk;
    for (size_t i = 0; i < n; ++i) {
      // Half uniform over [lo, 0], half log-uniform in |x| over [1e-300, 745.25].
      in[i] = (done + i) % 2 ? lo * rng.uniform() : -std::exp(std::log(1e-300) + rng.uniform() * (std::log(-lo) - std::log(1e-300)));
    }
    std::memcpy(out.data(), in.data(), n * sizeof(double));
    kern.exp_inplace(out.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const long double e = expl(static_cast<long double>(in[i]));
      const long double err = fabsl(static_cast<long double>(out[i]) - e) / ulp_f64(e);
      if (!(err <= worst)) {
        if (err != err) {
          worst = 1e9;
        } else {
          worst = err;
          worst_x = in[i];
        }
      }
      if (e < std::ldexp(1.0L, -1075) && out[i] != 0) zero_ok = false;
      if (out[i] == 0 && std::signbit(out[i])) zero_ok = false;
    }
    done += n;
  }
  std::printf("  %s exp_f64: max error %.4f ULP at x = %.17g over %zu samples in [-745.25, 0] (ref: expl)\n", isa,
              static_cast<double>(worst), worst_x, samples);
  report(worst <= exp_bound(isa, false),
         fmt("%s exp_f64 max error %.4f ULP <= %.2f", isa, static_cast<double>(worst), exp_bound(isa, false)));
  report(zero_ok, fmt("%s exp_f64 gives exactly +0 below the underflow edge", isa));
}

template <typename T>
T run_exp1(const LinearKernels<T>& kern, T x) {
  Buf<T> b(1, 0);
  b[0] = x;
  kern.exp_inplace(b.p, 1);
  return b[0];
}

template <typename T>
bool is_pos_zero(T v) {
  return v == 0 && !std::signbit(v);
}

template <typename T>
void test_exp_special(const char* isa, const LinearKernels<T>& kern) {
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const char* dn = dname<T>();
  report(run_exp1(kern, T(0)) == T(1), fmt("%s exp_%s(0) == 1 exactly", isa, dn));
  report(run_exp1(kern, -T(0)) == T(1), fmt("%s exp_%s(-0) == 1 exactly", isa, dn));
  report(is_pos_zero(run_exp1(kern, T(-1000))), fmt("%s exp_%s(-1000) == +0", isa, dn));
  report(is_pos_zero(run_exp1(kern, T(-1e30))), fmt("%s exp_%s(-1e30) == +0", isa, dn));
  report(is_pos_zero(run_exp1(kern, -inf)), fmt("%s exp_%s(-inf) == +0", isa, dn));
  report(std::isnan(run_exp1(kern, nan)), fmt("%s exp_%s(NaN) is NaN", isa, dn));
  report(std::isnan(run_exp1(kern, -nan)), fmt("%s exp_%s(-NaN) is NaN", isa, dn));
  // The underflow edge: exp(x) = 2^-(emin_sub+1) exactly at x_edge = ln(2^-150) / ln(2^-1075); just
  // below rounds to +0, just above to the smallest subnormal; the start of the subnormal range.
  const bool f32 = sizeof(T) == 4;
  const long double tiny = f32 ? std::ldexp(1.0L, -149) : std::ldexp(1.0L, -1074);
  const long double edge = logl(tiny / 2);
  const T below = static_cast<T>(edge) > edge ? std::nextafter(static_cast<T>(edge), -inf) : static_cast<T>(edge);
  T above = std::nextafter(below, inf);
  if (static_cast<long double>(above) <= edge) above = std::nextafter(above, inf);
  report(is_pos_zero(run_exp1(kern, below)), fmt("%s exp_%s(%.17g) (just below the edge) == +0", isa, dn, double(below)));
  report(static_cast<long double>(run_exp1(kern, above)) == tiny,
         fmt("%s exp_%s(%.17g) (just above the edge) == smallest subnormal (got %.17g)", isa, dn, double(above),
             double(run_exp1(kern, above))));
  const T normal_edge = static_cast<T>(logl(static_cast<long double>(std::numeric_limits<T>::min())));
  for (T x : {normal_edge, std::nextafter(normal_edge, -inf), std::nextafter(normal_edge, inf),
              T(f32 ? -100 : -740), T(-1), T(-1e-3), T(-1e-30)}) {
    const long double e = expl(static_cast<long double>(x));
    const long double u = f32 ? static_cast<long double>(ulp_f32(static_cast<double>(e))) : ulp_f64(e);
    const long double err = fabsl(static_cast<long double>(run_exp1(kern, x)) - e) / u;
    report(err <= exp_bound(isa, f32), fmt("%s exp_%s(%.17g): %.3f ULP", isa, dn, double(x), double(err)));
  }
}

// Kernel vs scalar on exact-size buffers of every tail length, with special values mixed in.
template <typename T>
void test_exp_tails(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref, Rng& rng) {
  const bool f32 = sizeof(T) == 4;
  for (size_t n = 1; n <= 4 * vec_width<T>() + 3; ++n)
    for (size_t off : {0, 1}) {
      Buf<T> a(n, off), b(n, off);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t pick = rng.next() % 16;
        T v = static_cast<T>(-(f32 ? 110.0 : 750.0) * rng.uniform());
        if (pick == 0) v = -std::numeric_limits<T>::infinity();
        if (pick == 1) v = std::numeric_limits<T>::quiet_NaN();
        if (pick == 2) v = 0;
        a[i] = b[i] = v;
      }
      kern.exp_inplace(a.p, n);
      ref.exp_inplace(b.p, n);
      bool ok = true;
      for (size_t i = 0; i < n; ++i) {
        if (std::isnan(b[i])) {
          ok = ok && std::isnan(a[i]);
          continue;
        }
        // Both within their bound of the exact value: at most bound + 1 ULP apart.
        const double e = static_cast<double>(b[i]);
        const double u = f32 ? ulp_f32(e) : static_cast<double>(ulp_f64(e));
        ok = ok && std::fabs(double(a[i]) - e) <= (exp_bound(isa, f32) + 1.0) * u;
      }
      report(ok, fmt("%s exp_%s tail n=%zu off=%zu matches scalar", isa, dname<T>(), n, off));
    }
}

// ------------------------------------------------------------------------------------------------
// Driver: loss_grad, scores, softmax, predict through native/linear.hpp.
// ------------------------------------------------------------------------------------------------

template <typename T>
struct Model {
  size_t N, D, K;
  Buf<T> X, W, b;
  Buf<int32_t> y;
  Model(size_t N_, size_t D_, size_t K_, size_t off, double scale, Rng& rng)
      : N(N_), D(D_), K(K_), X(N_ * D_, off), W(D_ * K_, off), b(K_, off), y(N_, off) {
    fill(X, rng, 1.0);
    fill(W, rng, scale);
    fill(b, rng, scale);
    for (size_t i = 0; i < N; ++i) y[i] = static_cast<int32_t>(rng.next() % K);
  }
  // Per row: the bound on one implementation's score error, (D + 2) * eps * max_k sum |x w| + |b|,
  // and the largest |score| (in double).
  void row_bounds(std::vector<double>& e, std::vector<double>& fmax) const {
    e.assign(N, 0);
    fmax.assign(N, 0);
    for (size_t r = 0; r < N; ++r)
      for (size_t k = 0; k < K; ++k) {
        double s = double(b[k]), a = std::fabs(double(b[k]));
        for (size_t d = 0; d < D; ++d) {
          s += double(X[r * D + d]) * double(W[d * K + k]);
          a += std::fabs(double(X[r * D + d]) * double(W[d * K + k]));
        }
        e[r] = std::max(e[r], (D + 2) * eps<T>() * a);
        fmax[r] = std::max(fmax[r], std::fabs(s));
      }
  }
  // The fused pass's problem over this model's rows and labels.
  LossProblem<T> problem() const {
    LossProblem<T> pb;
    pb.X = X.p;
    pb.N = N;
    pb.D = D;
    pb.K = K;
    pb.W = W.p;
    pb.b = b.p;
    pb.labels = y.p;
    return pb;
  }
};

template <typename T>
void test_loss_grad(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref, Rng& rng) {
  const std::vector<size_t> Ds = {1, 3, 7, 8, 9, 17, 31, 97, 257};
  const std::vector<size_t> Ks = {1, 2, 3, 10, 17, 100, 1000};
  for (size_t D : Ds)
    for (size_t K : Ks)
      for (size_t N : {size_t(1), size_t(7), size_t(300)}) {
        if (K == 1000 && N == 300 && D > 31) continue;
        const size_t off = (D + K + N) % 2;
        const double scale = (D % 2) ? 1.0 : 300.0 / std::sqrt(double(D));  // |f| ~ 1e2..1e3 on even D
        Model<T> m(N, D, K, off, scale, rng);
        const LossProblem<T> pb = m.problem();
        for (size_t threads : {size_t(1), size_t(2)}) {
          std::vector<double> s1(loss_sums_size(D, K)), s2(loss_sums_size(D, K));
          const LossOutcome o1 = loss_grad(kern, pb, threads, s1.data());
          const LossOutcome o2 = loss_grad(ref, pb, threads, s2.data());
          if (!(o1.status == LossStatus::ok && o2.status == LossStatus::ok)) {
            report(false, fmt("%s loss_grad_%s N=%zu D=%zu K=%zu: status %d / %d", isa, dname<T>(), N, D, K,
                              int(o1.status), int(o2.status)));
            continue;
          }
          // Tolerances from the error analysis: the scores of row r differ by at most 2 e_r; the
          // softmax and so each g_rk by at most 4 e_r + (2K + 8) eps (exp and the sums over K); dW
          // adds the accumulation (float32 sums over up to 256 + a block of rows, then float64).
          std::vector<double> e, fmax;
          m.row_bounds(e, fmax);
          const double u = eps<T>();
          const double acc_len = sizeof(T) == 4 ? 256.0 + double(block_rows(D, K, sizeof(T))) : double(N);
          double tol_loss = 0;
          for (size_t r = 0; r < N; ++r) tol_loss += 4 * e[r] + (K + 8) * u * (fmax[r] + 1);
          bool ok = std::fabs(s1[0] - s2[0]) <= tol_loss && s1[1] == s2[1];
          double worst = std::fabs(s1[0] - s2[0]) / tol_loss;
          for (size_t d = 0; d < D && ok; ++d)
            for (size_t k = 0; k < K; ++k) {
              double tol = 0;
              for (size_t r = 0; r < N; ++r) {
                const double x = std::fabs(double(m.X[r * D + d]));
                tol += x * (4 * e[r] + (2 * K + 8) * u + 2 * (acc_len + 2) * u * 2);
              }
              const double err = std::fabs(s1[2 + d * K + k] - s2[2 + d * K + k]);
              if (!(err <= tol)) ok = false;
              if (tol > 0) worst = std::max(worst, err / tol);
            }
          for (size_t k = 0; k < K; ++k) {
            double tol = 0;
            for (size_t r = 0; r < N; ++r) tol += 4 * e[r] + (2 * K + 8) * u;
            const double err = std::fabs(s1[2 + D * K + k] - s2[2 + D * K + k]);
            if (!(err <= tol)) ok = false;
            if (tol > 0) worst = std::max(worst, err / tol);
          }
          report(ok, fmt("%s loss_grad_%s N=%zu D=%zu K=%zu threads=%zu off=%zu: worst err/tol %.3g", isa,
                         dname<T>(), N, D, K, threads, off, worst));
        }
      }
}

// ------------------------------------------------------------------------------------------------
// The fused pass's chunks (chunks_for): with more chunks than parts, the threads take chunks in
// whatever order they finish, and the result must still be the chunks' own passes added in chunk
// order, bitwise, call after call; a bad label in a later chunk must not hide one in an earlier one.
// ------------------------------------------------------------------------------------------------
template <typename T>
void test_chunks_of(const char* isa, const LinearKernels<T>& kern, Rng& rng, size_t N, size_t D, size_t K) {
  Model<T> m(N, D, K, 1, 1.0, rng);
  const LossProblem<T> pb = m.problem();
  const size_t B = block_rows(D, K, sizeof(T));
  const size_t n = loss_sums_size(D, K);
  for (size_t threads : {size_t(2), size_t(3)}) {
    const size_t chunks = chunks_for(N, D, K, B, parts_for(N, D, K, threads));
    std::vector<double> want(n), part(n);
    bool whole = chunk_begin(N, B, 0, chunks) == 0 && chunk_begin(N, B, chunks, chunks) == N;
    for (size_t c = 0; c < chunks; ++c) {
      const size_t a = chunk_begin(N, B, c, chunks), z = chunk_begin(N, B, c + 1, chunks);
      whole = whole && a % B == 0 && z > a;
      LossProblem<T> sub = pb;
      sub.X = pb.X + a * D;
      sub.N = z - a;
      sub.labels = pb.labels + a;
      whole = whole && loss_grad(kern, sub, 1, part.data()).status == LossStatus::ok;
      for (size_t j = 0; j < n; ++j) want[j] = c == 0 ? part[j] : want[j] + part[j];
    }
    bool same = true;
    for (int call = 0; call < 4; ++call) {
      std::vector<double> got(n);
      same = same && loss_grad(kern, pb, threads, got.data()).status == LossStatus::ok &&
             std::memcmp(got.data(), want.data(), n * sizeof(double)) == 0;
    }
    report(chunks > threads && whole && same,
           fmt("%s loss_grad_%s N=%zu D=%zu K=%zu threads=%zu: %zu chunks of whole blocks, 4 calls bitwise the "
               "chunks' passes added in order", isa, dname<T>(), N, D, K, threads, chunks));
    const int32_t y_early = m.y[N / 3], y_late = m.y[N - 5];
    m.y[N / 3] = static_cast<int32_t>(K);
    m.y[N - 5] = -1;
    std::vector<double> untouched(n, 7.0);
    const LossOutcome bad = loss_grad(kern, pb, threads, untouched.data());
    report(bad.status == LossStatus::bad_label && bad.row == N / 3 && untouched[0] == 7.0 && untouched[n - 1] == 7.0,
           fmt("%s loss_grad_%s threads=%zu: the first bad label (row %zu) of two in different chunks: row %zu", isa,
               dname<T>(), threads, N / 3, bad.row));
    m.y[N / 3] = y_early;
    m.y[N - 5] = y_late;
  }
}

template <typename T>
void test_chunks(const char* isa, const LinearKernels<T>& kern, Rng& rng) {
  const size_t mnist_B = block_rows(784, 10, sizeof(T));
  report(chunks_for(60000, 784, 10, mnist_B, 1) == 1 && chunks_for(60000, 784, 10, mnist_B, 2) == 14 &&
             chunks_for(10000, 3072, 10, block_rows(3072, 10, sizeof(T)), 2) == 2 &&
             chunks_for(4096, 512, 1000, block_rows(512, 1000, sizeof(T)), 2) == 2,
         fmt("%s chunks_for_%s: mnist 1 and 14, cifar 2, wideK 2 (one and two parts)", isa, dname<T>()));
  // Few rows of a wide D×K: fewer blocks than parts, and every part still gets rows.
  const size_t wide_B = block_rows(3072, 1000, sizeof(T));
  report(chunk_begin(8, wide_B, 1, 2) == 4 && chunk_begin(8, wide_B, 2, 2) == 8,
         fmt("%s chunk_begin_%s: 8 rows of one block split 4 + 4", isa, dname<T>()));
  // D = 8: 256-row blocks; D = 400 (float32 only, the dtype with a flush schedule): 200-row
  // blocks, so the float32 accumulator's flush every 256 rows falls inside blocks, and a chunk
  // must start its schedule afresh.
  struct Shape {
    size_t N, D, K;
  };
  std::vector<Shape> shapes = {{100000, 8, 2}};
  if (sizeof(T) == 4) shapes.push_back({21000, 400, 2});  // 5 chunks of 21 blocks: 200 rows not yet flushed at each end
  for (const Shape& shape : shapes) test_chunks_of<T>(isa, kern, rng, shape.N, shape.D, shape.K);
}

// ------------------------------------------------------------------------------------------------
// add_to_sums (kernels.hpp), where the ISA has it: out[i] + double(a[i]) by one addition each, the
// bits of the plain loop, a[i] zeroed with clear and untouched without. The arrays end their
// allocations, so under ASan an over-read or over-write by a full-width step or a scalar tail
// shows; a masked tail's bounds are its masks' (ASan does not see inside masked loads).
// ------------------------------------------------------------------------------------------------
template <typename T>
void test_add_to_sums(const char* isa, const LinearKernels<T>& kern, Rng& rng) {
  if (!kern.add_to_sums) return;
  for (size_t n = 0; n <= 41; ++n)
    for (size_t off = 0; off < 2; ++off)
      for (bool clear : {false, true}) {
        Buf<T> a(n, off);
        Buf<double> out(n, off);
        fill(a, rng, 1e3);
        fill(out, rng, 1e6);
        std::vector<double> want(n);
        std::vector<T> a0(n);
        for (size_t i = 0; i < n; ++i) {
          want[i] = out[i] + static_cast<double>(a[i]);
          a0[i] = a[i];
        }
        kern.add_to_sums(out.p, a.p, n, clear);
        bool ok = true;
        for (size_t i = 0; i < n; ++i) {
          ok = ok && std::memcmp(&out[i], &want[i], sizeof(double)) == 0;
          ok = ok && (clear ? a[i] == T(0) && !std::signbit(a[i]) : std::memcmp(&a[i], &a0[i], sizeof(T)) == 0);
        }
        report(ok, fmt("%s add_to_sums_%s n=%zu off=%zu clear=%d", isa, dname<T>(), n, off, int(clear)));
      }
}

// ------------------------------------------------------------------------------------------------
// Where X starts in memory. The x86 score tiles start each row at the vector-aligned block holding
// its first element and rotate their sums back (RowPhase, native/kernels/linear_simd.inl), and the
// driver packs Wt at X's offset; so for X at every element offset within a 64-byte line, scores,
// the gradient update and the driver passes must give bitwise the results of a line-aligned X. Every
// buffer is surrounded by NaN: a lane read from outside X, Wt or G would poison the results.
// ------------------------------------------------------------------------------------------------
template <typename T>
struct Placed {
  T* base = nullptr;
  T* p = nullptr;
  size_t n = 0;
  Placed(size_t n_, size_t at) : n(n_) {
    const size_t bytes = ((at + n + 64 / sizeof(T)) * sizeof(T) + 63) / 64 * 64;
    base = static_cast<T*>(std::aligned_alloc(64, bytes));
    for (size_t i = 0; i < bytes / sizeof(T); ++i) base[i] = std::numeric_limits<T>::quiet_NaN();
    p = base + at;
  }
  Placed(const Placed&) = delete;
  Placed& operator=(const Placed&) = delete;
  ~Placed() { std::free(base); }
};

template <typename T>
bool same_bits(const T* a, const T* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

template <typename T>
void test_x_placement(const char* isa, const LinearKernels<T>& kern, Rng& rng) {
  constexpr size_t kLine = 64 / sizeof(T);
  size_t checked = 0, failed = 0;
  for (size_t D : {1, 3, 8, 16, 24, 32, 48, 784})
    for (size_t K : {1, 3, 10, 17, 100})
      for (size_t rows : {size_t(1), size_t(4), size_t(7), size_t(13)}) {
        std::vector<T> x(rows * D), wt(D * K), w(D * K), g(rows * K), b(K);
        for (auto& v : x) v = static_cast<T>(rng.sym());
        for (auto& v : w) v = static_cast<T>(rng.sym());
        for (auto& v : g) v = static_cast<T>(rng.sym());
        for (auto& v : b) v = static_cast<T>(rng.sym());
        transpose(w.data(), D, K, wt.data(), D);
        std::vector<int32_t> y(rows);
        for (auto& v : y) v = static_cast<int32_t>(rng.next() % K);
        std::vector<T> S0, A0[2], P0;
        std::vector<double> L0;
        std::vector<int32_t> C0;
        for (size_t at = 0; at < kLine; ++at)
          for (size_t wt_at : {at, size_t(0)}) {
            Placed<T> X(rows * D, at), Wt(D * K, wt_at), W(D * K, 0), G(rows * K, 0), B(K, 0);
            std::copy(x.begin(), x.end(), X.p);
            std::copy(wt.begin(), wt.end(), Wt.p);
            std::copy(w.begin(), w.end(), W.p);
            std::copy(g.begin(), g.end(), G.p);
            std::copy(b.begin(), b.end(), B.p);
            const WeightsView<T> wv{W.p, Wt.p, D, K, K, D};
            std::vector<T> S(rows * K);
            kern.scores(X.p, rows, wv, B.p, S.data(), X.p, rows);
            std::vector<T> A[2];
            for (int l = 0; l < 2; ++l) {
              A[l].assign(D * K, T(0.5));
              kern.grad_update(X.p, rows, D, G.p, K, A[l].data(), D, l ? GradLayout::DK : GradLayout::KD, X.p, rows);
            }
            LossProblem<T> pb;
            pb.X = X.p;
            pb.N = rows;
            pb.D = D;
            pb.K = K;
            pb.W = W.p;
            pb.b = B.p;
            pb.labels = y.data();
            std::vector<double> L(loss_sums_size(D, K));
            const bool loss_ok = loss_grad(kern, pb, 1, L.data()).status == LossStatus::ok;
            std::vector<T> P(rows * K);
            std::vector<int32_t> C(rows);
            const bool drivers_ok = scores(kern, X.p, rows, D, W.p, K, B.p, P.data(), 1) &&
                                    predict(kern, X.p, rows, D, W.p, K, B.p, C.data(), 1);
            bool ok = loss_ok && drivers_ok;
            for (T v : S) ok = ok && std::isfinite(v);
            for (double v : L) ok = ok && std::isfinite(v);
            if (at == 0 && wt_at == 0) {
              S0 = S;
              A0[0] = A[0];
              A0[1] = A[1];
              L0 = L;
              P0 = P;
              C0 = C;
            } else {
              ok = ok && same_bits(S.data(), S0.data(), S.size()) && same_bits(A[0].data(), A0[0].data(), D * K) &&
                   same_bits(A[1].data(), A0[1].data(), D * K) && same_bits(L.data(), L0.data(), L.size()) &&
                   same_bits(P.data(), P0.data(), P.size()) && C == C0;
            }
            ++checked;
            if (!ok) {
              ++failed;
              report(false, fmt("%s %s X %zu elements past a line, Wt %zu, rows=%zu D=%zu K=%zu: results differ from "
                                "an aligned X's (or not finite)", isa, dname<T>(), at, wt_at, rows, D, K));
            }
          }
      }
  report(failed == 0, fmt("%s %s results bitwise independent of where X starts: %zu placements", isa, dname<T>(),
                          checked));
}

template <typename T>
void test_scores_predict(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref, Rng& rng) {
  for (size_t D : {1, 5, 8, 9, 31, 257})
    for (size_t K : {1, 2, 3, 10, 17, 100, 1000})
      for (size_t N : {size_t(1), size_t(9), size_t(70)}) {
        const size_t off = (N + K) % 2;
        Model<T> m(N, D, K, off, (K % 2) ? 1.0 : 1e3 / std::sqrt(double(D)), rng);
        std::vector<double> e, fmax;
        m.row_bounds(e, fmax);
        Buf<T> S1(N * K, off), S2(N * K, off);
        Buf<int32_t> p1(N, off), p2(N, off);
        const bool ok1 = scores(kern, m.X.p, N, D, m.W.p, K, m.b.p, S1.p, 1) &&
                         scores(ref, m.X.p, N, D, m.W.p, K, m.b.p, S2.p, 1);
        const bool ok2 = predict(kern, m.X.p, N, D, m.W.p, K, m.b.p, p1.p, 1) &&
                         predict(ref, m.X.p, N, D, m.W.p, K, m.b.p, p2.p, 1);
        bool ok = ok1 && ok2;
        for (size_t r = 0; r < N && ok; ++r)
          for (size_t k = 0; k < K; ++k)
            if (!(std::fabs(double(S1[r * K + k]) - double(S2[r * K + k])) <= 2 * e[r])) ok = false;
        report(ok, fmt("%s scores_%s (driver) N=%zu D=%zu K=%zu off=%zu", isa, dname<T>(), N, D, K, off));
        // predict may differ from scalar only between classes whose scores are within rounding.
        bool pok = ok2;
        for (size_t r = 0; r < N && pok; ++r) {
          const int32_t a = p1[r], b = p2[r];
          if (a < 0 || size_t(a) >= K) {
            pok = false;
            break;
          }
          if (a != b && !(std::fabs(double(S2[r * K + a]) - double(S2[r * K + b])) <= 4 * e[r])) pok = false;
        }
        report(pok, fmt("%s predict_%s (driver) N=%zu D=%zu K=%zu off=%zu", isa, dname<T>(), N, D, K, off));
      }
}

template <typename T>
void test_softmax(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref, Rng& rng) {
  const bool f32 = sizeof(T) == 4;
  for (size_t K : classes<T>())
    for (size_t N : {size_t(1), size_t(5), size_t(33)}) {
      const size_t off = (N + K) % 2;
      Buf<T> S(N * K, off), P1(N * K, off), P2(N * K, off);
      for (size_t i = 0; i < N * K; ++i) S[i] = static_cast<T>(((i / K) % 2 ? 1e3 : 10.0) * rng.sym());
      if (N > 1) S[K + K / 2] = -std::numeric_limits<T>::infinity();  // a -inf score: p = 0
      if (N > 2) S[2 * K] = std::numeric_limits<T>::quiet_NaN();      // a NaN row: all NaN
      softmax(kern, S.p, N, K, P1.p, 1);
      softmax(ref, S.p, N, K, P2.p, 1);
      bool ok = true;
      // exp within its bound (+ the scalar's 1 ULP), then a sum of K terms and one division:
      // relative (2 * bound + K + 6) eps, and an absolute ULP of the subnormal range.
      const double rel = (2 * exp_bound(isa, f32) + 2 + K + 6) * eps<T>();
      const double tiny = 4 * static_cast<double>(std::numeric_limits<T>::denorm_min());
      for (size_t i = 0; i < N * K; ++i) {
        if (std::isnan(P2[i])) {
          ok = ok && std::isnan(P1[i]);
          continue;
        }
        ok = ok && std::fabs(double(P1[i]) - double(P2[i])) <= rel * std::fabs(double(P2[i])) + tiny;
      }
      // In place (P aliases S).
      std::memcpy(P1.p, S.p, sizeof(T) * N * K);
      softmax(kern, P1.p, N, K, P1.p, 1);
      for (size_t i = 0; i < N * K; ++i) {
        if (std::isnan(P2[i])) {
          ok = ok && std::isnan(P1[i]);
          continue;
        }
        ok = ok && std::fabs(double(P1[i]) - double(P2[i])) <= rel * std::fabs(double(P2[i])) + tiny;
      }
      report(ok, fmt("%s softmax_%s (driver) N=%zu K=%zu off=%zu", isa, dname<T>(), N, K, off));
    }
  // The design's test vector.
  T s[3] = {1, -2, 0}, p[3];
  softmax(kern, s, 1, 3, p, 1);
  const double want[3] = {0.7053845127, 0.0351190270, 0.2594964603};
  bool ok = true;
  for (int i = 0; i < 3; ++i) ok = ok && std::fabs(double(p[i]) - want[i]) <= 8 * eps<T>() + 1e-10;
  report(ok, fmt("%s softmax_%s([1, -2, 0])", isa, dname<T>()));
}

// ------------------------------------------------------------------------------------------------
// Kernels: the row steps around exp. row_max_shift, scale_rows and add_columns take the same
// operations per entry on every ISA (bitwise equal to scalar); row_sums may add in another order
// (float64: within (K + 2) · 2^-53 · Σ|g| of scalar).
// ------------------------------------------------------------------------------------------------
template <typename T>
void test_row_steps(const char* isa, const LinearKernels<T>& kern, const LinearKernels<T>& ref, Rng& rng) {
  for (size_t K : classes<T>()) {
    for (size_t rows : {size_t(1), size_t(3), size_t(8)}) {
      const size_t off = (K + rows) % 2;
      Buf<T> S(rows * K, off), G(rows * K, off), Gr(rows * K, 0), M(rows, off), Mr(rows, 0);
      fill(S, rng, 50.0);
      const size_t got = kern.row_max_shift(S.p, rows, K, M.p, G.p);
      const size_t want = ref.row_max_shift(S.p, rows, K, Mr.p, Gr.p);
      bool same = got == rows && want == rows;
      for (size_t i = 0; same && i < rows; ++i) same = std::memcmp(&M[i], &Mr[i], sizeof(T)) == 0;
      for (size_t i = 0; same && i < rows * K; ++i) same = std::memcmp(&G[i], &Gr[i], sizeof(T)) == 0;
      report(same, fmt("%s row_max_shift_%s rows=%zu K=%zu off=%zu equals scalar bitwise", isa, dname<T>(), rows, K, off));
      // A NaN or ±Inf anywhere: both name that row.
      const T bads[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity()};
      for (T bad : bads) {
        const size_t r = rng.next() % rows, c = rng.next() % K;
        const T keep = S[r * K + c];
        S[r * K + c] = bad;
        const size_t g1 = kern.row_max_shift(S.p, rows, K, M.p, G.p);
        const size_t g2 = ref.row_max_shift(S.p, rows, K, Mr.p, Gr.p);
        report(g1 == r && g2 == r, fmt("%s row_max_shift_%s rows=%zu K=%zu: %g at [%zu][%zu] stops at row %zu (scalar %zu)",
                                       isa, dname<T>(), rows, K, double(bad), r, c, g1, g2));
        S[r * K + c] = keep;
      }
      // Sums, scaling and column sums on exp-like values in [0, 1].
      Buf<T> E(rows * K, off), Er(rows * K, 0);
      for (size_t i = 0; i < rows * K; ++i) Er[i] = E[i] = static_cast<T>(rng.uniform());
      Buf<double> Z(rows, off), Zr(rows, 0), inv(rows, 0);
      kern.row_sums(E.p, rows, K, Z.p);
      ref.row_sums(E.p, rows, K, Zr.p);
      bool close = true;
      for (size_t i = 0; i < rows; ++i) {
        double mag = 0;
        for (size_t c = 0; c < K; ++c) mag += std::fabs(double(E[i * K + c]));
        close = close && std::fabs(Z[i] - Zr[i]) <= (double(K) + 2) * std::ldexp(1.0, -53) * mag;
        inv[i] = Zr[i] > 0 ? 1.0 / Zr[i] : 0.0;
      }
      report(close, fmt("%s row_sums_%s rows=%zu K=%zu within the float64 bound of scalar", isa, dname<T>(), rows, K));
      kern.scale_rows(E.p, rows, K, inv.p);
      ref.scale_rows(Er.p, rows, K, inv.p);
      same = true;
      for (size_t i = 0; same && i < rows * K; ++i) same = std::memcmp(&E[i], &Er[i], sizeof(T)) == 0;
      report(same, fmt("%s scale_rows_%s rows=%zu K=%zu equals scalar bitwise", isa, dname<T>(), rows, K));
      Buf<double> db(K, off), dbr(K, 0);
      for (size_t c = 0; c < K; ++c) dbr[c] = db[c] = rng.sym();
      kern.add_columns(E.p, rows, K, db.p);
      ref.add_columns(Er.p, rows, K, dbr.p);
      same = true;
      for (size_t c = 0; same && c < K; ++c) same = std::memcmp(&db[c], &dbr[c], sizeof(double)) == 0;
      report(same, fmt("%s add_columns_%s rows=%zu K=%zu equals scalar bitwise", isa, dname<T>(), rows, K));
    }
  }
}

// finalize_gradients (native/finalize.cpp) against the same operations with every intermediate
// forced to double (volatile: no fused multiply-add can form here), bit for bit: the loop of
// src/prepare.ts finalizeSums, which JavaScript rounds step by step. With a regularisation
// coefficient, a fused multiply-add differs in the last bit of about one element in six; that is
// what this catches on aarch64 (under qemu), where GCC fuses by default.
template <typename T>
void test_finalize(Rng& rng) {
  const char* dtype = sizeof(T) == 4 ? "float32" : "float64";
  const double specials[] = {0.0, -0.0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN(), 4.9e-324, -2.2e-308, 1e300, 3.4e38, 1.1754943e-38};
  struct Case {
    double scale, divisor, coef;
  };
  const Case cases[] = {{1, 200, 0}, {1, 200, 2e-3}, {1, 3.5, 0.5}, {1, 1, 5e-4}, {0, 1, 2e-3}, {1, 3e-30, 0},
                        {1, 7, 1e308}};
  for (size_t n : {1, 2, 3, 17, 1024, 1031}) {
    for (const Case& c : cases) {
      std::vector<double> sums(2 + n + 4);
      std::vector<T> W(n), dW(n);
      for (size_t i = 0; i < sums.size(); ++i) sums[i] = rng.sym() * std::pow(10.0, std::floor(rng.uniform() * 12 - 6));
      for (size_t i = 0; i < n; ++i) W[i] = static_cast<T>(rng.sym() * 0.3);
      // A few special values among the sums and weights.
      for (size_t k = 0; k < n / 16; ++k) {
        sums[2 + (rng.next() % n)] = specials[rng.next() % (sizeof specials / sizeof specials[0])];
        W[rng.next() % n] = static_cast<T>(specials[rng.next() % (sizeof specials / sizeof specials[0])]);
      }
      finalize_gradients(sums.data(), W.data(), n, c.scale, c.divisor, c.coef, dW.data());
      size_t mismatches = 0, fused_would_differ = 0;
      for (size_t i = 0; i < n; ++i) {
        volatile double product = sums[2 + i] * c.scale;
        volatile double data_term = product / c.divisor;
        volatile double reg_term = c.coef * static_cast<double>(W[i]);
        volatile double g = data_term + reg_term;
        const T want = static_cast<T>(g);
        const bool same = (std::isnan(want) && std::isnan(dW[i])) || std::memcmp(&want, &dW[i], sizeof(T)) == 0;
        if (!same) ++mismatches;
        const T fused = static_cast<T>(std::fma(c.coef, static_cast<double>(W[i]), static_cast<double>(data_term)));
        if (!(std::isnan(want) && std::isnan(fused)) && std::memcmp(&want, &fused, sizeof(T)) != 0) ++fused_would_differ;
      }
      report(mismatches == 0, fmt("finalize_gradients %s n=%zu scale=%g divisor=%g coef=%g: %zu elements differ from the "
                                  "unfused operations (a fused multiply-add would change %zu)",
                                  dtype, n, c.scale, c.divisor, c.coef, mismatches, fused_would_differ));
    }
  }
  // sum_of_squares: four partial sums s[i mod 4], the tail into s[0], (s0 + s1) + (s2 + s3), each
  // square and sum rounded (volatile), as src/prepare.ts sumOfSquares adds.
  for (size_t n : {0, 1, 3, 4, 5, 7, 1024, 1027, 30720}) {
    std::vector<T> W(n);
    for (size_t i = 0; i < n; ++i) W[i] = static_cast<T>(rng.sym() * std::pow(10.0, std::floor(rng.uniform() * 6 - 3)));
    volatile double part[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (size_t j = 0; j < 4; ++j) {
        volatile double sq = static_cast<double>(W[i + j]) * static_cast<double>(W[i + j]);
        part[j] = part[j] + sq;
      }
    for (; i < n; ++i) {
      volatile double sq = static_cast<double>(W[i]) * static_cast<double>(W[i]);
      part[0] = part[0] + sq;
    }
    volatile double left = part[0] + part[1];
    volatile double right = part[2] + part[3];
    const double want = left + right;
    const double got = sum_of_squares(W.data(), n);
    report(std::memcmp(&want, &got, sizeof want) == 0,
           fmt("sum_of_squares %s n=%zu: %.17g, the four-way order gives %.17g", dtype, n, got, want));
  }
}

#if defined(__linux__)
// The VmFlags of the mapping holding address p, from /proc/self/smaps ("" when none holds it).
std::string vm_flags_at(const void* p) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return "";
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  char line[512];
  bool inside = false;
  std::string flags;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long lo = 0, hi = 0;
    char dash = 0;
    if (std::sscanf(line, "%llx%c%llx", &lo, &dash, &hi) == 3 && dash == '-') {
      inside = at >= lo && at < hi;
    } else if (inside && std::strncmp(line, "VmFlags:", 8) == 0) {
      flags = line + 8;
      break;
    }
  }
  std::fclose(f);
  return flags;
}
#endif

// allocMatrix's native half: huge_page_offset finds the first 2 MiB boundary at or after any
// address; advise_huge_pages marks exactly the whole 2 MiB spans inside a buffer of at least four
// of them for huge pages (the mapping's VmFlags hold "hg"), says so, and refuses smaller buffers.
void test_huge_pages() {
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  for (uintptr_t at : {kHuge * 5, kHuge * 5 + 1, kHuge * 5 + 16, kHuge * 6 - 1, uintptr_t(64)}) {
    const size_t off = huge_page_offset(reinterpret_cast<const void*>(at));
    report(off < kHuge && (at + off) % kHuge == 0, fmt("huge_page_offset(%#jx) = %zu", uintmax_t(at), off));
  }
  std::vector<unsigned char> small(3 * kHuge + 4096);
  report(!advise_huge_pages(small.data(), small.size()), "advise_huge_pages refuses a buffer under 8 MiB");
#if defined(__linux__)
  // A fresh buffer, as a large ArrayBuffer gets it: glibc's calloc maps a request of 32 MiB or more
  // on its own.
  const size_t bytes = 20 * kHuge + 12345;
  unsigned char* p = static_cast<unsigned char*>(std::calloc(bytes, 1));
  report(p != nullptr, "calloc of 40 MiB");
  if (!p) return;
  // A kernel built without transparent huge pages refuses the advice (EINVAL): nothing more to check.
  FILE* thp = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!thp) {
    report(!advise_huge_pages(p, bytes), "advise_huge_pages says no where the kernel has no huge pages");
    std::free(p);
    return;
  }
  std::fclose(thp);
  report(advise_huge_pages(p, bytes), "advise_huge_pages takes a 40 MiB buffer");
  const char* smaps = std::getenv("KERNEL_TEST_SMAPS");
  if (smaps && std::strcmp(smaps, "0") == 0) {
    std::free(p);
    return;
  }
  const size_t off = huge_page_offset(p);
  const size_t spans = (bytes - off) / kHuge;
  const bool first = vm_flags_at(p + off).find(" hg") != std::string::npos;
  const bool last = vm_flags_at(p + off + spans * kHuge - 1).find(" hg") != std::string::npos;
  report(first && last, fmt("advise_huge_pages: the first and last whole spans are advised (%d, %d)", int(first), int(last)));
  if (off > 0) report(vm_flags_at(p + off - 1).find(" hg") == std::string::npos, "advise_huge_pages: the bytes before the first span are not");
  if (off + spans * kHuge < bytes)
    report(vm_flags_at(p + off + spans * kHuge).find(" hg") == std::string::npos, "advise_huge_pages: the bytes after the last span are not");
  std::free(p);
#endif
}

template <typename T>
void run_dtype(const char* isa, const KernelSet& ks, uint64_t seed) {
  const LinearKernels<T>& kern = table<T>(ks);
  const LinearKernels<T>& ref = table<T>(kernel_set(Isa::scalar));
  Rng rng(seed);
  report(std::strcmp(kern.isa, isa) == 0, fmt("%s table of %s says isa '%s'", isa, dname<T>(), kern.isa));
  // The float32 flush is vectorized on x86 (add_to_sums); elsewhere the driver's portable loop.
  const bool x86_simd = std::strcmp(isa, "avx2") == 0 || std::strcmp(isa, "avx512") == 0;
  report((kern.add_to_sums != nullptr) == (x86_simd && sizeof(T) == 4),
         fmt("%s table of %s has add_to_sums: %d", isa, dname<T>(), int(kern.add_to_sums != nullptr)));
  test_chunks<T>(isa, kern, rng);
  if (&kern == &ref) {
    // The scalar table is the reference of every comparison below; against itself they would
    // check nothing (and took half of this program's time, most of CI's NEON stage under qemu).
    // The TypeScript reference holds the scalar kernels to account (test/isa.test.ts).
    test_exp_special<T>(isa, kern);
    return;
  }
  test_scores_kernel<T>(isa, kern, ref, rng);
  test_grad_kernel<T>(isa, kern, ref, rng);
  test_row_steps<T>(isa, kern, ref, rng);
  test_exp_special<T>(isa, kern);
  test_exp_tails<T>(isa, kern, ref, rng);
  test_loss_grad<T>(isa, kern, ref, rng);
  test_add_to_sums<T>(isa, kern, rng);
  test_scores_predict<T>(isa, kern, ref, rng);
  test_softmax<T>(isa, kern, ref, rng);
  test_x_placement<T>(isa, kern, rng);
}

}  // namespace

int main() {
  std::vector<Isa> isas = compiled_isas();
  std::printf("compiled ISAs:");
  for (Isa isa : isas) std::printf(" %s%s", isa_name(isa), cpu_supports(isa) ? "" : " (not supported by this CPU)");
  std::printf("\n");
  std::vector<ExpF32Sweep> exp_sweeps;
  for (Isa isa : isas)
    if (cpu_supports(isa)) exp_sweeps.push_back({isa_name(isa), kernel_set(isa).linear_f32});
  {
    std::printf("== finalize_gradients (ISA-independent)\n");
    Rng rng(77);
    test_finalize<float>(rng);
    test_finalize<double>(rng);
  }
  std::printf("== huge pages\n");
  test_huge_pages();
  std::printf("== exp_f32 of every ISA\n");
  test_exp_f32(exp_sweeps);
  for (Isa isa : isas) {
    if (!cpu_supports(isa)) continue;
    const char* name = isa_name(isa);
    std::printf("== %s\n", name);
    // Forcing the ISA makes it the active one.
    std::string error;
    const bool selected = select_isa(name, &error);
    report(selected && active_kernels().isa == isa && std::strcmp(active_kernels().name, name) == 0,
           fmt("select_isa(%s) makes it active (%s)", name, error.c_str()));
    const KernelSet ks = kernel_set(isa);
    report(ks.isa == isa, fmt("kernel_set(%s) is %s", name, isa_name(ks.isa)));
    test_exp_f64(name, *ks.linear_f64);
    run_dtype<float>(name, ks, 1000 + static_cast<uint64_t>(isa));
    run_dtype<double>(name, ks, 2000 + static_cast<uint64_t>(isa));
  }
  std::string error;
  select_isa("auto", &error);
  std::printf("%zu passed, %zu failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
