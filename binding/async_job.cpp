#include "async_job.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace softmax_simd {
namespace {

struct EnvState;
void call_js(Napi::Env env, Napi::Function, EnvState* state, FunctionJob* job);
using Channel = Napi::TypedThreadSafeFunction<EnvState, FunctionJob, call_js>;

struct EnvState {
  Channel channel;
  size_t in_flight = 0;
  ~EnvState() { channel.Release(); }
};

// One job thread for the process, started on first use and never joined (jobs of every
// environment go through it, so it must outlive any one of them).
class JobThread {
 public:
  static JobThread& instance() {
    static JobThread* t = new JobThread();
    return *t;
  }
  void push(FunctionJob* job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(job);
    }
    ready_.notify_one();
  }

 private:
  JobThread() { std::thread([this] { run(); }).detach(); }
  void run() {
    for (;;) {
      FunctionJob* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      job->execute();
      auto* state = static_cast<EnvState*>(job->owner);
      // If the environment is shutting down the call is refused; the job (and the references it
      // holds, which may only be released on that environment's thread) is then deliberately leaked.
      state->channel.BlockingCall(job);
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<FunctionJob*> queue_;
};

void call_js(Napi::Env env, Napi::Function, EnvState* state, FunctionJob* job) {
  if (env == nullptr || job == nullptr) return;  // tearing down: see JobThread::run
  std::unique_ptr<FunctionJob> owned(job);
  try {
    job->deferred->Resolve(job->complete(env));
  } catch (const Napi::Error& e) {
    job->deferred->Reject(e.Value());
  }
  if (--state->in_flight == 0) state->channel.Unref(env);
}

}  // namespace

void init_async(Napi::Env env) {
  if (env.GetInstanceData<EnvState>() != nullptr) return;
  auto* state = new EnvState();
  state->channel = Channel::New(env, "softmax-simd", 0, 1, state);
  state->channel.Unref(env);  // an idle addon must not keep the event loop alive
  env.SetInstanceData<EnvState>(state);
}

Napi::Value submit(Napi::Env env, std::unique_ptr<FunctionJob> job) {
  auto* state = env.GetInstanceData<EnvState>();
  job->deferred.emplace(Napi::Promise::Deferred::New(env));
  Napi::Promise promise = job->deferred->Promise();
  job->owner = state;
  if (state->in_flight++ == 0) state->channel.Ref(env);  // pending work keeps the loop alive
  JobThread::instance().push(job.release());
  return promise;
}

}  // namespace softmax_simd
