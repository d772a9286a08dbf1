// The Gram tile kernel written once over vector traits F, for the x86-64 ISA files (gram_avx2.cpp,
// gram_avx512.cpp), which include this file inside their anonymous namespace after defining their
// traits and register block kMR × kNR: every function here then has internal linkage in each of
// them and is compiled with that file's flags only (the rule of kernels.hpp).
//
// F provides: T, V, M (tail mask), W (lanes), zero/load/loadm/fma/mask, and widen (a vector of
// partial sums as 4 float64 lanes, in a fixed order).
//
// Dot products along D, a register block of kMR rows of Xi × kNR rows of Xj, one vector accumulator
// per pair; the last D % W elements through masked loads, which never touch memory past the rows'
// ends. Per pair, lane l sums the products of d ≡ l (mod W) in increasing d, in the dtype; at the
// end of the chunk the lanes are widened to float64 (F::widen), then ((v0 + v1) + (v2 + v3)). Every
// pair takes exactly these steps, whatever micro-tile shape it falls in: the contract of gram.hpp.

// r[k] = (v_k[0] + v_k[1]) + (v_k[2] + v_k[3]) for k < 4.
inline __m256d reduce4(__m256d v0, __m256d v1, __m256d v2, __m256d v3) {
  const __m256d h01 = _mm256_hadd_pd(v0, v1);  // v0[0]+v0[1], v1[0]+v1[1], v0[2]+v0[3], v1[2]+v1[3]
  const __m256d h23 = _mm256_hadd_pd(v2, v3);
  return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
}

template <typename F, int MR, int NR>
void micro(const typename F::T* Xi, const typename F::T* Xj, size_t len, size_t ldx, double* C,
           size_t ldc, bool accumulate) {
  using V = typename F::V;
  V s[MR][NR];
#pragma GCC unroll 8
  for (int a = 0; a < MR; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) s[a][b] = F::zero();
  size_t d = 0;
  for (; d + F::W <= len; d += F::W) {
    V vb[NR];
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) vb[b] = F::load(Xj + b * ldx + d);
#pragma GCC unroll 8
    for (int a = 0; a < MR; ++a) {
      const V va = F::load(Xi + a * ldx + d);
#pragma GCC unroll 8
      for (int b = 0; b < NR; ++b) s[a][b] = F::fma(va, vb[b], s[a][b]);
    }
  }
  if (d < len) {
    const typename F::M m = F::mask(len - d);
    V vb[NR];
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) vb[b] = F::loadm(Xj + b * ldx + d, m);
#pragma GCC unroll 8
    for (int a = 0; a < MR; ++a) {
      const V va = F::loadm(Xi + a * ldx + d, m);
#pragma GCC unroll 8
      for (int b = 0; b < NR; ++b) s[a][b] = F::fma(va, vb[b], s[a][b]);
    }
  }
  // Reduce the pairs four at a time (padding with zeros); pair k = a * NR + b.
  constexpr int P = MR * NR;
  constexpr int G = (P + 3) / 4;
  alignas(32) double r[G * 4];
  __m256d w[G * 4];
#pragma GCC unroll 24
  for (int k = 0; k < G * 4; ++k) w[k] = k < P ? F::widen(s[k / NR][k % NR]) : _mm256_setzero_pd();
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) _mm256_store_pd(r + 4 * g, reduce4(w[4 * g], w[4 * g + 1], w[4 * g + 2], w[4 * g + 3]));
#pragma GCC unroll 8
  for (int a = 0; a < MR; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < NR; ++b) {
      double* c = C + a * ldc + b;
      *c = accumulate ? *c + r[a * NR + b] : r[a * NR + b];
    }
}

// A micro-tile of mr × nr pairs (mr <= MR, nr <= NR): the instantiation of exactly that shape.
template <typename F, int MR, int NR>
void micro_edge(size_t mr, size_t nr, const typename F::T* Xi, const typename F::T* Xj, size_t len,
                size_t ldx, double* C, size_t ldc, bool accumulate) {
  if constexpr (MR > 1) {
    if (mr < static_cast<size_t>(MR)) return micro_edge<F, MR - 1, NR>(mr, nr, Xi, Xj, len, ldx, C, ldc, accumulate);
  }
  if constexpr (NR > 1) {
    if (nr < static_cast<size_t>(NR)) return micro_edge<F, MR, NR - 1>(mr, nr, Xi, Xj, len, ldx, C, ldc, accumulate);
  }
  micro<F, MR, NR>(Xi, Xj, len, ldx, C, ldc, accumulate);
}

template <typename F>
void tile(const typename F::T* Xi, size_t ni, const typename F::T* Xj, size_t nj, size_t len,
          size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  for (size_t a = 0; a < ni; a += kMR) {
    const size_t mr = ni - a < kMR ? ni - a : kMR;
    // With upper, micro-tiles wholly below the diagonal (every b < a) are skipped.
    const size_t b0 = upper ? a / kNR * kNR : 0;
    const typename F::T* xa = Xi + a * ldx;
    double* ca = C + a * ldc;
    size_t b = b0;
    for (; b + kNR <= nj; b += kNR) {
      if (mr == kMR)
        micro<F, kMR, kNR>(xa, Xj + b * ldx, len, ldx, ca + b, ldc, accumulate);
      else
        micro_edge<F, kMR, kNR>(mr, kNR, xa, Xj + b * ldx, len, ldx, ca + b, ldc, accumulate);
    }
    if (b < nj) micro_edge<F, kMR, kNR>(mr, nj - b, xa, Xj + b * ldx, len, ldx, ca + b, ldc, accumulate);
  }
}

