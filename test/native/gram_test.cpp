// Native tests of the labelled Gram matrix: every ISA compiled into this build and supported by this
// CPU is compared with the portable scalar kernels, tile kernel by tile kernel and through the driver
// (native/gram.hpp), in float32 and float64; and the bitwise contract of kernels/gram.hpp is checked
// for every ISA: a pair's value does not depend on its tile, its place in it or its orientation, so
// Q is bitwise symmetric, row blocks stitch into Q bitwise, and the thread count changes nothing.
// No framework: prints one line per failure and a final "N passed, M failed"; exits non-zero on
// failure. Generic over ISAs (x86-64 AVX2 natively, aarch64 NEON under qemu).
//
// Inputs live at the very end of buffers allocated with exactly their size (optionally one element
// in, so rows are unaligned), so an over-read is caught when built with AddressSanitizer.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "gram.hpp"

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

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0; }  // [-1, 1)
};

// n elements at the very end of an exact allocation (plus `lead` elements before them).
template <typename T>
struct EndBuffer {
  std::unique_ptr<T[]> mem;
  T* data;
  EndBuffer(size_t n, size_t lead) : mem(new T[n + lead]), data(mem.get() + lead) {}
};

template <typename T>
EndBuffer<T> random_buffer(size_t n, size_t lead, Rng& rng) {
  EndBuffer<T> b(n, lead);
  for (size_t i = 0; i < n; ++i) b.data[i] = static_cast<T>(rng.uniform());
  return b;
}

template <typename T>
const char* tname() {
  return sizeof(T) == 4 ? "f32" : "f64";
}

template <typename T>
const GramKernels<T>& kernels(Isa isa);
template <>
const GramKernels<float>& kernels<float>(Isa isa) { return gram_kernels_f32(isa); }
template <>
const GramKernels<double>& kernels<double>(Isa isa) { return gram_kernels_f64(isa); }

template <typename T>
size_t width(Isa isa) {
  if (isa == Isa::avx2) return 32 / sizeof(T);
  if (isa == Isa::avx512) return 64 / sizeof(T);
  if (isa == Isa::neon) return 16 / sizeof(T);
  return 1;
}

// The most products one running sum in the dtype adds in a chunk of `len` (kernels/gram.hpp): a
// lane of a dot-form kernel sums every W-th product; the outer-product kernels (AVX2, AVX-512) sum a pair's
// products in order, kGramChainOp at most, before they go to float64.
bool outer_product(Isa isa) { return isa == Isa::avx2 || isa == Isa::avx512; }
size_t chain_slice(Isa isa, size_t len) { return outer_product(isa) ? std::min(len, kGramChainOp) : len; }
size_t chain_terms(Isa isa, size_t len, size_t W) {
  if (outer_product(isa)) return std::min(len, kGramChainOp);
  return (len + W - 1) / W;
}

// The bound of kernels/gram.hpp for a chunk sum of `len` products: a running sum of m terms in the
// dtype errs by γ ≈ m·u, the float64 steps add a few more roundings; the scalar witness adds `len`
// float64 roundings. Relative to Σ|x_a[d]·x_b[d]|.
template <typename T>
double chunk_bound(Isa isa, size_t len, size_t W) {
  const double u = std::ldexp(1.0, -std::numeric_limits<T>::digits);
  const double u64 = std::ldexp(1.0, -53);
  return (double(chain_terms(isa, len, W)) + 4.0) * u + (double(len) + 8.0) * u64;
}

