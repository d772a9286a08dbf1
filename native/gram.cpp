#include "gram.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "memory_hints.hpp"
#include "thread_pool.hpp"

namespace softmax_simd {

namespace {

// Below this many multiply-adds a part is not worth a thread wake-up (about 10 us of work).
constexpr size_t kMinWorkPerPart = size_t(1) << 18;

// Budget for one tile's working set per D-chunk: its rows of X and the float64 tile C, kept in
// this core's L2 (sysconf; 512 KiB when it does not say, clamped to [256 KiB, 2 MiB]); tiles of up
// to 192 rows. With the outer-product kernels each panel of Xj is packed once per tile and reused
// by every row group of Xi, so larger tiles pay the packing less often: on Zen 5 (1 MiB L2, 192-row
// tiles) AVX-512, bench/ab.cjs against 120-row tiles (a 512 KiB budget): 4096 × 784 float32 0.93×
// on two threads, 0.89× on one; AVX2 0.92×; 288 rows measured the same as 192. On Zen 3 (512 KiB
// L2) the budget keeps the 120-row tiles that were measured there. The tile size changes no bit of
// Q (see the tile contract in kernels/gram.hpp).
size_t tile_budget() {
  static const size_t bytes = [] {
    long l2 = -1;
#if (defined(__unix__) || defined(__APPLE__)) && defined(_SC_LEVEL2_CACHE_SIZE)
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    if (l2 <= 0) return size_t(512) << 10;
    return std::min(std::max(static_cast<size_t>(l2), size_t(256) << 10), size_t(2) << 20);
  }();
  return bytes;
}

struct Tile {
  size_t i0, ni, j0, nj;
  bool square;  // inside [row_start, row_end)²: also written mirrored
  bool diag;    // a diagonal tile of that square: only b >= a computed, then mirrored within
};

// X's rows as the tiles read them (ldx apart): the caller's array, or an aligned copy.
template <typename T>
void run_tile(const GramKernels<T>& kern, const T* X, size_t ldx, size_t N, size_t D, const T* y,
              size_t row_start, T* out, const Tile& t, size_t B, double* C) {
  constexpr size_t chunk = gram_chunk<T>();
  for (size_t d0 = 0; d0 < D; d0 += chunk) {
    const size_t len = std::min(chunk, D - d0);
    kern.tile(X + t.i0 * ldx + d0, t.ni, X + t.j0 * ldx + d0, t.nj, len, ldx, C, B, d0 > 0, t.diag);
  }
  T* q = out + (t.i0 - row_start) * N + t.j0;
  kern.scale(C, B, y + t.i0, t.ni, y + t.j0, t.nj, t.diag, q, N);
  if (!t.square) return;
  // The mirror, Q[j][i] = Q[i][j]: a copy of the entries just written, so bitwise the same.
  kern.mirror(q, N, t.ni, t.nj, t.diag, t.diag ? q : out + (t.j0 - row_start) * N + t.i0, N);
}

// A part's share of the tiles: those whose cumulative cost before them falls in
// [total·p/parts, total·(p+1)/parts). Deterministic, and parts of nearly equal work.
std::vector<size_t> split(const std::vector<Tile>& tiles, size_t parts) {
  std::vector<double> cost(tiles.size());
  double total = 0;
  for (size_t t = 0; t < tiles.size(); ++t) {
    const double c = double(tiles[t].ni) * double(tiles[t].nj) * (tiles[t].diag ? 0.5 : 1.0);
    cost[t] = total;
    total += c;
  }
  std::vector<size_t> first(parts + 1, tiles.size());
  first[0] = 0;
  size_t t = 0;
  for (size_t p = 1; p < parts; ++p) {
    const double edge = total * double(p) / double(parts);
    while (t < tiles.size() && cost[t] < edge) ++t;
    first[p] = t;
  }
  return first;
}

// A part's tiles [next, end): its owner takes them from the front, other parts from the back.
struct TileRange {
  static constexpr size_t kNone = SIZE_MAX;
  std::mutex mutex;
  size_t next = 0, end = 0;

