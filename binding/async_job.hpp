// Async calls without libuv's thread pool: a job runs on the addon's own job thread, which fans the
// work out to the native ThreadPool and then hands the job back to its JavaScript thread through a
// thread-safe function that resolves the job's Promise. One job runs at a time, in submission order,
// so any number of calls in flight share the cores instead of oversubscribing them, and libuv's four
// threads stay free for the application's file and DNS work.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "views.hpp"

namespace softmax_simd {

struct FunctionJob {
  explicit FunctionJob(Napi::Env) {}
  // Made by submit() only: a Deferred that is never settled would leak its persistent handle, so
  // a job built for a sync call, or abandoned when reading its arguments throws, must not have one.
  std::optional<Napi::Promise::Deferred> deferred;
  Keepalive keep;                                  // inputs stay alive until the Promise settles
  std::function<void()> execute;                   // off the JS thread: no Node-API calls
  std::function<Napi::Value(Napi::Env)> complete;  // on the JS thread: the resolution value
  std::string error;                               // set when execute threw: the Promise rejects
  void* owner = nullptr;                           // the per-environment state it returns to
};

// Sets up the per-environment (main thread or worker_threads isolate) completion channel.
void init_async(Napi::Env env);

// Queues the job and returns its Promise.
Napi::Value submit(Napi::Env env, std::unique_ptr<FunctionJob> job);

}  // namespace softmax_simd
