// The Gram tile kernels written once over vector traits F, for the x86-64 ISA files (gram_avx2.cpp,
// gram_avx512.cpp), which include this file inside their anonymous namespace after defining their
// traits: every function here then has internal linkage in each of them and is compiled with that
// file's flags only (the rule of kernels.hpp).
//
// The outer-product form (op_tile): see below. (The dot form, a register block of rows of Xi ×
// rows of Xj with one vector accumulator per pair along D and horizontal sums at the end of each
// chunk, is NEON's, gram_neon.cpp; AVX-512 used it until the outer-product form measured faster.)

// ---- the outer-product tile ----
//
// The same pairs with vectors along b instead of along d: a panel of F::kVectors·W rows of Xj is
// packed transposed (P[d * PW + c] = Xj[c][d]), then at each d, F::kVectors vector loads of the panel
// and one broadcast of each of F::kRows rows of Xi feed F::kRows × F::kVectors accumulators; lane l of
// accumulator (r, v) is the pair (a + r, b + v·W + l). A F::kSlice-long slice of the panel stays in
// L1 while every row group of Xi passes over it, so the loads per FMA are fewer than in the dot form
// and come from L1, and no horizontal reductions are left at the end.
//
// Each pair's sum is one running sum in the dtype over d in increasing order, at most F::kSlice
// products (kGramChainOp, gram.hpp), then widened exactly to float64 and added to C. Products
// commute, so the value of a pair does not depend on which of its rows is packed and which is
// broadcast, nor on where it sits: the contract of gram.hpp.
//
// F (besides T, V, W, zero, fma) provides: kVectors, kRows and kSlice (the register block and the
// slice length), loadu, loadm(p, n) (the first n < W elements, nothing
// past them read), load/store (aligned, the panel), set1, transpose(V[W]) (a W×W block, in
// registers) and flush(c, v, n, first) (c[0..n) = or += the first n lanes, widened to float64).

// P[d * PW + c] = Xj[c * ldx + d] for c < nc, 0 for nc <= c < PW = F::kVectors·W; d < kc.
template <typename F>
void op_pack(const typename F::T* Xj, size_t nc, size_t ldx, size_t kc, typename F::T* P) {
  using V = typename F::V;
  constexpr size_t W = F::W, PW = F::kVectors * F::W;
  for (size_t g = 0; g < static_cast<size_t>(F::kVectors); ++g) {
    // Rows of the group that exist (the rest of the panel is zeros).
    const size_t live = nc > g * W ? (nc - g * W < W ? nc - g * W : W) : 0;
    if (live == 0) {
      for (size_t d = 0; d < kc; ++d) F::store(P + d * PW + g * W, F::zero());
      continue;
    }
    const typename F::T* rows = Xj + g * W * ldx;
    size_t d = 0;
    for (; d + W <= kc; d += W) {
      V r[W];
#pragma GCC unroll 16
      for (size_t k = 0; k < W; ++k) r[k] = k < live ? F::loadu(rows + k * ldx + d) : F::zero();
      F::transpose(r);
#pragma GCC unroll 16
      for (size_t k = 0; k < W; ++k) F::store(P + (d + k) * PW + g * W, r[k]);
    }
    if (d < kc) {
      const size_t n = kc - d;
      V r[W];
#pragma GCC unroll 16
      for (size_t k = 0; k < W; ++k) r[k] = k < live ? F::loadm(rows + k * ldx + d, n) : F::zero();
      F::transpose(r);
      for (size_t k = 0; k < n; ++k) F::store(P + (d + k) * PW + g * W, r[k]);
    }
  }
}

