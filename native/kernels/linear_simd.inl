// The kernels of the linear classifier written once over vector traits A, for the x86-64 ISA files
// (linear_avx2.cpp, linear_avx512.cpp), which include this file inside their anonymous namespace
// after defining their traits: every function here then has internal linkage in each of them and is
// compiled with that file's flags only (the rule of kernels.hpp).
//
// A provides: T, V (vector), M (tail mask), W (lanes), zero/set1/load/loadm/store/storem/bcast/
// fma/add/mask/hsum; kAlignRows, whether the small-K tiles start rows at aligned vectors (see
// RowPhase), and then fmam (an FMA on the mask's lanes, the others kept) and mask_range (lanes
// [lo, hi)); hsum must add lanes W/2 apart, then W/4 apart, ..., then the last two: such a sum is
// the same for every rotation of the lanes (each addition commutes), which RowPhase relies on;
// kRegisters, the vector registers the ISA has; kDotRows × kDotClasses, the
// small-K score tile (rows must divide 4, the block's row multiple: see block_rows); kGradClasses,
// the classes of the small-K gradient tile;
// kWideVectors, the vectors of classes per row in the wide-K register tile; and kHsum4, whether it
// has hsum4 (four vectors' hsums as a Q of four lanes, each with hsum's additions in hsum's order)
// with Q's qload/qset1/qadd/qstore (see store_sums).
//
// Tails: sizes that are not multiples of the vector width go through masked loads and stores, which
// never touch the masked-out elements: no kernel reads or writes past the end of X, W, Wt, G, S,
// bias or acc.
//
// Shapes:
//   scores      K < kWideK: dot products along D with the packed transpose Wt (K×D), register
//               block of kDotRows rows × kDotClasses classes (AVX2 4 × 3, AVX-512 4 × 5: K = 10 in
//               two tiles), one vector accumulator per (row, class), horizontal
//               sums at the end; given the caller's next rows (a scores-only pass), every class
//               group asks for its share of them into L2 as it goes (NextRows). K >= kWideK: GEMM
//               broadcast form over W (D×K): tile of 6 rows × kWideVectors vectors of classes,
//               broadcasts of X[r][d].
//   grad_update K < kWideK: layout KD (acc[k*ld + d]), tile of kGradClasses classes (AVX2 5,
//               AVX-512 10) × 2 vectors along D,
//               loop over the block's rows inside (blocks whose row stride is a multiple of 4 KiB
//               are first copied into a tile-major L1 buffer: see kd_needs_pack); it prefetches the
//               next block of rows into L2 as it goes (NextRows). K >= kWideK: layout
//               DK (acc[d*K + k]), tile of 6 d's × kWideVectors vectors of classes, broadcasts of
//               X[r][d], rows inside.

// kWideK (kernels.hpp): from that many classes on, the GEMM forms (classes along the vector) win
// over the dot forms.

// The next block's cache lines, requested into L2 a few at a time during a gradient update, evenly
// over its row steps (a fixed-point share of lines per step, so that the last line is asked for by
// the last step: spread, not in one burst, which would stall on the core's few outstanding misses). The first
// class group of the next block's scores then reads X from L2: without it, that group waited for
// memory while the rest of the pass kept the core busy without any memory traffic. Measured on a
// noisy Zen 3 (perf_probe, one thread, 6 interleaved runs each, CPU time): the mean time fell 5–10%
// on mnist and cifar in both dtypes (mnist float32 61 → 55 ms, float64 112 → 105; cifar float32
// 39 → 38, float64 81 → 76), the best run by 0–10%; profiles show the first class group's share
// cut by more than half, part of it moved into the update itself. On Zen 5 with the 4 × 5 score
// tile (bench/ab.cjs, avx512): mnist float32 0.93×, cifar 0.92× the time without it. A scores-only
// pass asks for its next block the same way, from the score tiles (dot_tile's PF).
struct NextRows {
  uintptr_t first_line = 0;  // address of the line holding the first byte
  size_t lines = 0;          // lines touched, counting the partial ones at both ends
  size_t rate = 0;           // lines per step in 1/65536ths, rounded up
  // Progress, shared by the tiles of one pass: each copies it into registers and writes it back.
  size_t done = 0;  // lines asked for
  size_t due = 0;   // lines owed by now, in 1/65536ths

  // Spreads the lines of `bytes` from p over `steps` row steps.
  NextRows(const void* p, size_t bytes, size_t steps) {
    if (p == nullptr || bytes == 0 || steps == 0) return;
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    first_line = at & ~uintptr_t(63);
    lines = (at + bytes + 63) / 64 - at / 64;
    rate = ((lines << 16) + steps - 1) / steps;
  }

