#include "dispatch.hpp"

#include <atomic>

namespace softmax_simd {

namespace {

std::atomic<int> g_active{static_cast<int>(Isa::scalar)};

bool compiled(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
#if defined(SOFTMAX_SIMD_HAVE_AVX2)
      return true;
#else
      return false;
#endif
    case Isa::neon:
#if defined(SOFTMAX_SIMD_HAVE_NEON)
      return true;
#else
      return false;
#endif
    case Isa::avx512:
#if defined(SOFTMAX_SIMD_HAVE_AVX512)
      return true;
#else
      return false;
#endif
  }
  return false;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::neon:
      return "neon";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  }
  return false;
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::neon, Isa::scalar})
    if (compiled(isa)) out.push_back(isa);
  return out;
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
      // __builtin_cpu_supports also checks that the OS saves the YMM state (XGETBV).
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case Isa::avx512:
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
      // Also checks that the OS saves the opmask and ZMM state (XGETBV).
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case Isa::neon:
#if defined(__aarch64__)
      return true;  // Advanced SIMD is mandatory in AArch64.
#else
      return false;
#endif
  }
  return false;
}

KernelSet kernel_set(Isa isa) {
  switch (isa) {
#if defined(SOFTMAX_SIMD_HAVE_AVX2)
    case Isa::avx2:
      return {isa, "avx2", &linear_f32_avx2, &linear_f64_avx2};
#endif
#if defined(SOFTMAX_SIMD_HAVE_AVX512)
    case Isa::avx512:
      return {isa, "avx512", &linear_f32_avx512, &linear_f64_avx512};
#endif
#if defined(SOFTMAX_SIMD_HAVE_NEON)
    case Isa::neon:
      return {isa, "neon", &linear_f32_neon, &linear_f64_neon};
#endif
    default:
      return {Isa::scalar, "scalar", &linear_f32_scalar, &linear_f64_scalar};
  }
}

namespace {
KernelSet g_sets[4] = {kernel_set(Isa::scalar), kernel_set(Isa::avx2), kernel_set(Isa::neon),
                       kernel_set(Isa::avx512)};
}

const KernelSet& active_kernels() { return g_sets[g_active.load(std::memory_order_acquire)]; }

bool select_isa(const std::string& name, std::string* error) {
  if (name.empty() || name == "auto") {
    for (Isa isa : compiled_isas()) {
      if (cpu_supports(isa)) {
        g_active.store(static_cast<int>(isa), std::memory_order_release);
        return true;
      }
    }
    g_active.store(static_cast<int>(Isa::scalar), std::memory_order_release);
    return true;
  }
  Isa isa;
  if (!parse_isa(name, &isa)) {
    *error = "SOFTMAX_SIMD_ISA must be one of auto, scalar, avx2, avx512, neon but received '" + name + "'";
    return false;
  }
  if (!compiled(isa)) {
    *error = std::string("SOFTMAX_SIMD_ISA=") + name +
             " was requested but this build of softmax-simd holds no " + name + " kernels";
    return false;
  }
  if (!cpu_supports(isa)) {
    *error = std::string("SOFTMAX_SIMD_ISA=") + name + " was requested but this CPU cannot run " +
             name + " instructions";
    return false;
  }
  g_active.store(static_cast<int>(isa), std::memory_order_release);
  return true;
}

}  // namespace softmax_simd
