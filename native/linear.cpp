#include "linear.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "memory_hints.hpp"
#include "thread_pool.hpp"

namespace softmax_simd {

namespace {

// Below this many multiply-adds a part is not worth a thread wake-up (about 10 us of work).
constexpr size_t kMinWorkPerPart = size_t(1) << 18;

// Budget for one block of X plus its scores and gradient rows: X is read twice per block (scores,
// then the gradient update), so the block must still be in L2 (1 MiB per core here) the second time.
constexpr size_t kBlockBytes = 320 * 1024;

template <typename T>
std::unique_ptr<T[]> try_alloc(size_t n) {
  return std::unique_ptr<T[]>(new (std::nothrow) T[n == 0 ? 1 : n]);
}

// Column chunks for the D×K ↔ K×D copies (transpose: W into Wt, and the parts' K×D gradient sums
// into dW): each of the K rows of the K×D side is touched 16 elements (one or two lines) at a time.
// Element by element, the K rows' same column came in turn: K lines a stride of D apart, which for
// D·sizeof(T) a multiple of 4 KiB (cifar: 12 KiB) all fall in one L1 set, and past its 8 ways every
// access missed. Each element is still copied or added once, so the results are the same bits.
constexpr size_t kColumnChunk = 16;

// Row stride (elements) of the call's own K×D buffers, Wt and the KD accumulator: D, and one
// 64-byte line more when a row is a multiple of 512 bytes (cifar: 12 KiB). Such rows put the same
// column of all K rows in at most 8 of the L1's 64 sets (cifar: in one), where the score tiles'
// five rows of Wt and the gradient tiles' ten rows of acc met the block's rows of X (which share
// that set too) and evicted each other: every accumulator line was stored after its set had seen
// B rows of X. An odd number of lines spreads any 64 rows over all 64 sets. Measured side by side
// on Zen 4 (bench/ab.cjs, cifar, one thread, bitwise the same results): avx512 float32 0.94×,
// float64 0.91×, avx2 float32 0.70×, float64 0.95× the time.
template <typename T>
size_t kd_stride(size_t D) {
  return (D * sizeof(T)) % 512 == 0 ? D + 64 / sizeof(T) : D;
}

template <typename T>
void transpose(const T* W, size_t D, size_t K, T* Wt, size_t ldt) {
  for (size_t d0 = 0; d0 < D; d0 += kColumnChunk) {
    const size_t n = std::min(kColumnChunk, D - d0);
    for (size_t k = 0; k < K; ++k)
      for (size_t j = 0; j < n; ++j) Wt[k * ldt + d0 + j] = W[(d0 + j) * K + k];
  }
}

// Extra elements of a Wt buffer that packed_at may skip.
template <typename T>
constexpr size_t kWtSlack = 128 / sizeof(T);

// Where in `buffer` (K×ldt + kWtSlack elements) to pack Wt: on a line, or, for kernels that start
// each row at its first vector-aligned element (aligned_weights; RowPhase in
// kernels/linear_simd.inl), at the same offset within a 64-byte line as X's rows when they all
// share one, so that those tiles read Wt aligned too.
template <typename T>
T* packed_at(const LinearKernels<T>& kern, T* buffer, const T* X, size_t D) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(buffer);
  uintptr_t line = (at + 63) / 64 * 64;
  const uintptr_t x = reinterpret_cast<uintptr_t>(X);
  if (kern.aligned_weights && (D * sizeof(T)) % 64 == 0 && x % sizeof(T) == 0) line += x % 64;
  return reinterpret_cast<T*>(line);
}

// W's row stride as the kernels read it: K, or, for a table with aligned_weights and K of the wide
// (GEMM) form, K rounded up to whole 64-byte lines: that form loads each row of W in vectors, and
// rows of K = 1000 float32 (4000 bytes) split every other row's loads across two lines.
template <typename T>
size_t weight_stride(const LinearKernels<T>& kern, size_t K) {
  constexpr size_t kLine = 64 / sizeof(T);
  if (!kern.aligned_weights || K < kWideK || K % kLine == 0) return K;
  return (K + kLine - 1) / kLine * kLine;
}

// W with rows ldw apart, on a line: the caller's W itself when ldw == K, else copied into `buffer`
// (D × ldw + kWtSlack elements), the padding zero.
template <typename T>
const T* weights_at(const T* W, size_t D, size_t K, size_t ldw, T* buffer) {
  if (ldw == K) return W;
  T* out = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buffer) + 63) / 64 * 64);
  for (size_t d = 0; d < D; ++d) {
    std::memcpy(out + d * ldw, W + d * K, K * sizeof(T));
    std::memset(out + d * ldw + K, 0, (ldw - K) * sizeof(T));
  }
  return out;
}