  // One row step of a tile, on the tile's own copies of done and due. The line's address is
  // formed as an integer (the first line starts before p): a prefetch never faults and is never
  // a read the program sees.
  void step(size_t& n, size_t& owed) const {
    if (n >= lines) return;
    owed += rate;
    for (; n < lines && (n << 16) < owed; ++n)
      _mm_prefetch(reinterpret_cast<const char*>(first_line + n * 64), _MM_HINT_T1);
  }
};

// Where a block's rows start within a vector-aligned block of memory. A large typed array's data
// starts 16 bytes past a cache line, so every 512-bit load of X spanned two lines. When every row
// starts at the same offset p (elements) within a vector (D · sizeof(T) a multiple of the vector's
// bytes), the small-K tiles start each row with the aligned vector that holds its first element,
// lanes [0, p) masked off, and go on with aligned loads. The score accumulators' lane l then sums
// the elements d ≡ l − p (mod W), the ones lane (l − p) mod W sums from an aligned X, in the same
// order, with no other operation on them (the head and tail use masked FMAs): the accumulator is
// the aligned one rotated by p lanes, and the horizontal sum (a butterfly, see A's hsum above) is
// the same for every rotation. So the scores are bitwise those of an aligned X: results never
// depend on where X sits in memory. The gradient tiles sum each element's rows alone, so any split
// of D gives the same bits; they start their aligned tiles after a masked head of W − p columns.
// The driver packs Wt at X's offset.
// Measured (bench/ab.cjs through Node, avx512, one thread, Intel Xeon, 8–10 rounds, time against
// the unaligned tiles): mnist float32 0.84× and 0.82×, float64 0.93× and 0.87×; cifar float32 1.02×
// and 1.01×, float64 0.87× and 0.93×; scores mnist 0.94×, 0.97×; tiny 1.00×. AVX2 (kAlignRows
// false): its 32-byte loads split a line every other step only, and aligning them measured 1.10×.
template <class A>
struct RowPhase {
  using T = typename A::T;
  size_t p = 0;  // elements of the aligned vector before each row's first one; 0 when aligned

  RowPhase(const T* X, size_t D) {
    constexpr size_t kBytes = A::W * sizeof(T);
    const uintptr_t at = reinterpret_cast<uintptr_t>(X);
    if (A::kAlignRows && at % sizeof(T) == 0 && (D * sizeof(T)) % kBytes == 0) p = (at % kBytes) / sizeof(T);
  }
  // The address p elements before row (never dereferenced but through a mask that excludes them);
  // formed as an integer: a pointer before an array's start is undefined behaviour.
  static const T* before(const T* row, size_t p) {
    return reinterpret_cast<const T*>(reinterpret_cast<uintptr_t>(row) - p * sizeof(T));
  }
};

// ------------------------------------------------------------------------------------------------
// scores, small K: S[r][k] = b[k] + x_r · Wt_k, R rows × C classes of vector accumulators along D.
// ------------------------------------------------------------------------------------------------

// S[i][k0 + j] = bias[k0 + j] + hsum(acc[i][j]) for a score tile's R rows × C classes. Where the
// ISA has hsum4 (hsum's additions, four vectors' at once), four classes of a row at a time, and a
// class left over for four rows at a time; the same bits either way. The horizontal sums were 7% of
// the score tiles' samples (perf annotate, perf_probe mnist float32, Zen 4); batched, perf_probe in
// cache (mnist --rows 200, 5 alternating rounds, AVX-512) ran float32 at 91.1–91.3 GFLOP/s against
// 89.0–89.5, float64 46.6–46.9 against 46.1–46.3, cifar (--rows 96) 0.5% faster. Inlined by force:
// as a call, it took the tile's accumulators by reference, GCC kept them in memory through the
// whole loop, and a scores call of 256×64, K = 10 took 1.46× the time.
template <class A, int R, int C>
__attribute__((always_inline)) inline void store_sums(const typename A::V (&acc)[R][C], const typename A::T* bias,
                                                     typename A::T* S, size_t K, size_t k0) {
  using T = typename A::T;
  int j = 0;
  if constexpr (A::kHsum4) {
    for (; j + 4 <= C; j += 4) {
      const typename A::Q b4 = bias ? A::qload(bias + k0 + j) : A::qset1(T(0));
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
        A::qstore(S + i * K + k0 + j, A::qadd(b4, A::hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3])));
    }
    if constexpr (R == 4) {
      for (; j < C; ++j) {
        alignas(32) T q[4];
        const typename A::Q b1 = A::qset1(bias ? bias[k0 + j] : T(0));
        A::qstore(q, A::qadd(b1, A::hsum4(acc[0][j], acc[1][j], acc[2][j], acc[3][j])));
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) S[i * K + k0 + j] = q[i];
      }
    }
  }
  for (; j < C; ++j)
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) S[i * K + k0 + j] = (bias ? bias[k0 + j] : T(0)) + A::hsum(acc[i][j]);
}

