#pragma once

#include <cstddef>

namespace softmax_simd {

// Asks the kernel to back the fresh (not yet touched) output buffer [p, p + bytes) with huge pages
// where it can: a 64 MiB Q written for the first time otherwise takes 16384 page faults, each
// zeroing 4 KiB (measured: ~35 ms of a ~190 ms labeledGram call at N = 4096 in float32, 1 thread).
// Only the 2 MiB-aligned interior is advised; a hint, never an error, and a no-op off Linux or for
// buffers under a few huge pages. The contents are unchanged.
void advise_huge_pages(void* p, size_t bytes) noexcept;

}  // namespace softmax_simd