// The weights of a scores or predict call, in buffers of its own (loss_grad packs them into its
// one scratch allocation instead).
template <typename T>
struct CallWeights {
  std::unique_ptr<T[]> Wt_buffer, W_buffer;
  WeightsView<T> view{};

  bool pack(const LinearKernels<T>& kern, const T* X, size_t D, const T* W, size_t K) {
    const size_t ldw = weight_stride(kern, K);
    const size_t ldt = kd_stride<T>(D);
    Wt_buffer = try_alloc<T>(K * ldt + kWtSlack<T>);
    W_buffer = try_alloc<T>(ldw == K ? 0 : D * ldw + kWtSlack<T>);
    if (!Wt_buffer || !W_buffer) return false;
    T* Wt = packed_at(kern, Wt_buffer.get(), X, D);
    transpose(W, D, K, Wt, ldt);
    view = {weights_at(W, D, K, ldw, W_buffer.get()), Wt, D, K, ldw, ldt};
    return true;
  }
};

// A part's row range: part p of `parts` takes rows [N*p/parts, N*(p+1)/parts).
inline size_t part_begin(size_t N, size_t p, size_t parts) {
  return static_cast<size_t>((static_cast<unsigned __int128>(N) * p) / parts);
}

// Rows of the float32 accumulator between flushes into float64: long enough that the flush (D*K
// adds) is noise next to the block work (rows*D*K multiply-adds), short enough that float32 sums of
// that many rows keep their precision.
template <typename T>
size_t flush_rows() {
  return std::numeric_limits<T>::digits > 24 ? std::numeric_limits<size_t>::max() : 256;
}

// A part's scratch, pointers into the call's one scratch allocation (see loss_grad).
template <typename T>
struct PartState {
  T *S = nullptr, *G = nullptr, *acc = nullptr;
  T* M = nullptr;  // row maxima of the block
  double* Z = nullptr;    // row sums of exp(s − max), float64
  double* inv = nullptr;  // one-hot path: 1 / Z, or 0 for an ignored row
  double* ey = nullptr;   // one-hot path: exp(s_y − max) of the row's label, kept before scaling
  double* sums = nullptr;
  double* t = nullptr;  // the row's target weights t_c
  LossOutcome outcome;
};

// Carves one allocation into arrays, each starting on its own cache line, and keeps it per calling
// thread while it is small: a small call's fixed cost was largely its ~8 mallocs (each of 1 KiB or
// more also consolidates glibc's fast bins, which Node fills), and parts' arrays never share a line
// between threads. A thread runs one call at a time (parallel_for blocks its caller), so the
// thread's block is never in use twice.
class Scratch {
 public:
  template <typename U>
  size_t reserve(size_t n) {
    const size_t at = bytes_;
    bytes_ += (sizeof(U) * (n == 0 ? 1 : n) + kLine - 1) / kLine * kLine;
    return at;
  }
  bool allocate() {
    const size_t need = bytes_ + kLine;
    if (need > kKeptBytes) {
      owned_.reset(new (std::nothrow) unsigned char[need]);
      block_ = owned_.get();
      return block_ != nullptr;
    }
    thread_local std::unique_ptr<unsigned char[]> kept;
    thread_local size_t kept_bytes = 0;
    if (kept_bytes < need) {
      kept.reset(new (std::nothrow) unsigned char[kKeptBytes]);
      kept_bytes = kept ? kKeptBytes : 0;
    }
    block_ = kept.get();
    return block_ != nullptr;
  }
  template <typename U>
  U* at(size_t offset) const {
    const uintptr_t base = (reinterpret_cast<uintptr_t>(block_) + kLine - 1) / kLine * kLine;
    return reinterpret_cast<U*>(base + offset);
  }

 private:
  static constexpr size_t kLine = 64;
  static constexpr size_t kKeptBytes = 64 * 1024;
  size_t bytes_ = 0;
  unsigned char* block_ = nullptr;
  std::unique_ptr<unsigned char[]> owned_;
};

// out[i] += double(a[i]) for i < n; with CLEAR, a[i] = 0 as it is read. Float runs go four at a
// time in GCC's portable vectors (SSE2 / NEON at this file's baseline flags): the plain loop, of
// unknown length and with stores GCC would not prove apart, stayed scalar at -O2. Each element is
// still one addition: the same bits.
template <bool CLEAR, typename T>
void add_run(double* out, T* a, size_t n) {
  size_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    typedef float Floats __attribute__((vector_size(16)));
    typedef double Doubles __attribute__((vector_size(32)));
    for (; i + 4 <= n; i += 4) {
      Floats x;
      Doubles o;
      std::memcpy(&x, a + i, sizeof x);
      std::memcpy(&o, out + i, sizeof o);
      o += __builtin_convertvector(x, Doubles);
      std::memcpy(out + i, &o, sizeof o);
      if (CLEAR) std::memset(a + i, 0, sizeof x);
    }
  }
  for (; i < n; ++i) {
    out[i] += static_cast<double>(a[i]);
    if (CLEAR) a[i] = T(0);
  }
}