// PF: the tile asks for the caller's next rows (`next`, into L2, spread over its steps) as it goes;
// every class group of each row group does, in a scores-only pass. When only the first group asked
// (AVX-512, K = 10: half the pass), it asked for the whole next block faster than memory delivers
// on Zen 4 (mnist float32: 5 lines per step of 20 FMAs, ~57 GB/s, against one core's ~30 GB/s).
// Spread over every group, measured side by side (bench/ab.cjs, one thread, Zen 4): scores mnist
// float32 0.98× and 0.90× the time (B faster in 8 of 12 and 12 of 16 rounds), float64 0.96× (10 of
// 12), predict mnist float64 0.95× (10 of 12); cifar float32 1.00×, avx2 mnist 0.99×; results
// unchanged. K < kDotClasses (one partial group) now asks too; not measured (tiny is one block).
// In the fused pass the gradient update asks for them instead (NextRows above), and a tile that also pulled its next row
// group into L1 (as this one once did) evicted Wt, which with the rows fills Zen 5's 48 KiB L1:
// without that, perf_probe mnist float32 15.8 → 14.7 ms, float64 33.5 → 30.0, cifar float32 12.4 →
// 11.9 (avx512; avx2 the same or better). A scores-only pass with no prefetch at all was 38% slower.
template <class A, int R, int C, bool PF = false>
void dot_tile(const typename A::T* X, size_t D, const typename A::T* Wt, size_t ldt, size_t k0,
              const typename A::T* bias, typename A::T* S, size_t K, const RowPhase<A>& ph,
              NextRows* next = nullptr) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V acc[R][C];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) acc[i][j] = A::zero();
  const T* x[R];
  const T* w[C];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) x[i] = X + i * D;
#pragma GCC unroll 16
  for (int j = 0; j < C; ++j) w[j] = Wt + (k0 + j) * ldt;
  size_t pf_done = PF ? next->done : 0;
  size_t pf_due = PF ? next->due : 0;
  size_t d = 0;
  if constexpr (A::kAlignRows) {
    if (ph.p != 0) {
      // The vector-aligned block holding each row's first element, its lanes before that element
      // masked off (never read): from here on every load is aligned (see RowPhase).
      const typename A::M m = A::mask_range(ph.p, ph.p + D < W ? ph.p + D : W);
      V xv[R];
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) xv[i] = A::loadm(RowPhase<A>::before(x[i], ph.p), m);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) {
        const V wv = A::loadm(RowPhase<A>::before(w[j], ph.p), m);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) acc[i][j] = A::fmam(m, xv[i], wv, acc[i][j]);
      }
      d = W - ph.p;
    }
  }
  for (; d + W <= D; d += W) {
    if constexpr (PF) next->step(pf_done, pf_due);
    V xv[R];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      xv[i] = A::load(x[i] + d);
      // Keep the row vector in a register: left free, GCC folds the load into every class's FMA,
      // C loads of x per step instead of one (AVX-512, 4 × 5: 25 loads per 20 FMAs instead of 9,
      // over the two 512-bit loads a cycle the core can do; 45% → 62% of peak on mnist in cache).
      if constexpr (R * C + R + 1 <= A::kRegisters) __asm__("" : "+v"(xv[i]));
    }
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) {
      const V wv = A::load(w[j] + d);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i][j] = A::fma(xv[i], wv, acc[i][j]);
    }
  }
  if constexpr (PF) {
    next->done = pf_done;
    next->due = pf_due;
  }
  if (d < D) {
    const typename A::M m = A::mask(D - d);
    V xv[R];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) xv[i] = A::loadm(x[i] + d, m);
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) {
      const V wv = A::loadm(w[j] + d, m);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        if constexpr (A::kAlignRows)
          acc[i][j] = A::fmam(m, xv[i], wv, acc[i][j]);
        else
          acc[i][j] = A::fma(xv[i], wv, acc[i][j]);
      }
    }
  }
  store_sums<A, R, C>(acc, bias, S, K, k0);
}

