// Which kernel table runs: chosen once at load from the CPU's features (best first), or forced by
// SOFTMAX_SIMD_ISA=scalar|avx2|avx512|neon. Forcing an ISA the CPU or the build lacks is an error, never SIGILL.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.hpp"

namespace softmax_simd {

struct KernelSet {
  Isa isa;
  const char* name;
  const LinearKernels<float>* linear_f32;
  const LinearKernels<double>* linear_f64;
};

// The ISAs this build holds, best first (always ends with scalar).
std::vector<Isa> compiled_isas();
// Whether this CPU (and OS) can run `isa`.
bool cpu_supports(Isa isa);
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);

// The kernel set of an ISA; only valid when it is compiled in.
KernelSet kernel_set(Isa isa);

// The active set. Select with select_isa ("" or "auto" = best supported); on failure returns false,
// leaves the active set unchanged and explains in *error.
const KernelSet& active_kernels();
bool select_isa(const std::string& name, std::string* error);

}  // namespace softmax_simd
