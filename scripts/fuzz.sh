#!/usr/bin/env bash
# Fuzzes the native entry points with libFuzzer under AddressSanitizer + UBSan for a bounded time
# (default 60 s per target; FUZZ_SECONDS overrides). Needs clang (installed from apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
cxx="$(command -v clang++-14 || command -v clang++ || true)"
if [[ -z "$cxx" ]] || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
  cxx="$(command -v clang++-14)"
fi
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSOFTMAX_SIMD_SANITIZE=ON -DSOFTMAX_SIMD_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/corpus
status=0
for target in build-fuzz/fuzz_*; do
  [[ -x "$target" ]] || continue
  name="$(basename "$target")"
  mkdir -p "build-fuzz/corpus/$name"
  echo "fuzzing $name for ${seconds}s"
  if "$target" -max_total_time="$seconds" -max_len=8192 -artifact_prefix="build-fuzz/$name-" -print_final_stats=1 "build-fuzz/corpus/$name" 2>"build-fuzz/$name.log"; then
    grep -E "stat::number_of_executed_units|Done" "build-fuzz/$name.log" | tail -2
    echo "$name: 1 passed, 0 failed"
  else
    tail -40 "build-fuzz/$name.log"
    echo "$name: 0 passed, 1 failed"
    status=1
  fi
done
exit $status