template <class A, int R, int C, bool PF = false>
void dot_classes_tail(const typename A::T* X, size_t D, const typename A::T* Wt, size_t ldt, size_t k0,
                      size_t n, const typename A::T* bias, typename A::T* S, size_t K,
                      const RowPhase<A>& ph, NextRows* next = nullptr) {
  if constexpr (C > 0) {
    if (n == static_cast<size_t>(C))
      dot_tile<A, R, C, PF>(X, D, Wt, ldt, k0, bias, S, K, ph, next);
    else
      dot_classes_tail<A, R, C - 1, PF>(X, D, Wt, ldt, k0, n, bias, S, K, ph, next);
  }
}

// One class group (n <= kDotClasses classes from k0) of R rows.
template <class A, int R>
void dot_group(const typename A::T* X, size_t D, const typename A::T* Wt, size_t ldt, size_t k0, size_t n,
               const typename A::T* bias, typename A::T* S, size_t K, const RowPhase<A>& ph, NextRows* next) {
  constexpr int C = A::kDotClasses;
  if (next) {
    if (n == size_t(C))
      dot_tile<A, R, C, true>(X, D, Wt, ldt, k0, bias, S, K, ph, next);
    else
      dot_classes_tail<A, R, C - 1, true>(X, D, Wt, ldt, k0, n, bias, S, K, ph, next);
    return;
  }
  if (n == size_t(C))
    dot_tile<A, R, C>(X, D, Wt, ldt, k0, bias, S, K, ph);
  else
    dot_classes_tail<A, R, C - 1>(X, D, Wt, ldt, k0, n, bias, S, K, ph);
}

// Every class group of R rows, one after another.
template <class A, int R>
void dot_rows(const typename A::T* X, size_t D, const typename A::T* Wt, size_t ldt, size_t K,
              const typename A::T* bias, typename A::T* S, const RowPhase<A>& ph, NextRows* next) {
  constexpr size_t C = A::kDotClasses;
  for (size_t k0 = 0; k0 < K; k0 += C) dot_group<A, R>(X, D, Wt, ldt, k0, K - k0 < C ? K - k0 : C, bias, S, K, ph, next);
}

template <class A, int R>
void dot_rows_tail(const typename A::T* X, size_t D, const typename A::T* Wt, size_t ldt, size_t K,
                   size_t n, const typename A::T* bias, typename A::T* S, const RowPhase<A>& ph) {
  if constexpr (R > 0) {
    if (n == static_cast<size_t>(R))
      dot_rows<A, R>(X, D, Wt, ldt, K, bias, S, ph, nullptr);
    else
      dot_rows_tail<A, R - 1>(X, D, Wt, ldt, K, n, bias, S, ph);
  }
}

// ------------------------------------------------------------------------------------------------
// scores, large K: tile of R rows × NV vectors of classes; the last vector masked when MASK.
// ------------------------------------------------------------------------------------------------

template <class A, int R, int NV, bool MASK>
void gemm_tile(const typename A::T* X, size_t D, const typename A::T* Wm, size_t ldw, size_t K, size_t k0,
               const typename A::T* bias, typename A::T* S, typename A::M mlast) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V acc[R][NV];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = A::zero();
  const T* wp = Wm + k0;
  for (size_t d = 0; d < D; ++d, wp += ldw) {
    V wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      wv[v] = (MASK && v == NV - 1) ? A::loadm(wp + v * W, mlast) : A::load(wp + v * W);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const V xb = A::bcast(X + i * D + d);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = A::fma(xb, wv[v], acc[i][v]);
    }
  }
  V bv[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    if (!bias)
      bv[v] = A::zero();
    else
      bv[v] = (MASK && v == NV - 1) ? A::loadm(bias + k0 + v * W, mlast) : A::load(bias + k0 + v * W);
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* out = S + i * K + k0 + v * W;
      const V s = A::add(acc[i][v], bv[v]);
      if (MASK && v == NV - 1)
        A::storem(out, mlast, s);
      else
        A::store(out, s);
    }
}

template <class A, int NV, bool MASK>
void gemm_cols(const typename A::T* X, size_t rows, size_t D, const typename A::T* Wm, size_t ldw,
               size_t K, size_t k0, const typename A::T* bias, typename A::T* S, typename A::M mlast) {
  constexpr size_t R = 6;
  size_t r = 0;
  for (; r + R <= rows; r += R) gemm_tile<A, 6, NV, MASK>(X + r * D, D, Wm, ldw, K, k0, bias, S + r * K, mlast);
  const auto* Xr = X + r * D;
  auto* Sr = S + r * K;
  switch (rows - r) {
    case 5: gemm_tile<A, 5, NV, MASK>(Xr, D, Wm, ldw, K, k0, bias, Sr, mlast); break;
    case 4: gemm_tile<A, 4, NV, MASK>(Xr, D, Wm, ldw, K, k0, bias, Sr, mlast); break;
    case 3: gemm_tile<A, 3, NV, MASK>(Xr, D, Wm, ldw, K, k0, bias, Sr, mlast); break;
    case 2: gemm_tile<A, 2, NV, MASK>(Xr, D, Wm, ldw, K, k0, bias, Sr, mlast); break;
    case 1: gemm_tile<A, 1, NV, MASK>(Xr, D, Wm, ldw, K, k0, bias, Sr, mlast); break;
    default: break;
  }
}