// A chunk's float64 gradient sums += acc, in acc's own layout: for layout KD a chunk keeps its
// sums K×D (class rows D apart), and loss_grad puts them in dW's D×K order once, as it adds the
// chunks. The float32 pass flushes every 256 rows; flushed into D×K, each element went a stride of K
// doubles away, one by one, and that flush took 5–7% of mnist float32's time (perf, cpu-clock
// samples of perf_probe: 1.25% of all samples against 22% in the float32 pass); now 0.6% against
// 20%. Measured side by side (bench/ab.cjs, one thread, avx512, Zen 4, same bits): see the commit.
// With CLEAR, acc's elements are zeroed as they are read (the next rows' accumulation starts from
// zero): one pass over acc instead of a flush and a memset, which for wide K (D×K float32, 2 MiB
// for wideK, from L3) was a second trip through the whole accumulator. wideK float32, one thread,
// Zen 4, bench/ab.cjs: 0.970× (7 of 8 rounds) and 0.979× (5 of 8), same bits.
// Where the ISA has add_to_sums (float32 on AVX2 and AVX-512) it does the adding, 16 floats a step
// on AVX-512 instead of add_run's 4: in a later profile (perf_probe mnist, both dtypes in one
// process) its samples went 0.71% → 0.35%, against ~18% in the float32 pass's two tiles;
// bench/ab.cjs, Zen 4, same bits: mnist float32 one thread 0.985× (B faster in 8 of 12 rounds), two
// threads 0.949× (8 of 10), wideK 0.993× (6 of 8), avx2 mnist 0.995×.
template <bool CLEAR, typename T>
void flush(const LinearKernels<T>& kern, T* acc, GradLayout layout, size_t D, size_t K, size_t ld, double* sums) {
  const auto add = [&](double* out, T* a, size_t n) {
    if (kern.add_to_sums)
      kern.add_to_sums(out, a, n, CLEAR);
    else
      add_run<CLEAR>(out, a, n);
  };
  if (layout == GradLayout::DK) {
    add(sums, acc, D * K);
    return;
  }
  for (size_t k = 0; k < K; ++k) add(sums + k * D, acc + k * ld, D);
}

// The row's largest value, in four independent chains combined at the end (one chain made each row
// a K-long sequence of dependent compares). NaN entries never win the comparison; the maximum of
// the others is exact in any order.
template <typename T>
T row_max(const T* s, size_t K) {
  T m0 = s[0], m1 = s[0], m2 = s[0], m3 = s[0];
  size_t c = 0;
  for (; c + 4 <= K; c += 4) {
    m0 = s[c] > m0 ? s[c] : m0;
    m1 = s[c + 1] > m1 ? s[c + 1] : m1;
    m2 = s[c + 2] > m2 ? s[c + 2] : m2;
    m3 = s[c + 3] > m3 ? s[c + 3] : m3;
  }
  for (; c < K; ++c) m0 = s[c] > m0 ? s[c] : m0;
  m0 = m1 > m0 ? m1 : m0;
  m2 = m3 > m2 ? m3 : m2;
  return m2 > m0 ? m2 : m0;
}

// The loss of one row and its gradient with respect to the scores, for every option:
//   t_c  = the row's target weights (one-hot label, smoothed, class- and sample-weighted),
//   L_i  = sum_c t_c (lse - f_c)        (never via log p: exact when p underflows),
//   dL/df_c = p_c * sum_c t_c - t_c.
// Returns false when the row is invalid (status set); `weight` is the row's share of the 'mean'
// denominator.
template <typename T>
bool row_loss(const LossProblem<T>& pb, size_t i, const T* s, T m, const T* e, double sum, T* g,
              double* t, double* loss, double* weight, LossOutcome* out) {
  const size_t K = pb.K;
  const double eps = pb.label_smoothing;
  const double base = pb.sample_weights ? pb.sample_weights[i] : 1.0;
  const double* cw = pb.class_weights;
  if (pb.targets) {
    const T* tr = pb.targets + i * K;
    double total = 0;
    for (size_t c = 0; c < K; ++c) {
      const double v = static_cast<double>(tr[c]);
      if (!(v >= 0) || !std::isfinite(v)) {
        *out = {LossStatus::bad_target, i};
        return false;
      }
      total += v;
      t[c] = base * (cw ? cw[c] : 1.0) * ((1 - eps) * v + eps / static_cast<double>(K));
    }
    // Rows must sum to 1 within the dtype's rounding of K terms.
    const double tol = 8.0 * static_cast<double>(K) * std::numeric_limits<T>::epsilon();
    if (!(std::fabs(total - 1.0) <= tol)) {
      *out = {LossStatus::bad_target, i};
      return false;
    }
    *weight = base;
  } else {
    const int64_t y = pb.labels[i];
    if (pb.has_ignore_index && y == pb.ignore_index) {
      for (size_t c = 0; c < K; ++c) g[c] = T(0);
      *loss = 0;
      *weight = 0;
      return true;
    }
    if (y < 0 || static_cast<uint64_t>(y) >= K) {
      *out = {LossStatus::bad_label, i};
      return false;
    }
    const double wy = cw ? cw[y] : 1.0;
    for (size_t c = 0; c < K; ++c) t[c] = eps == 0 ? 0.0 : base * eps / double(K) * (cw ? cw[c] : 1.0);
    t[y] += base * (1 - eps) * wy;
    *weight = base * wy;
  }
  const double lse = static_cast<double>(m) + std::log(sum);
  double L = 0, tsum = 0;
  for (size_t c = 0; c < K; ++c) {
    if (t[c] == 0) continue;  // 0 * (lse - f_c) is 0 even where p_c underflows
    L += t[c] * (lse - static_cast<double>(s[c]));
    tsum += t[c];
  }
  if (!std::isfinite(L)) {
    *out = {LossStatus::non_finite, i};
    return false;
  }
  const double inv = 1.0 / sum;
  for (size_t c = 0; c < K; ++c)
    g[c] = static_cast<T>(static_cast<double>(e[c]) * inv * tsum - t[c]);
  *loss = L;
  return true;
}

