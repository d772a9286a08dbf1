# Cross-compile for 64-bit Arm Linux with the GNU cross toolchain (Debian/Ubuntu packages
# g++-aarch64-linux-gnu and, to run the results, qemu-user):
#   cmake -S . -B build-native-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
# Override the compiler prefix with -DAARCH64_TRIPLE=... and the target sysroot with
# -DAARCH64_SYSROOT=... when they live elsewhere.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT DEFINED AARCH64_TRIPLE)
  set(AARCH64_TRIPLE aarch64-linux-gnu)
endif()
if(NOT DEFINED AARCH64_SYSROOT)
  set(AARCH64_SYSROOT /usr/${AARCH64_TRIPLE})
endif()
# Try-compiles (find_package(Threads), compiler checks) see the same settings.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AARCH64_TRIPLE AARCH64_SYSROOT)

set(CMAKE_C_COMPILER ${AARCH64_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${AARCH64_TRIPLE}-g++)

set(CMAKE_FIND_ROOT_PATH ${AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Lets ctest and add_custom_command run the target's programs on an x86-64 host.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${AARCH64_SYSROOT})