// The small-K score tiles take a block's rows one class group at a time (every row group for
// classes 0..C−1, then for C..2C−1, ...) when a group's rows of Wt fit in half of a 32 KiB L1 and
// that moves fewer bytes from L2: per R rows, each of the G groups re-reads the R rows of X
// (G·R·D elements) while the group's Wt stays in L1, against all of Wt (K·D) and the rows once when
// the groups of each row group run together, X's rows then kept in L1 while Wt streams past; so
// (G − 1)·R < K. AVX-512 float32 mnist (4 × 5 tiles, G = 2: 4 < 10, 15.7 KiB of Wt per group)
// qualifies; AVX2 (4 × 3, G = 4: 12 > 10) and cifar (60 KiB per group) do not. Measured side by
// side (bench/ab.cjs, one thread, Zen 4): scores mnist float32 0.76×, 0.80× and 0.77× the time
// (12 of 12, 8 of 10, 14 of 16 rounds; medians of 60 calls in turn 0.90× and 0.89×), predict 0.90×
// (9 of 10), lossAndGradients 0.95× (8 of 12); with every shape taking it, cifar's
// lossAndGradients took 1.15× (0 of 10) and avx2 mnist 1.04×. Same results, bitwise: each score is
// the same tile's sum.
constexpr size_t kGroupWtBytes = 16 * 1024;

template <class A>
void scores_simd(const typename A::T* X, size_t rows, WeightsView<typename A::T> w,
                 const typename A::T* bias, typename A::T* S, const typename A::T* next_rows_ptr,
                 size_t next_rows) {
  const size_t D = w.D, K = w.K;
  constexpr size_t W = A::W;
  if (rows == 0 || K == 0) return;
  if (K < kWideK) {
    constexpr size_t R = A::kDotRows;
    // The steps that ask for the next rows: the main loop of every class group's tile over the
    // block's whole row groups (the masked head and tail steps do not ask).
    const RowPhase<A> ph(X, D);
    const size_t groups = (K + A::kDotClasses - 1) / A::kDotClasses;
    const size_t tile_steps = ph.p != 0 ? D / W - 1 : D / W;
    NextRows next(next_rows_ptr, next_rows * D * sizeof(typename A::T), rows / R * tile_steps * groups);
    NextRows* pf = next_rows_ptr ? &next : nullptr;
    const size_t whole = rows / R * R;
    if ((groups - 1) * R < K && A::kDotClasses * w.ldt * sizeof(typename A::T) <= kGroupWtBytes) {
      for (size_t k0 = 0; k0 < K; k0 += A::kDotClasses) {
        const size_t n = K - k0 < size_t(A::kDotClasses) ? K - k0 : size_t(A::kDotClasses);
        for (size_t r = 0; r < whole; r += R)
          dot_group<A, A::kDotRows>(X + r * D, D, w.Wt, w.ldt, k0, n, bias, S + r * K, K, ph, pf);
      }
    } else {
      for (size_t r = 0; r < whole; r += R) dot_rows<A, A::kDotRows>(X + r * D, D, w.Wt, w.ldt, K, bias, S + r * K, ph, pf);
    }
    if (whole < rows)
      dot_rows_tail<A, A::kDotRows - 1>(X + whole * D, D, w.Wt, w.ldt, K, rows - whole, bias, S + whole * K, ph);
    return;
  }
  // Class tiles outer: the tile's D×(2W) slice of W stays in L1/L2 across the row tiles.
  const typename A::M full = A::mask(W);
  size_t k0 = 0;
  // 6 rows × kWideVectors vectors of classes (2 with AVX2's 16 registers, 4 with AVX-512's 32); the
  // rest of K in one tile of 1 to kWideVectors vectors, the last masked. (A separate 1-vector tile
  // for a few leftover classes cost as much as 20 full classes: 6 accumulators cannot hide the FMA
  // latency.)
  constexpr int NV = A::kWideVectors;
  for (; k0 + NV * W <= K; k0 += NV * W) gemm_cols<A, NV, false>(X, rows, D, w.W, w.ldw, K, k0, bias, S, full);
  const size_t rem = K - k0;
  const typename A::M last = A::mask(rem % W == 0 ? W : rem % W);
  switch ((rem + W - 1) / W) {
    case 4:
      if constexpr (NV >= 4) gemm_cols<A, 4, true>(X, rows, D, w.W, w.ldw, K, k0, bias, S, last);
      break;
    case 3:
      if constexpr (NV >= 3) gemm_cols<A, 3, true>(X, rows, D, w.W, w.ldw, K, k0, bias, S, last);
      break;
    case 2: gemm_cols<A, 2, true>(X, rows, D, w.W, w.ldw, K, k0, bias, S, last); break;
    case 1: gemm_cols<A, 1, true>(X, rows, D, w.W, w.ldw, K, k0, bias, S, last); break;
    default: break;
  }
}

