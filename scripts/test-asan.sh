#!/usr/bin/env bash
# The whole vitest suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of the addon.
#
# Node itself is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD) ahead of it. At exit
# LeakSanitizer would report what Node and V8 never free; those leaks are silenced by a suppression on
# the node executable's module alone, matched only within the top frames of each allocation stack
# (malloc_context_size), so a leak allocated by the addon's own code is still reported even when
# JavaScript called it. Any sanitizer finding aborts the process and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

npx cmake-js compile --out build-asan --CDSOFTMAX_SIMD_SANITIZE=ON >/dev/null
node scripts/build-ts.cjs

node_bin="$(readlink -f "$(command -v node)")"
supp="$(mktemp)"
trap 'rm -f "$supp"' EXIT
printf 'leak:%s\n' "$node_bin" > "$supp"

export SOFTMAX_SIMD_BINARY="$PWD/build-asan/Release/softmax_simd.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
export ASAN_OPTIONS="detect_leaks=1:malloc_context_size=6:abort_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The sanitizer build is several times slower: leave timing-sensitive suites to the normal run.
export SOFTMAX_SIMD_SANITIZED=1
npx vitest run "$@"