// The loss of a block's rows for plain one-hot labels (t = e_y: no smoothing, class or sample
// weights; ignore_index allowed): L = max + log Z − s_y, and the inputs of g = p − e_y, which the
// caller then forms block-wide: g = T(e · inv) for every class (scale_rows), then for the label
// g_y = T(e_y · inv − 1), the same operations per entry as the general rule with t_y = 1. An ignored
// row gets inv = 0, so g = 0, and weight 0. Returns false (outcome set) at the first bad row.
template <typename T>
bool one_hot_rows(const LossProblem<T>& pb, size_t r0, size_t rows, const T* S, const T* M,
                  const T* E, PartState<T>& st, double* loss_sum, double* weight_sum) {
  const size_t K = pb.K;
  for (size_t r = 0; r < rows; ++r) {
    const size_t i = r0 + r;
    const int64_t y = pb.labels[i];
    double L = 0, w = 0;
    if (pb.has_ignore_index && y == pb.ignore_index) {
      st.inv[r] = 0;
    } else {
      if (y < 0 || static_cast<uint64_t>(y) >= K) {
        st.outcome = {LossStatus::bad_label, i};
        return false;
      }
      L = static_cast<double>(M[r]) + std::log(st.Z[r]) - static_cast<double>(S[r * K + y]);
      if (!std::isfinite(L)) {
        st.outcome = {LossStatus::non_finite, i};
        return false;
      }
      st.inv[r] = 1.0 / st.Z[r];
      st.ey[r] = static_cast<double>(E[r * K + y]);
      w = 1.0;
    }
    if (pb.row_losses) pb.row_losses[i] = static_cast<T>(L);
    *loss_sum += L;
    *weight_sum += w;
  }
  return true;
}

// Chunks of rows (chunks_for for the fused pass, for_each_block's for scores and predict), handed
// out in order to whichever part asks.
struct ChunkQueue {
  size_t N = 0, B = 1, chunks = 1;
  std::atomic<size_t> next{0};

  size_t claim() { return next.fetch_add(1, std::memory_order_relaxed); }
  size_t begin(size_t c) const { return chunk_begin(N, B, c, chunks); }

  // For one part: chunk(c, &claimed) for every chunk it claims. A chunk's last block may claim the
  // part's next chunk itself (claimed, see next_block); otherwise the next is claimed here.
  template <typename Chunk>
  void run(const Chunk& chunk) {
    for (size_t c = claim(); c < chunks;) {
      size_t claimed = SIZE_MAX;
      chunk(c, &claimed);
      c = claimed != SIZE_MAX ? claimed : claim();
    }
  }

  // The rows the part runs after a block that ends at row r of a chunk ending at r_end, for the
  // kernels to fetch ahead: the chunk's next block, or after its last block the first block of the
  // part's next chunk, claimed now (*claimed; from `chunks` on, none is left). Returns the first
  // such row; *rows is how many (0: none).
  size_t next_block(size_t r, size_t r_end, size_t* claimed, size_t* rows) {
    *rows = std::min(B, r_end - r);
    if (*rows != 0) return r;
    *claimed = claim();
    if (*claimed >= chunks) return r;
    const size_t at = begin(*claimed);
    *rows = std::min(B, begin(*claimed + 1) - at);
    return at;
  }
};