template <typename T>
bool bitwise_equal(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// ---- the tile kernel against scalar, and its bitwise pair contract ----
template <typename T>
void test_tile(Isa isa) {
  const GramKernels<T>& k = kernels<T>(isa);
  const GramKernels<T>& ref = kernels<T>(Isa::scalar);
  const size_t W = width<T>(isa);
  Rng rng(1234 + sizeof(T));
  // Up to past a whole panel of the outer-product kernels (16 / 32 rows of Xj) and row group (12).
  const size_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 31, 32, 33};
  const size_t lens[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 97, 255, 256, 257, 511, 512, 1024};
  for (size_t lead = 0; lead < 2; ++lead)
    for (size_t len : lens) {
      const size_t ldx = len + lead * 3;  // a row stride longer than len too
      const size_t rows = 40;
      auto X = random_buffer<T>(rows * ldx, lead, rng);
      // Σ|x_a[d]·x_b[d]| of every pair of the 40 rows, for the tolerances: computed per tile it was
      // most of this test's time under qemu.
      std::vector<double> absdot(rows * rows, 0.0);
      for (size_t a = 0; a < rows; ++a)
        for (size_t b = 0; b < rows; ++b)
          for (size_t d = 0; d < len; ++d)
            absdot[a * rows + b] += std::fabs(double(X.data[a * ldx + d]) * double(X.data[b * ldx + (ldx - len) + d]));
      for (size_t ni : sizes)
        for (size_t nj : sizes) {
          // Xi: the first ni rows, from the buffer's first element; Xj: the last nj rows, shifted
          // so that the last element read is the buffer's last.
          const T* Xi = X.data;
          const T* Xj = X.data + (rows - nj) * ldx + (ldx - len);
          std::vector<double> C(ni * nj, 7.0), R(ni * nj, 7.0), Cacc(ni * nj, 0.5);
          k.tile(Xi, ni, Xj, nj, len, ldx, C.data(), nj, false, false);
          ref.tile(Xi, ni, Xj, nj, len, ldx, R.data(), nj, false, false);
          k.tile(Xi, ni, Xj, nj, len, ldx, Cacc.data(), nj, true, false);
          // A kernel that sums in slices adds each slice's sum to C in turn: its C and Cacc are
          // the slices' own sums (one call each) folded in order, from 0.5 for Cacc.
          const size_t slice = chain_slice(isa, len);
          std::vector<double> Sfold(ni * nj), Afold(ni * nj, 0.5), part(ni * nj);
          for (size_t s0 = 0; s0 < len; s0 += slice) {
            k.tile(Xi + s0, ni, Xj + s0, nj, std::min(slice, len - s0), ldx, part.data(), nj, false, false);
            for (size_t e = 0; e < ni * nj; ++e) {
              Sfold[e] = s0 == 0 ? part[e] : Sfold[e] + part[e];
              Afold[e] += part[e];
            }
          }
          bool ok = true, ok_acc = true;
          for (size_t a = 0; a < ni; ++a)
            for (size_t b = 0; b < nj; ++b) {
              const double tol = chunk_bound<T>(isa, len, W) * absdot[a * rows + (rows - nj + b)] + 1e-300;
              if (!(std::fabs(C[a * nj + b] - R[a * nj + b]) <= tol)) ok = false;
              if (!bitwise_equal(C[a * nj + b], Sfold[a * nj + b])) ok_acc = false;
              if (!bitwise_equal(Cacc[a * nj + b], Afold[a * nj + b])) ok_acc = false;
            }
          report(ok, fmt("%s tile %s ni=%zu nj=%zu len=%zu lead=%zu vs scalar", isa_name(isa), tname<T>(), ni, nj, len, lead));
          report(ok_acc, fmt("%s tile %s ni=%zu nj=%zu len=%zu accumulate", isa_name(isa), tname<T>(), ni, nj, len));
        }
      // The pair contract: the full 40×40 block, its transpose orientation, single pairs, and the
      // upper-only form all give bitwise the same value for a pair.
      std::vector<double> F(rows * rows), U(rows * rows, -1.0);
      k.tile(X.data, rows, X.data, rows, len, ldx, F.data(), rows, false, false);
      k.tile(X.data, rows, X.data, rows, len, ldx, U.data(), rows, false, true);
      bool sym = true, single = true, upper = true;
      for (size_t a = 0; a < rows; ++a)
        for (size_t b = 0; b < rows; ++b) {
          if (!bitwise_equal(F[a * rows + b], F[b * rows + a])) sym = false;
          if (b >= a && !bitwise_equal(F[a * rows + b], U[a * rows + b])) upper = false;
          if ((a * 7 + b * 3) % 5 == 0) {
            double one = 0;
            k.tile(X.data + a * ldx, 1, X.data + b * ldx, 1, len, ldx, &one, 1, false, false);
            if (!bitwise_equal(one, F[a * rows + b])) single = false;
          }
        }
      report(sym, fmt("%s tile %s len=%zu bitwise symmetric", isa_name(isa), tname<T>(), len));
      report(upper, fmt("%s tile %s len=%zu upper form equals full", isa_name(isa), tname<T>(), len));
      report(single, fmt("%s tile %s len=%zu single pair equals block", isa_name(isa), tname<T>(), len));
    }
}