// ------------------------------------------------------------------------------------------------
// grad_update, layout KD: acc[k][d] += sum_r G[r][k] X[r][d]; tile C classes × NV vectors along D.
// ------------------------------------------------------------------------------------------------

// Xd points at column d0 of the block's first row, rows ldx apart; accd at column d0 of class 0's
// accumulator row, classes lda apart.
template <class A, int C, int NV, bool MASK>
void gkd_tile(const typename A::T* Xd, size_t ldx, size_t rows, size_t lda, const typename A::T* G,
              size_t K, size_t k0, typename A::T* accd, typename A::M mlast, NextRows& next) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V a[C][NV];
#pragma GCC unroll 16
  for (int j = 0; j < C; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const T* p = accd + (k0 + j) * lda + v * W;
      a[j][v] = (MASK && v == NV - 1) ? A::loadm(p, mlast) : A::load(p);
    }
  const T* xp = Xd;
  const T* gp = G + k0;
  size_t pf_done = next.done;
  size_t pf_due = next.due;
  for (size_t r = 0; r < rows; ++r, xp += ldx, gp += K) {
    next.step(pf_done, pf_due);
    V xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      xv[v] = (MASK && v == NV - 1) ? A::loadm(xp + v * W, mlast) : A::load(xp + v * W);
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) {
      const V g = A::bcast(gp + j);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) a[j][v] = A::fma(g, xv[v], a[j][v]);
    }
  }
  next.done = pf_done;
  next.due = pf_due;
#pragma GCC unroll 16
  for (int j = 0; j < C; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* p = accd + (k0 + j) * lda + v * W;
      if (MASK && v == NV - 1)
        A::storem(p, mlast, a[j][v]);
      else
        A::store(p, a[j][v]);
    }
}

template <class A, int NV, bool MASK, int C>
void gkd_classes_tail(const typename A::T* Xd, size_t ldx, size_t rows, size_t lda, const typename A::T* G,
                      size_t K, size_t k0, typename A::T* accd, typename A::M mlast, NextRows& next) {
  if constexpr (C > 0) {
    if (K - k0 == static_cast<size_t>(C))
      gkd_tile<A, C, NV, MASK>(Xd, ldx, rows, lda, G, K, k0, accd, mlast, next);
    else
      gkd_classes_tail<A, NV, MASK, C - 1>(Xd, ldx, rows, lda, G, K, k0, accd, mlast, next);
  }
}

template <class A, int NV, bool MASK>
void gkd_classes(const typename A::T* Xd, size_t ldx, size_t rows, size_t lda, const typename A::T* G,
                 size_t K, typename A::T* accd, typename A::M mlast, NextRows& next) {
  constexpr size_t C = A::kGradClasses;
  size_t k0 = 0;
  for (; k0 + C <= K; k0 += C) gkd_tile<A, C, NV, MASK>(Xd, ldx, rows, lda, G, K, k0, accd, mlast, next);
  if (k0 < K) gkd_classes_tail<A, NV, MASK, A::kGradClasses - 1>(Xd, ldx, rows, lda, G, K, k0, accd, mlast, next);
}