// Rows [r_begin, r_end) into st.sums. The last block claims the part's next chunk (*claimed; see
// ChunkQueue::next_block) so that its update can fetch that chunk's first block, as every other
// block's update fetches the next one.
template <typename T>
void loss_grad_part(const LinearKernels<T>& kern, const LossProblem<T>& pb, WeightsView<T> wv,
                    GradLayout layout, size_t r_begin, size_t r_end, size_t B, PartState<T>& st,
                    ChunkQueue& queue, size_t* claimed) {
  const size_t D = pb.D, K = pb.K;
  double* sums = st.sums;
  double* dW = sums + 2;
  double* db = dW + D * K;
  T* S = st.S;
  T* G = st.G;
  T* M = st.M;
  T* acc = st.acc;
  const size_t ld = wv.ldt;  // the accumulator's rows are as far apart as Wt's (kd_stride)
  const size_t flush_every = flush_rows<T>();
  size_t since_flush = 0;
  double loss_sum = 0, weight_sum = 0;
  // Plain labels, the common case, take the block-wide path below (one_hot_rows).
  const bool one_hot = !pb.targets && pb.label_smoothing == 0 && !pb.class_weights && !pb.sample_weights;

  for (size_t r0 = r_begin; r0 < r_end; r0 += B) {
    const size_t rows = std::min(B, r_end - r0);
    const T* Xb = pb.X + r0 * D;
    kern.scores(Xb, rows, wv, pb.b, S, nullptr, 0);  // the gradient update asks for the next rows
    // Row maxima (and the finiteness of every score); G holds s − max, then exp of it.
    const size_t bad = kern.row_max_shift(S, rows, K, M, G);
    if (bad < rows) {
      st.outcome = {LossStatus::non_finite, r0 + bad};
      return;
    }
    kern.exp_inplace(G, rows * K);
    kern.row_sums(G, rows, K, st.Z);
    if (one_hot) {
      if (!one_hot_rows(pb, r0, rows, S, M, G, st, &loss_sum, &weight_sum)) return;
      kern.scale_rows(G, rows, K, st.inv);
      for (size_t r = 0; r < rows; ++r)
        if (st.inv[r] != 0) G[r * K + pb.labels[r0 + r]] = static_cast<T>(st.ey[r] * st.inv[r] - 1.0);
    } else {
      for (size_t r = 0; r < rows; ++r) {
        const size_t i = r0 + r;
        T* g = G + r * K;
        double L = 0, w = 0;
        if (!row_loss(pb, i, S + r * K, M[r], g, st.Z[r], g, st.t, &L, &w, &st.outcome)) return;
        if (pb.row_losses) pb.row_losses[i] = static_cast<T>(L);
        loss_sum += L;
        weight_sum += w;
      }
    }
    kern.add_columns(G, rows, K, db);
    // The part's next block, fetched into L2 while this update computes.
    size_t next_rows = 0;
    const size_t next = queue.next_block(r0 + rows, r_end, claimed, &next_rows);
    kern.grad_update(Xb, rows, D, G, K, acc, ld, layout, pb.X + next * D, next_rows);
    since_flush += rows;
    if (since_flush >= flush_every) {
      flush<true>(kern, acc, layout, D, K, ld, dW);
      since_flush = 0;
    }
  }
  if (since_flush) flush<true>(kern, acc, layout, D, K, ld, dW);  // zero again for the part's next chunk
  sums[0] = loss_sum;
  sums[1] = weight_sum;
}

}  // namespace

size_t parts_for(size_t N, size_t D, size_t K, size_t threads) {
  if (threads <= 1 || N <= 1) return 1;
  const double work = static_cast<double>(N) * static_cast<double>(D) * static_cast<double>(K);
  const size_t by_work = static_cast<size_t>(std::max(1.0, work / double(kMinWorkPerPart)));
  return std::max<size_t>(1, std::min({threads, N, by_work, ThreadPool::kMaxThreads}));
}

size_t block_rows(size_t D, size_t K, size_t elem_size) {
  const size_t per_row = (D + 3 * K) * elem_size;
  size_t b = kBlockBytes / std::max<size_t>(per_row, 1);
  // Wide K (DK accumulator, D×K, re-read and re-written once per block): at least 32 (f32) / 64 (f64)
  // rows, so that traffic stays small next to the block's rows×D×K multiply-adds.
  b = std::max<size_t>(K >= 32 ? 8 * elem_size : 4, std::min<size_t>(256, b));
  // Whole register blocks of rows: 4 for the dot-form score kernels (small K), 6 for the GEMM form
  // (wide K). A remainder tile in every block ran at a third to a half of the speed (cifar: 26 rows
  // a block, 6% of the pass in 2-row tiles; wideK: 32 rows, 2 of them in a 2-row tile).
  return K >= 32 ? (b + 11) / 12 * 12 : b / 4 * 4;
}

