// The addon's own threads: created on first need, reused for every call. One parallel region runs at a
// time; callers that arrive meanwhile wait their turn (queued), so concurrent calls never oversubscribe
// the cores. The caller's thread is part 0 of its region.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace softmax_simd {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // Runs fn(part) for every part in [0, parts) on `parts` threads and returns when all are done.
  // fn must not throw.
  void parallel_for(size_t parts, const std::function<void(size_t)>& fn);

  // Largest number of parts a region may ask for.
  static constexpr size_t kMaxThreads = 256;

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

 private:
  ThreadPool() = default;
  size_t grow(size_t workers);  // returns the workers available
  void worker_main(size_t index);

  std::mutex region_mutex_;  // held for a whole region: regions run one after another
  std::mutex mutex_;         // guards the fields below
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  const std::function<void(size_t)>* job_ = nullptr;
  size_t job_parts_ = 0;
  size_t generation_ = 0;
  size_t pending_ = 0;
  bool stopping_ = false;
};

}  // namespace softmax_simd