  size_t take_front() {
    std::lock_guard<std::mutex> lock(mutex);
    return next < end ? next++ : kNone;
  }
  size_t take_back() {
    std::lock_guard<std::mutex> lock(mutex);
    return next < end ? --end : kNone;
  }
};

// The aligned copy of X (see labeled_gram): made when the rows it would serve are at least this
// many (its N·D copies are then at most 1/64 of the N·D·rows multiply-adds), and at most this big.
constexpr size_t kCopyMinRows = 64;
constexpr size_t kCopyMaxBytes = size_t(256) << 20;
constexpr size_t kLine = 64;

}  // namespace

const GramKernels<float>& gram_kernels_f32(Isa isa) {
  switch (isa) {
#if defined(SOFTMAX_SIMD_HAVE_AVX2)
    case Isa::avx2:
      return gram_f32_avx2;
#endif
#if defined(SOFTMAX_SIMD_HAVE_AVX512)
    case Isa::avx512:
      return gram_f32_avx512;
#endif
#if defined(SOFTMAX_SIMD_HAVE_NEON)
    case Isa::neon:
      return gram_f32_neon;
#endif
    default:
      return gram_f32_scalar;
  }
}

const GramKernels<double>& gram_kernels_f64(Isa isa) {
  switch (isa) {
#if defined(SOFTMAX_SIMD_HAVE_AVX2)
    case Isa::avx2:
      return gram_f64_avx2;
#endif
#if defined(SOFTMAX_SIMD_HAVE_AVX512)
    case Isa::avx512:
      return gram_f64_avx512;
#endif
#if defined(SOFTMAX_SIMD_HAVE_NEON)
    case Isa::neon:
      return gram_f64_neon;
#endif
    default:
      return gram_f64_scalar;
  }
}

size_t gram_block(size_t D, size_t elem_size) {
  const size_t chunk = std::min(D * elem_size, kGramChunkBytes);
  size_t B = 192;
  const size_t budget = tile_budget();
  while (B > 12 && B * chunk + 8 * B * B > budget) B -= 12;
  return B;
}

template <typename T>
bool labeled_gram(const GramKernels<T>& kern, const T* X, size_t N, size_t D, const T* y,
                  size_t row_start, size_t row_end, T* out, size_t threads) {
  if (row_start >= row_end || row_end > N || D == 0) return true;
  const size_t B = gram_block(D, sizeof(T));
  std::vector<Tile> tiles;
  try {
    for (size_t i0 = row_start; i0 < row_end; i0 += B) {
      const size_t ni = std::min(B, row_end - i0);
      for (size_t j0 = 0; j0 < row_start; j0 += B) tiles.push_back({i0, ni, j0, std::min(B, row_start - j0), false, false});
      for (size_t j0 = i0; j0 < row_end; j0 += B) tiles.push_back({i0, ni, j0, std::min(B, row_end - j0), true, j0 == i0});
      for (size_t j0 = row_end; j0 < N; j0 += B) tiles.push_back({i0, ni, j0, std::min(B, N - j0), false, false});
    }
  } catch (const std::bad_alloc&) {
    return false;
  }
  const size_t rows = row_end - row_start;
  const double work = double(rows) * double(N) * double(D);
  const size_t by_work = static_cast<size_t>(std::max(1.0, work / double(kMinWorkPerPart)));
  const size_t parts = std::max<size_t>(1, std::min({threads, tiles.size(), by_work, ThreadPool::kMaxThreads}));
  std::vector<std::unique_ptr<double[]>> scratch(parts);
  std::vector<size_t> first;
  try {
    first = split(tiles, parts);
  } catch (const std::bad_alloc&) {
    return false;
  }
  for (auto& s : scratch) {
    s.reset(new (std::nothrow) double[B * B]);
    if (!s) return false;
  }
  // A typed array's data rarely starts on a cache line (a large one is usually 16 bytes past one),
  // and then every 512-bit load of the tiles spans two lines: the 4096 × 784 float32 Gram took 5%
  // longer than from a line-aligned array (AVX-512, Zen 5). So X is first copied, in parallel, into
  // rows that each start on a line (row stride rounded up to whole lines). The tiles sum each row
  // from its first element whatever its address, so the copy changes no bit of Q.
  const T* rows_x = X;
  size_t ldx = D;
  const size_t per_line = kLine / sizeof(T);
  const size_t ld = (D + per_line - 1) / per_line * per_line;
  std::unique_ptr<unsigned char[]> copy;
  if ((reinterpret_cast<uintptr_t>(X) % kLine != 0 || ld != D) && rows >= kCopyMinRows &&
      N <= kCopyMaxBytes / sizeof(T) / ld) {
    copy.reset(new (std::nothrow) unsigned char[N * ld * sizeof(T) + kLine]);
    if (copy) {  // without it, the tiles read X as it is
      T* c = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(copy.get()) + kLine - 1) / kLine * kLine);
      ThreadPool::instance().parallel_for(parts, [&](size_t p) {
        for (size_t i = N * p / parts; i < N * (p + 1) / parts; ++i) std::memcpy(c + i * ld, X + i * D, D * sizeof(T));
      });
      rows_x = c;
      ldx = ld;
    }
  }
  advise_huge_pages(out, (row_end - row_start) * N * sizeof(T));
  // Each part runs its own share of the tiles from the front; a part that runs out takes the other
  // parts' last tiles, one at a time from the back, so a core slowed by another process does not
  // hold up the call. Each tile writes its own entries of Q from float64 sums that start afresh
  // in the part's scratch: the same bits whoever runs it. (Every part taking the next tile of one
  // shared queue instead cost 1.12× the time on a quiet host, 4096 × 784 float32 on two threads:
  // neighbouring tiles then ran on different cores.)
  std::unique_ptr<TileRange[]> ranges(new (std::nothrow) TileRange[parts]);
  if (!ranges) return false;
  for (size_t p = 0; p < parts; ++p) {
    ranges[p].next = first[p];
    ranges[p].end = first[p + 1];
  }
  ThreadPool::instance().parallel_for(parts, [&](size_t p) {
    for (size_t t; (t = ranges[p].take_front()) != TileRange::kNone;)
      run_tile(kern, rows_x, ldx, N, D, y, row_start, out, tiles[t], B, scratch[p].get());
    for (size_t q = (p + 1) % parts; q != p; q = (q + 1) % parts)
      for (size_t t; (t = ranges[q].take_back()) != TileRange::kNone;)
        run_tile(kern, rows_x, ldx, N, D, y, row_start, out, tiles[t], B, scratch[p].get());
  });
  return true;
}

template bool labeled_gram<float>(const GramKernels<float>&, const float*, size_t, size_t, const float*,
                                  size_t, size_t, float*, size_t);
template bool labeled_gram<double>(const GramKernels<double>&, const double*, size_t, size_t,
                                   const double*, size_t, size_t, double*, size_t);

}  // namespace softmax_simd