// Chunks of the fused pass's rows for `parts` threads: each chunk keeps its own float64 sums,
// the threads take chunks in turn as they finish the last (the call's end waits for one chunk at
// most), and the sums are added in chunk order afterwards, so the result depends on the shape and
// the part count only, never on which thread took which chunk. A part per thread, as this pass
// had, ended as late as its slowest core: on this project's shared 2-core Zen 4 host one part of
// mnist float32 took 13.4–15.1 ms where the other took 10.5–11.9, call after call (a timing probe,
// not committed); the call lasted the longer one. Bounded by: kChunksPerPart per part (the later a
// chunk, the shorter the wait at the end); and kSumsWork multiply-adds per element of a chunk's
// sums (loss_sums_size), since each chunk zeroes its sums, flushes into them cold and adds them
// into the total at the end: cifar's 30,732 sums in 18 chunks took 1.05× the time of two parts,
// so cifar keeps one chunk per part; mnist (7,852 sums) gets 14. And kChunkSumsBytes of sums in
// all, beyond the part count's (one chunk per part, as before chunks), so that memory stays
// bounded for large N·D·K with a wide D×K.
constexpr size_t kChunksPerPart = 16;
constexpr size_t kSumsWork = 4096;
constexpr size_t kChunkSumsBytes = size_t(16) << 20;

size_t chunks_for(size_t N, size_t D, size_t K, size_t B, size_t parts) {
  if (parts <= 1) return 1;
  const double work = static_cast<double>(N) * static_cast<double>(D) * static_cast<double>(K);
  const double per_chunk = double(kSumsWork) * static_cast<double>(loss_sums_size(D, K));
  const size_t by_work = static_cast<size_t>(std::min(1e9, work / per_chunk));
  const size_t by_memory = kChunkSumsBytes / (sizeof(double) * loss_sums_size(D, K));
  const size_t by_blocks = (N + B - 1) / B;
  return std::max(parts, std::min({parts * kChunksPerPart, by_work, by_memory, by_blocks}));
}

// Whole blocks of B rows (only the last chunk's last block may be short): a short block in every
// chunk ran its register tiles on a few rows, at a fraction of their speed (cifar, 24-row blocks).
// With fewer blocks than chunks (few rows, wide D×K), the rows evenly, so that every part has some.
size_t chunk_begin(size_t N, size_t B, size_t c, size_t chunks) {
  const size_t blocks = (N + B - 1) / B;
  if (blocks < chunks) return part_begin(N, c, chunks);
  return std::min(N, B * part_begin(blocks, c, chunks));
}