// ---- the driver ----
template <typename T>
void test_driver(Isa isa) {
  const GramKernels<T>& k = kernels<T>(isa);
  const GramKernels<T>& ref = kernels<T>(Isa::scalar);
  const size_t W = width<T>(isa);
  Rng rng(99 + sizeof(T));
  struct Shape {
    size_t N, D;
  };
  const Shape shapes[] = {{1, 1}, {1, 9}, {2, 3}, {3, 2}, {7, 8}, {8, 7}, {9, 17}, {17, 31}, {31, 97},
                          {97, 255}, {40, 512}, {41, 513}, {13, 1100}, {12, 1024}, {12, 1025}, {5, 2049},
                          {400, 5}, {300, 300}};
  for (const Shape& s : shapes) {
    const size_t N = s.N, D = s.D;
    auto X = random_buffer<T>(N * D, 1, rng);
    auto y = random_buffer<T>(N, 1, rng);
    for (size_t i = 0; i < N; ++i)
      if (i % 3 != 2) y.data[i] = (i % 2) ? T(-1) : T(1);  // ±1 mostly, some other reals
    EndBuffer<T> Q(N * N, 0), R(N * N, 0);
    report(labeled_gram(k, X.data, N, D, y.data, 0, N, Q.data, 2), fmt("%s driver alloc", isa_name(isa)));
    labeled_gram(ref, X.data, N, D, y.data, 0, N, R.data, 1);
    bool close = true, sym = true;
    double bound = 0;
    constexpr size_t chunk = gram_chunk<T>();
    for (size_t c = 0; c < D; c += chunk) bound += chunk_bound<T>(isa, std::min(chunk, D - c), W);
    for (size_t i = 0; i < N; ++i)
      for (size_t j = 0; j < N; ++j) {
        double absdot = 0;
        for (size_t d = 0; d < D; ++d) absdot += std::fabs(double(X.data[i * D + d]) * double(X.data[j * D + d]));
        const double u = std::ldexp(1.0, -std::numeric_limits<T>::digits);
        const double scale = std::fabs(double(y.data[i]) * double(y.data[j]));
        // Both results carry the kernel error, then the final rounding to T (and y_i·y_j in f64).
        const double tol = scale * (bound * absdot) + 2.5 * u * (std::fabs(double(R.data[i * N + j])) + scale * bound * absdot) + 1e-300;
        if (!(std::fabs(double(Q.data[i * N + j]) - double(R.data[i * N + j])) <= tol)) close = false;
        if (!bitwise_equal(Q.data[i * N + j], Q.data[j * N + i])) sym = false;
      }
    report(close, fmt("%s driver %s N=%zu D=%zu vs scalar", isa_name(isa), tname<T>(), N, D));
    report(sym, fmt("%s driver %s N=%zu D=%zu bitwise symmetric", isa_name(isa), tname<T>(), N, D));
    // Thread counts and row blocks change nothing, bitwise.
    for (size_t threads : {size_t(1), size_t(3), size_t(8)}) {
      EndBuffer<T> Q2(N * N, 0);
      labeled_gram(k, X.data, N, D, y.data, 0, N, Q2.data, threads);
      report(std::memcmp(Q.data, Q2.data, sizeof(T) * N * N) == 0,
             fmt("%s driver %s N=%zu D=%zu threads=%zu bitwise", isa_name(isa), tname<T>(), N, D, threads));
    }
    for (size_t step : {size_t(1), size_t(7), size_t(150)}) {
      if (step >= N && N > 1) continue;
      bool same = true;
      for (size_t r0 = 0; r0 < N; r0 += step) {
        const size_t r1 = std::min(N, r0 + step);
        EndBuffer<T> blk((r1 - r0) * N, 0);
        labeled_gram(k, X.data, N, D, y.data, r0, r1, blk.data, 2);
        if (std::memcmp(blk.data, Q.data + r0 * N, sizeof(T) * (r1 - r0) * N) != 0) same = false;
      }
      report(same, fmt("%s driver %s N=%zu D=%zu row blocks of %zu stitch bitwise", isa_name(isa), tname<T>(), N, D, step));
    }
  }
}

