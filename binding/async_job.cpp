#include "async_job.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace softmax_simd {
namespace {

struct EnvState;
void call_js(Napi::Env env, Napi::Function, EnvState* state, FunctionJob* job);
using Channel = Napi::TypedThreadSafeFunction<EnvState, FunctionJob, call_js>;

struct EnvState {
  Channel channel;
  size_t in_flight = 0;  // JS thread only
  bool closing = false;  // guarded by the JobThread's mutex
  ~EnvState() { channel.Release(); }
};

// One job thread for the process, started on first use and never joined (jobs of every
// environment go through it, so it must outlive any one of them).
//
// An environment that is torn down (a worker terminated, or exiting) while its jobs are queued or
// running must not have its memory touched afterwards: close() removes its queued jobs and waits
// for the one running, so the typed arrays a job reads stay alive until it is done.
class JobThread {
 public:
  // Starts the thread on first use; throws (and is retried next time) if no thread can be had.
  static JobThread& instance() {
    static JobThread* t = new JobThread();
    started().store(t, std::memory_order_release);
    return *t;
  }
  // The thread if it was ever started, else null (then no job of any environment exists).
  static JobThread* existing() { return started().load(std::memory_order_acquire); }

  void push(FunctionJob* job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(job);
    }
    ready_.notify_one();
  }

  // On the environment's own thread, from its cleanup hook. Returns the jobs it will never
  // complete, for the caller to delete there.
  std::vector<FunctionJob*> close(EnvState* state) {
    std::vector<FunctionJob*> dropped;
    std::unique_lock<std::mutex> lock(mutex_);
    state->closing = true;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->owner == state) {
        dropped.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    idle_.wait(lock, [&] { return running_ != state; });
    for (auto it = finished_.begin(); it != finished_.end();) {
      if ((*it)->owner == state) {
        dropped.push_back(*it);
        it = finished_.erase(it);
      } else {
        ++it;
      }
    }
    return dropped;
  }

 private:
  JobThread() { std::thread([this] { run(); }).detach(); }
  static std::atomic<JobThread*>& started() {
    static std::atomic<JobThread*> t{nullptr};
    return t;
  }

  void run() {
    for (;;) {
      FunctionJob* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
        running_ = static_cast<EnvState*>(job->owner);
      }
      try {
        job->execute();
      } catch (const std::exception& e) {
        job->error = e.what();
      } catch (...) {
        job->error = "unknown native failure";
      }
      std::lock_guard<std::mutex> lock(mutex_);
      auto* state = static_cast<EnvState*>(job->owner);
      // Under the lock, so close() cannot mark the environment closing between the test and the
      // call. The call only queues the job for the environment's thread; it never waits for it.
      if (state->closing || state->channel.BlockingCall(job) != napi_ok) finished_.push_back(job);
      running_ = nullptr;
      idle_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable idle_;
  std::deque<FunctionJob*> queue_;
  std::vector<FunctionJob*> finished_;  // done, but their environment is closing
  EnvState* running_ = nullptr;
};

void call_js(Napi::Env env, Napi::Function, EnvState* state, FunctionJob* job) {
  // env is null when the channel is torn down with jobs still in it: they have finished running,
  // and their references die with the environment.
  if (env == nullptr || job == nullptr) return;
  std::unique_ptr<FunctionJob> owned(job);
  struct Settled {
    EnvState* state;
    Napi::Env env;
    ~Settled() {
      if (--state->in_flight == 0) state->channel.Unref(env);
    }
  } settled{state, env};
  try {
    if (!job->error.empty()) throw Napi::Error::New(env, "softmax-simd: " + job->error);
    job->deferred->Resolve(job->complete(env));
  } catch (const Napi::Error& e) {
    try {
      job->deferred->Reject(e.Value());
    } catch (...) {
      // the environment is going away: nothing is left to tell
    }
  } catch (...) {
  }
}

}  // namespace

void init_async(Napi::Env env) {
  if (env.GetInstanceData<EnvState>() != nullptr) return;
  auto* state = new EnvState();
  state->channel = Channel::New(env, "softmax-simd", 0, 1, state);
  state->channel.Unref(env);  // an idle addon must not keep the event loop alive
  env.SetInstanceData<EnvState>(state);
  // Registered after the instance data, so it runs before the state is deleted (hooks run LIFO).
  env.AddCleanupHook([state] {
    if (JobThread* thread = JobThread::existing())
      for (FunctionJob* job : thread->close(state)) delete job;
  });
}

Napi::Value submit(Napi::Env env, std::unique_ptr<FunctionJob> job) {
  auto* state = env.GetInstanceData<EnvState>();
  job->deferred.emplace(Napi::Promise::Deferred::New(env));
  Napi::Promise promise = job->deferred->Promise();
  job->owner = state;
  JobThread& thread = JobThread::instance();  // may throw if no thread can be started: nothing queued yet
  if (state->in_flight++ == 0) state->channel.Ref(env);  // pending work keeps the loop alive
  thread.push(job.release());
  return promise;
}

}  // namespace softmax_simd