template <typename T>
LossOutcome loss_grad(const LinearKernels<T>& kern, const LossProblem<T>& pb, size_t threads,
                      double* sums) {
  const size_t N = pb.N, D = pb.D, K = pb.K;
  const size_t parts = parts_for(N, D, K, threads);
  const size_t B = block_rows(D, K, sizeof(T));
  const size_t chunks = chunks_for(N, D, K, B, parts);
  const GradLayout layout = kern.grad_layout(D, K);
  const size_t n = loss_sums_size(D, K);
  const size_t n_stride = (n + 7) / 8 * 8;  // each chunk's sums on lines of their own
  // Every array of the call, the parts' states and the chunks' sums, in one allocation.
  Scratch scratch;
  // Wt and each part's accumulator: K rows ld apart (layout DK uses the first D×K elements).
  const size_t ld = kd_stride<T>(D);
  const size_t wt_at = scratch.reserve<T>(K * ld + kWtSlack<T>);
  const size_t ldw = weight_stride(kern, K);
  const size_t w_at = scratch.reserve<T>(ldw == K ? 0 : D * ldw + kWtSlack<T>);
  const size_t states_at = scratch.reserve<PartState<T>>(parts);
  const size_t sums_at = scratch.reserve<double>(chunks * n_stride);
  const size_t outcomes_at = scratch.reserve<LossOutcome>(chunks);
  struct Offsets {
    size_t S, G, M, acc, t, Z, inv, ey;
  };
  auto reserve_part = [&] {
    return Offsets{scratch.reserve<T>(B * K),      scratch.reserve<T>(B * K),
                   scratch.reserve<T>(B),          scratch.reserve<T>(K * ld),
                   scratch.reserve<double>(K),     scratch.reserve<double>(B),
                   scratch.reserve<double>(B),     scratch.reserve<double>(B)};
  };
  const Offsets first = reserve_part();
  const size_t part_bytes = parts > 1 ? reserve_part().S - first.S : 0;
  for (size_t p = 2; p < parts; ++p) reserve_part();
  if (!scratch.allocate()) return {LossStatus::no_memory, 0};
  T* Wt = packed_at(kern, scratch.at<T>(wt_at), pb.X, D);
  transpose(pb.W, D, K, Wt, ld);
  const WeightsView<T> wv{weights_at(pb.W, D, K, ldw, scratch.at<T>(w_at)), Wt, D, K, ldw, ld};
  PartState<T>* states = scratch.at<PartState<T>>(states_at);
  double* chunk_sums = scratch.at<double>(sums_at);
  LossOutcome* outcomes = scratch.at<LossOutcome>(outcomes_at);
  for (size_t p = 0; p < parts; ++p) {
    const size_t shift = p * part_bytes;
    PartState<T>& st = *new (&states[p]) PartState<T>();
    st.S = scratch.at<T>(first.S + shift);
    st.G = scratch.at<T>(first.G + shift);
    st.M = scratch.at<T>(first.M + shift);
    st.acc = scratch.at<T>(first.acc + shift);
    st.t = scratch.at<double>(first.t + shift);
    st.Z = scratch.at<double>(first.Z + shift);
    st.inv = scratch.at<double>(first.inv + shift);
    st.ey = scratch.at<double>(first.ey + shift);
    std::memset(st.acc, 0, sizeof(T) * K * ld);
  }
  ChunkQueue queue;
  queue.N = N;
  queue.B = B;
  queue.chunks = chunks;
  // The first chunk known to have failed: later chunks cannot change the outcome and are skipped.
  std::atomic<size_t> first_failed{SIZE_MAX};
  ThreadPool::instance().parallel_for(parts, [&](size_t p) {
    PartState<T>& st = states[p];
    // A failed chunk returns before its last block claims (and leaves the part's accumulator
    // dirty: the call then fails, with the first failing chunk's row, and no sums are used).
    queue.run([&](size_t c, size_t* claimed) {
      st.outcome = {};
      if (c < first_failed.load(std::memory_order_relaxed)) {
        st.sums = chunk_sums + c * n_stride;
        std::memset(st.sums, 0, sizeof(double) * n);
        loss_grad_part(kern, pb, wv, layout, queue.begin(c), queue.begin(c + 1), B, st, queue, claimed);
      }
      new (&outcomes[c]) LossOutcome(st.outcome);
      if (st.outcome.status != LossStatus::ok) {
        size_t seen = first_failed.load(std::memory_order_relaxed);
        while (c < seen && !first_failed.compare_exchange_weak(seen, c, std::memory_order_relaxed)) {
        }
      }
    });
  });
  // The first failing row of the batch: chunks cover increasing row ranges.
  for (size_t c = 0; c < chunks; ++c)
    if (outcomes[c].status != LossStatus::ok) return outcomes[c];
  // Fixed summation order (chunk 0, 1, ...) keeps results bitwise reproducible per thread count.
  // Layout KD's chunks hold their gradient sums K×D (see flush): transposed into dW's D×K here.
  double* total = chunk_sums;
  for (size_t c = 1; c < chunks; ++c)
    for (size_t j = 0; j < n; ++j) total[j] += chunk_sums[c * n_stride + j];
  if (layout == GradLayout::KD) {
    // dW's D×K straight from the K×D sums; the loss, the weight and db copied as they are.
    std::memcpy(sums, total, sizeof(double) * 2);
    transpose(total + 2, K, D, sums + 2, K);
    std::memcpy(sums + 2 + D * K, total + 2 + D * K, sizeof(double) * K);
  } else {
    std::memcpy(sums, total, sizeof(double) * n);
  }
  return {};
}

// The blocks of a per-row pass (scores, predict) on `parts` threads: the rows in chunks of whole
// blocks (up to kChunksPerPart per part) that the parts take as they finish, as the fused pass's
// chunks; each row's result is its own, so any order gives the same bits. block(part, r0, rows,
// next, next_rows) runs rows [r0, r0 + rows); the part runs next_rows rows from row `next` after it
// (the chunk's next block, or the first block of the chunk its last block claims), for the kernels
// to fetch ahead.
template <typename Block>
void for_each_block(size_t N, size_t B, size_t parts, const Block& block) {
  const size_t chunks = parts <= 1 ? 1 : std::max(parts, std::min(parts * kChunksPerPart, (N + B - 1) / B));
  ChunkQueue queue;
  queue.N = N;
  queue.B = B;
  queue.chunks = chunks;
  ThreadPool::instance().parallel_for(parts, [&](size_t p) {
    queue.run([&](size_t c, size_t* claimed) {
      const size_t r_end = queue.begin(c + 1);
      for (size_t r0 = queue.begin(c); r0 < r_end; r0 += B) {
        const size_t rows = std::min(B, r_end - r0);
        size_t next_rows = 0;
        const size_t next = queue.next_block(r0 + rows, r_end, claimed, &next_rows);
        block(p, r0, rows, next, next_rows);
      }
    });
  });
}