// The same X at another address (rows at any alignment; D = 1024 puts the rows 4 KiB apart) gives
// bitwise the same Q, in full and in row blocks.
template <typename T>
void test_placement(Isa isa) {
  const GramKernels<T>& k = kernels<T>(isa);
  Rng rng(77 + sizeof(T));
  struct Shape {
    size_t N, D;
  };
  const Shape shapes[] = {{37, 8}, {61, 64}, {50, 784}, {45, 1024}, {33, 129}};
  for (const Shape& s : shapes) {
    const size_t N = s.N, D = s.D;
    auto y = random_buffer<T>(N, 0, rng);
    std::vector<T> src(N * D);
    for (auto& v : src) v = static_cast<T>(rng.uniform());
    std::vector<std::vector<T>> Qs;
    for (size_t shift = 0; shift < 4; ++shift) {
      // 64-byte aligned storage, then shifted by `shift` elements.
      std::unique_ptr<T[]> mem(new T[N * D + 64 / sizeof(T) + shift]);
      const uintptr_t base = reinterpret_cast<uintptr_t>(mem.get());
      T* X = mem.get() + ((64 - base % 64) % 64) / sizeof(T) + shift;
      std::memcpy(X, src.data(), sizeof(T) * N * D);
      EndBuffer<T> Q(N * N, 0);
      report(labeled_gram(k, X, N, D, y.data, 0, N, Q.data, 2), fmt("%s placement alloc", isa_name(isa)));
      Qs.emplace_back(Q.data, Q.data + N * N);
      const size_t r0 = N / 3, r1 = N - N / 4;
      EndBuffer<T> blk((r1 - r0) * N, 0);
      labeled_gram(k, X, N, D, y.data, r0, r1, blk.data, 1);
      report(std::memcmp(blk.data, Q.data + r0 * N, sizeof(T) * (r1 - r0) * N) == 0,
             fmt("%s placement %s N=%zu D=%zu shift=%zu row block bitwise", isa_name(isa), tname<T>(), N, D, shift));
    }
    bool same = true;
    for (const auto& Q : Qs)
      if (std::memcmp(Q.data(), Qs[0].data(), sizeof(T) * N * N) != 0) same = false;
    report(same, fmt("%s placement %s N=%zu D=%zu any address bitwise", isa_name(isa), tname<T>(), N, D));
  }
}

// The scale and mirror kernels against the scalar ones, bitwise, on every edge shape.
template <typename T>
void test_scale_mirror(Isa isa) {
  const GramKernels<T>& k = kernels<T>(isa);
  const GramKernels<T>& ref = kernels<T>(Isa::scalar);
  Rng rng(555 + sizeof(T));
  const size_t ld = 40;
  for (size_t ni = 1; ni <= 19; ++ni)
    for (size_t nj = 1; nj <= 19; ++nj)
      for (int upper = 0; upper < 2; ++upper) {
        if (upper && ni != nj) continue;
        std::vector<double> C(ni * ld);
        for (auto& v : C) v = rng.uniform() * 1e3;
        auto yi = random_buffer<T>(ni, 0, rng);
        auto yj = random_buffer<T>(nj, 0, rng);
        std::vector<T> A(ld * ld, T(-7)), R(ld * ld, T(-7));
        k.scale(C.data(), ld, yi.data, ni, yj.data, nj, upper, A.data() + 1, ld);
        ref.scale(C.data(), ld, yi.data, ni, yj.data, nj, upper, R.data() + 1, ld);
        report(std::memcmp(A.data(), R.data(), sizeof(T) * ld * ld) == 0,
               fmt("%s scale %s ni=%zu nj=%zu upper=%d bitwise", isa_name(isa), tname<T>(), ni, nj, upper));
        // Mirror: upper in place within the square; otherwise into a disjoint block.
        T* dstA = upper ? A.data() + 1 : A.data() + 20 * ld;
        T* dstR = upper ? R.data() + 1 : R.data() + 20 * ld;
        k.mirror(A.data() + 1, ld, ni, nj, upper, dstA, ld);
        ref.mirror(R.data() + 1, ld, ni, nj, upper, dstR, ld);
        report(std::memcmp(A.data(), R.data(), sizeof(T) * ld * ld) == 0,
               fmt("%s mirror %s ni=%zu nj=%zu upper=%d bitwise", isa_name(isa), tname<T>(), ni, nj, upper));
      }
}

}  // namespace

int main() {
  std::vector<Isa> isas;
  for (Isa isa : compiled_isas())
    if (cpu_supports(isa)) isas.push_back(isa);
  for (Isa isa : isas) {
    std::printf("testing %s (gram block f32 %zu, f64 %zu)\n", isa_name(isa), gram_block(784, 4), gram_block(784, 8));
    test_tile<float>(isa);
    test_tile<double>(isa);
    test_driver<float>(isa);
    test_driver<double>(isa);
    test_placement<float>(isa);
    test_placement<double>(isa);
    test_scale_mirror<float>(isa);
    test_scale_mirror<double>(isa);
  }
  std::printf("%zu passed, %zu failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