// Rows of X whose stride is a multiple of 4 KiB (cifar: D = 3072 floats) put the same column of
// every row in the same L1 set; the tiles below walk rows at a fixed column, so beyond the L1's 8
// ways each row's line is evicted before the next class group (or the next vector) reuses it. Such
// blocks are first copied, a chunk of columns at a time, into a small tile-major buffer (each
// tile's rows 2W apart, contiguous), which the tiles then read from L1. When one class group
// takes every class (K <= kGradClasses), each line is read once and nothing is reused, so the copy
// is pure cost: AVX-512 cifar float32 in cache (perf_probe --rows 500) spent 8% of its time in it.
template <class A>
bool kd_needs_pack(size_t D, size_t rows, size_t K) {
  if (K <= static_cast<size_t>(A::kGradClasses)) return false;
  const size_t stride = D * sizeof(typename A::T);
  size_t g = 4096;
  while (g > 64 && stride % g != 0) g >>= 1;  // largest power of two (64..4096) dividing the stride
  const size_t distinct = 4096 / g;           // distinct L1 sets the rows' same column falls in
  return rows > 4 * distinct;
}

constexpr size_t kPackBytes = 16 * 1024;

template <class A>
void grad_kd_packed(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
                    typename A::T* acc, size_t lda, NextRows& next) {
  using T = typename A::T;
  constexpr size_t W = A::W;
  constexpr size_t TW = 2 * W;
  constexpr size_t kElems = kPackBytes / sizeof(T);
  alignas(64) T pack[kElems];
  const typename A::M full = A::mask(W);
  const size_t full_tiles = D / TW;
  size_t tiles_per_chunk = kElems / (rows * TW);
  if (tiles_per_chunk == 0) tiles_per_chunk = 1;
  for (size_t t0 = 0; t0 < full_tiles; t0 += tiles_per_chunk) {
    const size_t nt = full_tiles - t0 < tiles_per_chunk ? full_tiles - t0 : tiles_per_chunk;
    if (rows * TW * nt <= kElems) {
      for (size_t r = 0; r < rows; ++r) {
        const T* xr = X + r * D + t0 * TW;
        for (size_t t = 0; t < nt; ++t) {
          T* dst = pack + (t * rows + r) * TW;
          A::store(dst, A::load(xr + t * TW));
          A::store(dst + W, A::load(xr + t * TW + W));
        }
      }
      for (size_t t = 0; t < nt; ++t)
        gkd_classes<A, 2, false>(pack + t * rows * TW, TW, rows, lda, G, K, acc + (t0 + t) * TW, full, next);
    } else {
      for (size_t t = 0; t < nt; ++t)
        gkd_classes<A, 2, false>(X + (t0 + t) * TW, D, rows, lda, G, K, acc + (t0 + t) * TW, full, next);
    }
  }
  const size_t d0 = full_tiles * TW;
  const size_t rem = D - d0;
  if (rem > W)
    gkd_classes<A, 2, true>(X + d0, D, rows, lda, G, K, acc + d0, A::mask(rem - W), next);
  else if (rem == W)
    gkd_classes<A, 1, false>(X + d0, D, rows, lda, G, K, acc + d0, full, next);
  else if (rem > 0)
    gkd_classes<A, 1, true>(X + d0, D, rows, lda, G, K, acc + d0, A::mask(rem), next);
}

template <class A>
void grad_kd(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
             typename A::T* acc, size_t lda, const typename A::T* next_rows_ptr, size_t next_rows) {
  constexpr size_t W = A::W;
  // Row steps of the tiles below: one per row for every (2W columns of D, kGradClasses classes);
  // a masked head tile (RowPhase) takes one more, so the last line is asked for by the end.
  const size_t steps = rows * ((D + 2 * W - 1) / (2 * W)) * ((K + A::kGradClasses - 1) / A::kGradClasses);
  NextRows next(next_rows_ptr, next_rows * D * sizeof(typename A::T), steps);
  if (kd_needs_pack<A>(D, rows, K)) {
    grad_kd_packed<A>(X, rows, D, G, K, acc, lda, next);
    return;
  }
  const typename A::M full = A::mask(W);
  // D tiles outer: the tile's rows×2W slice of X stays in L1 across the class groups; from the
  // rows' first aligned column on (RowPhase), after a masked tile of the columns before it.
  size_t d0 = 0;
  const RowPhase<A> ph(X, D);
  if (ph.p != 0) {
    d0 = W - ph.p < D ? W - ph.p : D;
    gkd_classes<A, 1, true>(X, D, rows, lda, G, K, acc, A::mask(d0), next);
  }
  for (; d0 + 2 * W <= D; d0 += 2 * W) gkd_classes<A, 2, false>(X + d0, D, rows, lda, G, K, acc + d0, full, next);
  const size_t rem = D - d0;
  if (rem > W)
    gkd_classes<A, 2, true>(X + d0, D, rows, lda, G, K, acc + d0, A::mask(rem - W), next);
  else if (rem == W)
    gkd_classes<A, 1, false>(X + d0, D, rows, lda, G, K, acc + d0, full, next);
  else if (rem > 0)
    gkd_classes<A, 1, true>(X + d0, D, rows, lda, G, K, acc + d0, A::mask(rem), next);
}

