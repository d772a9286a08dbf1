// What the libFuzzer targets (test/fuzz/fuzz_*.cpp) share: reading the fuzz input, and arrays of
// exactly their size so that AddressSanitizer catches any access past an end.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace softmax_simd_fuzz {

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  uint8_t byte() { return at < size ? data[at++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(byte() | (byte() << 8)); }
};

// A value from the input: moderate numbers in [-8, 8) (with float32 denormals, zeros of both signs
// and ties), and in adversarial inputs also NaN, infinities and magnitudes whose products overflow
// (those clear *moderate: results are then only required not to crash).
inline double value(Reader& r, bool adversarial, bool* moderate) {
  const uint8_t kind = r.byte();
  const double v = (static_cast<int>(r.u16()) - 32768) / 4096.0;
  switch (kind % 16) {
    case 0: if (!adversarial) return 1.0; *moderate = false; return NAN;
    case 1: if (!adversarial) return 0.0; *moderate = false; return INFINITY;
    case 2: if (!adversarial) return -1.0; *moderate = false; return -INFINITY;
    case 3: if (!adversarial) return v; *moderate = false; return v * 1e36;
    case 4: return v * 1e-40;
    case 5: return -0.0;
    default: return v;
  }
}

template <typename T>
std::unique_ptr<T[]> exact(size_t n) {
  return std::unique_ptr<T[]>(new T[n]);
}

}  // namespace softmax_simd_fuzz
