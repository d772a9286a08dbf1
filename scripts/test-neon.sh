#!/usr/bin/env bash
# Build the native core and its C++ tests (test/native/*.cpp) for aarch64 with the GNU cross
# compiler, and run every test program under qemu-aarch64: the NEON kernels against the scalar ones.
# Installs g++-aarch64-linux-gnu and qemu-user with apt-get when they are missing (CI runs this on a
# clean machine as root). Exits non-zero if the build or any test fails.
#
#   bash scripts/test-neon.sh
#
# Environment:
#   BUILD_DIR=dir             build directory (default build-native-aarch64)
#   NEON_TEST_SANITIZE=1      build with AddressSanitizer + UBSan (slower; catches over-reads)
#   NEON_TEST_JOBS=n          test programs run at once (default: the number of CPUs)
#   The exhaustive parts of the tests are shrunk for emulation unless set explicitly:
#   KERNEL_TEST_F32_EXP_STRIDE (256), KERNEL_TEST_F64_EXP_SAMPLES (100000),
#   NEON_EXP_TEST_STRIDE (61), NEON_EXP_TEST_F64_SAMPLES (300000).
set -euo pipefail

cd "$(dirname "$0")/.."
start=$(date +%s)

triple=aarch64-linux-gnu
sysroot=/usr/$triple

missing=()
command -v "$triple-g++" >/dev/null 2>&1 || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
if ((${#missing[@]})); then
  echo "test-neon: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

sanitize=OFF
build_dir=${BUILD_DIR:-build-native-aarch64}
if [ "${NEON_TEST_SANITIZE:-0}" = "1" ]; then
  sanitize=ON
  build_dir=${BUILD_DIR:-build-native-aarch64-asan}
  # LeakSanitizer cannot run under qemu-user.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
fi
jobs=${NEON_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}

cmake --no-warn-unused-cli -S . -B "$build_dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake \
  -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_SIMD_NATIVE_TESTS=ON -DSOFTMAX_SIMD_SANITIZE="$sanitize" >/dev/null
cmake --build "$build_dir" --parallel "$jobs"

export KERNEL_TEST_F32_EXP_STRIDE=${KERNEL_TEST_F32_EXP_STRIDE:-256}
export KERNEL_TEST_F64_EXP_SAMPLES=${KERNEL_TEST_F64_EXP_SAMPLES:-100000}
export KERNEL_TEST_SMAPS=0  # qemu-user's /proc/self/smaps describes the guest without the kernel's VmFlags
export NEON_EXP_TEST_STRIDE=${NEON_EXP_TEST_STRIDE:-61}
export NEON_EXP_TEST_F64_SAMPLES=${NEON_EXP_TEST_F64_SAMPLES:-300000}

# Every program built from test/native/*.cpp is a test, except the performance probes.
tests=()
for src in test/native/*.cpp; do
  name=$(basename "$src" .cpp)
  case "$name" in
    perf_* | *_probe | bench*) continue ;;
  esac
  if [ ! -x "$build_dir/$name" ]; then
    echo "test-neon: $build_dir/$name was not built" >&2
    exit 1
  fi
  tests+=("$name")
done
if [[ " ${tests[*]} " != *" kernel_test "* ]]; then
  echo "test-neon: test/native/kernel_test.cpp is missing" >&2
  exit 1
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
running=0
for name in "${tests[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  (
    t0=$(date +%s)
    set +e
    qemu-aarch64 -L "$sysroot" "$build_dir/$name" >"$logs/$name.out" 2>&1
    echo $? >"$logs/$name.rc"
    echo $(($(date +%s) - t0)) >"$logs/$name.sec"
  ) &
  running=$((running + 1))
done
wait

failed=0
for name in "${tests[@]}"; do
  rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 1)
  echo "== $name (qemu-aarch64, $(cat "$logs/$name.sec" 2>/dev/null || echo '?') s): exit $rc"
  cat "$logs/$name.out"
  if [ "$rc" != "0" ]; then failed=1; fi
done

echo "test-neon: ${#tests[@]} programs, $( ((failed)) && echo 'FAILED' || echo 'all passed') in $(($(date +%s) - start)) s"
exit "$failed"
