#pragma once

#include <cstddef>

namespace softmax_simd {

// Asks the kernel to back the fresh (not yet touched) buffer [p, p + bytes) with huge pages where it
// can. For an output: a 64 MiB Q written for the first time otherwise takes 16384 page faults, each
// zeroing 4 KiB (measured: ~35 ms of a ~190 ms labeledGram call at N = 4096 in float32, 1 thread).
// For an input (allocMatrix): X read through 4 KiB pages takes a TLB miss and a page walk every
// 4 KiB, and the fused pass's prefetches of the next block wait on them; on 2 MiB pages
// lossAndGradients float32 mnist took 0.89× and cifar 0.86× the time (Node, Zen 4, one thread, 40
// alternating calls on the same values). Only the 2 MiB-aligned interior is advised; a hint, never
// an error, and a no-op off Linux or for buffers under a few huge pages. The contents are unchanged.
// True when the kernel took the advice.
bool advise_huge_pages(void* p, size_t bytes) noexcept;

// Bytes from p to the first 2 MiB boundary at or after it: where a buffer advised above starts its
// first huge page (allocMatrix in src/ puts a large X there, in a buffer long enough that its last
// partial span is whole too).
size_t huge_page_offset(const void* p) noexcept;

}  // namespace softmax_simd