// MR rows of Xi (xa, stride ldx) against the packed panel over kc steps; C row r, columns [0, nc).
template <typename F, int MR>
void op_micro(const typename F::T* P, const typename F::T* xa, size_t ldx, size_t kc, double* C,
              size_t ldc, size_t nc, bool first) {
  using V = typename F::V;
  constexpr size_t PW = F::kVectors * F::W;
  V acc[MR][F::kVectors];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < F::kVectors; ++v) acc[r][v] = F::zero();
  for (size_t d = 0; d < kc; ++d) {
    V p[F::kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < F::kVectors; ++v) p[v] = F::load(P + d * PW + v * F::W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V x = F::set1(xa[r * ldx + d]);
#pragma GCC unroll 4
      for (int v = 0; v < F::kVectors; ++v) acc[r][v] = F::fma(p[v], x, acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < F::kVectors; ++v) {
      const size_t lo = v * F::W;
      if (nc > lo) F::flush(C + r * ldc + lo, acc[r][v], nc - lo < F::W ? nc - lo : F::W, first);
    }
}

// A row group of mr < F::kRows rows: the instantiation of exactly that many.
template <typename F, int MR>
void op_micro_edge(size_t mr, const typename F::T* P, const typename F::T* xa, size_t ldx, size_t kc,
                   double* C, size_t ldc, size_t nc, bool first) {
  if constexpr (MR > 1) {
    if (mr < static_cast<size_t>(MR)) return op_micro_edge<F, MR - 1>(mr, P, xa, ldx, kc, C, ldc, nc, first);
  }
  op_micro<F, MR>(P, xa, ldx, kc, C, ldc, nc, first);
}

template <typename F>
void op_tile(const typename F::T* Xi, size_t ni, const typename F::T* Xj, size_t nj, size_t len,
             size_t ldx, double* C, size_t ldc, bool accumulate, bool upper) {
  constexpr size_t PW = F::kVectors * F::W;
  alignas(64) typename F::T P[F::kSlice * PW];
  constexpr size_t kLine = 64 / sizeof(typename F::T);
  for (size_t b = 0; b < nj; b += PW) {
    const size_t nc = nj - b < PW ? nj - b : PW;
    // With upper, row groups wholly below the diagonal (every a >= b + nc) are skipped.
    const size_t a_end = upper && b + nc < ni ? b + nc : ni;
    for (size_t s = 0; s < len; s += F::kSlice) {
      const size_t kc = len - s < F::kSlice ? len - s : F::kSlice;
      op_pack<F>(Xj + b * ldx + s, nc, ldx, kc, P);
      const bool first = !accumulate && s == 0;
      // The next panel's rows are fetched while this one is used, a few lines per row group: the
      // pack alone would wait for them (it has no arithmetic to hide their latency behind).
      size_t nb = b, ns = s + F::kSlice;
      if (ns >= len) nb += PW, ns = 0;
      const size_t next_rows = nb < nj ? (nj - nb < PW ? nj - nb : PW) : 0;
      const size_t next_kc = len - ns < F::kSlice ? len - ns : F::kSlice;
      const size_t row_lines = (next_kc + kLine - 1) / kLine;
      const size_t groups = (a_end + F::kRows - 1) / F::kRows;
      const size_t per_group = groups ? (next_rows * row_lines + groups - 1) / groups : 0;
      size_t pf_row = 0, pf_line = 0;
      for (size_t a = 0; a < a_end; a += F::kRows) {
        for (size_t k = 0; k < per_group && pf_row < next_rows; ++k) {
          _mm_prefetch(reinterpret_cast<const char*>(Xj + (nb + pf_row) * ldx + ns + pf_line * kLine), _MM_HINT_T0);
          if (++pf_line == row_lines) pf_line = 0, ++pf_row;
        }
        const size_t mr = ni - a < static_cast<size_t>(F::kRows) ? ni - a : F::kRows;
        if (mr == static_cast<size_t>(F::kRows))
          op_micro<F, F::kRows>(P, Xi + a * ldx + s, ldx, kc, C + a * ldc + b, ldc, nc, first);
        else
          op_micro_edge<F, F::kRows>(mr, P, Xi + a * ldx + s, ldx, kc, C + a * ldc + b, ldc, nc, first);
      }
    }
  }
}
