#include "memory_hints.hpp"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace softmax_simd {

namespace {
constexpr uintptr_t kHuge = uintptr_t(2) << 20;
}  // namespace

size_t huge_page_offset(const void* p) noexcept {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  return static_cast<size_t>(((at + kHuge - 1) & ~(kHuge - 1)) - at);
}

bool advise_huge_pages(void* p, size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < 4 * kHuge) return false;  // too small for the fault count to matter
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) + huge_page_offset(p);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  return end > begin && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0;
#else
  (void)p;
  (void)bytes;
  return false;
#endif
}

}  // namespace softmax_simd