// ------------------------------------------------------------------------------------------------
// grad_update, layout DK: acc[d][k] += sum_r X[r][d] G[r][k]; tile RD d's × NV vectors of classes.
// ------------------------------------------------------------------------------------------------

template <class A, int RD, int NV, bool MASK>
void gdk_tile(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
              size_t d0, size_t k0, typename A::T* acc, typename A::M mlast) {
  using T = typename A::T;
  using V = typename A::V;
  constexpr size_t W = A::W;
  V a[RD][NV];
#pragma GCC unroll 8
  for (int i = 0; i < RD; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const T* p = acc + (d0 + i) * K + k0 + v * W;
      a[i][v] = (MASK && v == NV - 1) ? A::loadm(p, mlast) : A::load(p);
    }
  const T* xp = X + d0;
  const T* gp = G + k0;
  for (size_t r = 0; r < rows; ++r, xp += D, gp += K) {
    V gv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      gv[v] = (MASK && v == NV - 1) ? A::loadm(gp + v * W, mlast) : A::load(gp + v * W);
#pragma GCC unroll 8
    for (int i = 0; i < RD; ++i) {
      const V xb = A::bcast(xp + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) a[i][v] = A::fma(xb, gv[v], a[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RD; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* p = acc + (d0 + i) * K + k0 + v * W;
      if (MASK && v == NV - 1)
        A::storem(p, mlast, a[i][v]);
      else
        A::store(p, a[i][v]);
    }
}

template <class A, int RD>
void gdk_dtile(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
               size_t d0, typename A::T* acc) {
  constexpr size_t W = A::W;
  const typename A::M full = A::mask(W);
  size_t k0 = 0;
  // RD d's × kWideVectors vectors of classes; the rest of K in one masked tile (see scores_simd).
  constexpr int NV = A::kWideVectors;
  for (; k0 + NV * W <= K; k0 += NV * W) gdk_tile<A, RD, NV, false>(X, rows, D, G, K, d0, k0, acc, full);
  const size_t rem = K - k0;
  const typename A::M last = A::mask(rem % W == 0 ? W : rem % W);
  switch ((rem + W - 1) / W) {
    case 4:
      if constexpr (NV >= 4) gdk_tile<A, RD, 4, true>(X, rows, D, G, K, d0, k0, acc, last);
      break;
    case 3:
      if constexpr (NV >= 3) gdk_tile<A, RD, 3, true>(X, rows, D, G, K, d0, k0, acc, last);
      break;
    case 2: gdk_tile<A, RD, 2, true>(X, rows, D, G, K, d0, k0, acc, last); break;
    case 1: gdk_tile<A, RD, 1, true>(X, rows, D, G, K, d0, k0, acc, last); break;
    default: break;
  }
}

template <class A>
void grad_dk(const typename A::T* X, size_t rows, size_t D, const typename A::T* G, size_t K,
             typename A::T* acc) {
  constexpr size_t RD = 6;
  size_t d0 = 0;
  for (; d0 + RD <= D; d0 += RD) gdk_dtile<A, 6>(X, rows, D, G, K, d0, acc);
  switch (D - d0) {
    case 5: gdk_dtile<A, 5>(X, rows, D, G, K, d0, acc); break;
    case 4: gdk_dtile<A, 4>(X, rows, D, G, K, d0, acc); break;
    case 3: gdk_dtile<A, 3>(X, rows, D, G, K, d0, acc); break;
    case 2: gdk_dtile<A, 2>(X, rows, D, G, K, d0, acc); break;
    case 1: gdk_dtile<A, 1>(X, rows, D, G, K, d0, acc); break;
    default: break;
  }
}

template <class A>
void grad_update_simd(const typename A::T* X, size_t rows, size_t D, const typename A::T* G,
                      size_t K, typename A::T* acc, size_t lda, GradLayout layout, const typename A::T* next,
                      size_t next_rows) {
  if (rows == 0 || D == 0 || K == 0) return;
  // Only the small-K form prefetches: there the next block's scores are bound by memory; wide K
  // does ~K/10 times more arithmetic per byte of X.
  if (layout == GradLayout::KD)
    grad_kd<A>(X, rows, D, G, K, acc, lda, next, next_rows);
  else
    grad_dk<A>(X, rows, D, G, K, acc);
}

GradLayout grad_layout_simd(size_t, size_t K) { return K < kWideK ? GradLayout::KD : GradLayout::DK; }
