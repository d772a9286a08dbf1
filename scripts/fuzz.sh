#!/usr/bin/env bash
# Fuzzes the native entry points with libFuzzer under AddressSanitizer + UBSan for a bounded time
# (default 60 s per target; FUZZ_SECONDS overrides). Needs clang (installed from apt when missing).
# The targets fuzz at the same time (one process each).
#
#   bash scripts/fuzz.sh            build, then fuzz
#   bash scripts/fuzz.sh build      build only (CI builds while other stages run)
#   bash scripts/fuzz.sh run        fuzz what was built
set -euo pipefail
cd "$(dirname "$0")/.."
step="${1:-all}"
case "$step" in all | build | run) ;; *) echo "fuzz.sh: unknown step '$step' (all, build or run)" >&2; exit 2 ;; esac
seconds="${FUZZ_SECONDS:-60}"

if [[ "$step" != run ]]; then
  cxx="$(command -v clang++-14 || command -v clang++ || true)"
  if [[ -z "$cxx" ]] || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
    cxx="$(command -v clang++-14)"
  fi
  # Line tables only, not full debug info: reports still name file and line, and the build (mostly
  # one kernel file, under ASan) is about a sixth shorter (3 min 13 s against 3 min 53 s on 2
  # cores). CMakeLists.txt's -O2 applies as to every build.
  cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-gline-tables-only -DNDEBUG" \
    -DSOFTMAX_SIMD_SANITIZE=ON -DSOFTMAX_SIMD_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j"$(nproc)" >/dev/null
fi
[[ "$step" == build ]] && exit 0

targets=()
for target in build-fuzz/fuzz_*; do
  if [[ -f "$target" && -x "$target" ]]; then targets+=("$target"); fi
done
if ((${#targets[@]} == 0)); then
  echo "fuzz.sh: no fuzz targets in build-fuzz (run: bash scripts/fuzz.sh build)" >&2
  exit 1
fi
mkdir -p build-fuzz/corpus
pids=()
for target in "${targets[@]}"; do
  name="$(basename "$target")"
  mkdir -p "build-fuzz/corpus/$name"
  echo "fuzzing $name for ${seconds}s"
  "$target" -max_total_time="$seconds" -max_len=8192 -artifact_prefix="build-fuzz/$name-" -print_final_stats=1 \
    "build-fuzz/corpus/$name" 2>"build-fuzz/$name.log" &
  pids+=($!)
done
status=0
for i in "${!targets[@]}"; do
  name="$(basename "${targets[$i]}")"
  if wait "${pids[$i]}"; then
    grep -E "stat::number_of_executed_units|Done" "build-fuzz/$name.log" | tail -2 || true
    echo "$name: 1 passed, 0 failed"
  else
    tail -40 "build-fuzz/$name.log"
    echo "$name: 0 passed, 1 failed"
    status=1
  fi
done
exit $status