template <typename T>
bool scores(const LinearKernels<T>& kern, const T* X, size_t N, size_t D, const T* W, size_t K,
            const T* b, T* S, size_t threads) {
  CallWeights<T> weights;
  if (!weights.pack(kern, X, D, W, K)) return false;
  const WeightsView<T> wv = weights.view;
  const size_t parts = parts_for(N, D, K, threads);
  // In blocks of rows, as the fused pass: a kernel that sweeps W once per tile of classes then
  // reads each block of X from cache, not from memory once per tile.
  const size_t B = block_rows(D, K, sizeof(T));
  advise_huge_pages(S, N * K * sizeof(T));
  for_each_block(N, B, parts, [&](size_t, size_t r0, size_t rows, size_t next, size_t next_rows) {
    kern.scores(X + r0 * D, rows, wv, b, S + r0 * K, X + next * D, next_rows);
  });
  return true;
}

// Chunks of rows: each row's maximum and s − max here, then exp, the float64 row sums and the
// scaling over the whole chunk with the ISA's kernels.
template <typename T>
void softmax_rows(const LinearKernels<T>& kern, const T* S, size_t rows, size_t K, T* P) {
  constexpr size_t kChunk = 64;
  double Z[kChunk], inv[kChunk];
  for (size_t r0 = 0; r0 < rows; r0 += kChunk) {
    const size_t n = std::min(kChunk, rows - r0);
    for (size_t r = 0; r < n; ++r) {
      const T* s = S + (r0 + r) * K;
      T* p = P + (r0 + r) * K;
      const T m = row_max(s, K);
      // A row holding NaN or +Inf has no defined softmax: its sum, hence every entry, comes out NaN,
      // as in numpy; −Inf entries get probability 0.
      for (size_t c = 0; c < K; ++c) p[c] = s[c] - m;
    }
    T* Pc = P + r0 * K;
    kern.exp_inplace(Pc, n * K);
    kern.row_sums(Pc, n, K, Z);
    for (size_t r = 0; r < n; ++r) inv[r] = 1.0 / Z[r];
    kern.scale_rows(Pc, n, K, inv);
  }
}

template <typename T>
bool softmax(const LinearKernels<T>& kern, const T* S, size_t N, size_t K, T* P, size_t threads) {
  const size_t parts = parts_for(N, 64, K, threads);
  advise_huge_pages(P, N * K * sizeof(T));
  ThreadPool::instance().parallel_for(parts, [&](size_t p) {
    const size_t r0 = part_begin(N, p, parts), r1 = part_begin(N, p + 1, parts);
    softmax_rows(kern, S + r0 * K, r1 - r0, K, P + r0 * K);
  });
  return true;
}

template <typename T>
bool predict(const LinearKernels<T>& kern, const T* X, size_t N, size_t D, const T* W, size_t K,
             const T* b, int32_t* out, size_t threads) {
  CallWeights<T> weights;
  if (!weights.pack(kern, X, D, W, K)) return false;
  const WeightsView<T> wv = weights.view;
  const size_t parts = parts_for(N, D, K, threads);
  const size_t B = block_rows(D, K, sizeof(T));
  std::vector<std::unique_ptr<T[]>> scratch(parts);
  for (auto& s : scratch) {
    s = try_alloc<T>(B * K);
    if (!s) return false;
  }
  for_each_block(N, B, parts, [&](size_t p, size_t r0, size_t rows, size_t next, size_t next_rows) {
    T* S = scratch[p].get();
    kern.scores(X + r0 * D, rows, wv, b, S, X + next * D, next_rows);
    for (size_t r = 0; r < rows; ++r) {
      const T* s = S + r * K;
      size_t best = 0;
      // Strict > keeps the lowest index on ties; a NaN compares false and never wins.
      for (size_t c = 1; c < K; ++c)
        if (s[c] > s[best] || (std::isnan(s[best]) && !std::isnan(s[c]))) best = c;
      out[r0 + r] = static_cast<int32_t>(best);
    }
  });
  return true;
}

template LossOutcome loss_grad<float>(const LinearKernels<float>&, const LossProblem<float>&,
                                      size_t, double*);
template LossOutcome loss_grad<double>(const LinearKernels<double>&, const LossProblem<double>&,
                                       size_t, double*);
template bool scores<float>(const LinearKernels<float>&, const float*, size_t, size_t,
                            const float*, size_t, const float*, float*, size_t);
template bool scores<double>(const LinearKernels<double>&, const double*, size_t, size_t,
                             const double*, size_t, const double*, double*, size_t);
template bool softmax<float>(const LinearKernels<float>&, const float*, size_t, size_t, float*,
                             size_t);
template bool softmax<double>(const LinearKernels<double>&, const double*, size_t, size_t,
                              double*, size_t);
template bool predict<float>(const LinearKernels<float>&, const float*, size_t, size_t,
                             const float*, size_t, const float*, int32_t*, size_t);
template bool predict<double>(const LinearKernels<double>&, const double*, size_t, size_t,
                              const double*, size_t, const double*, int32_t*, size_t);

}  // namespace softmax_simd
