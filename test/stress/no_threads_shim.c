// LD_PRELOAD shim for test/stress.test.ts: once the file named by SOFTMAX_SIMD_TEST_NO_THREADS
// exists, pthread_create fails with EAGAIN, as it does under a container's pids limit.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  static int (*real)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  if (!real) real = (int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*))dlsym(RTLD_NEXT, "pthread_create");
  const char* flag = getenv("SOFTMAX_SIMD_TEST_NO_THREADS");
  if (flag && access(flag, F_OK) == 0) return EAGAIN;
  return real(thread, attr, start, arg);
}
