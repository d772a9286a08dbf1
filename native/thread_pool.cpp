#include "thread_pool.hpp"

#include <algorithm>
#include <exception>

namespace softmax_simd {

ThreadPool& ThreadPool::instance() {
  // Never destroyed: worker threads must not be joined from a static destructor while the process
  // (or a worker_threads isolate unloading the addon) exits.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

size_t ThreadPool::grow(size_t workers) {
  // Called with region_mutex_ held and no region running, so workers_ is not read concurrently.
  while (workers_.size() < workers) {
    const size_t index = workers_.size() + 1;  // part 0 is the caller
    try {
      workers_.emplace_back([this, index] { worker_main(index); });
    } catch (const std::exception&) {
      break;  // no more threads to be had (a pids limit, say): the caller runs the rest
    }
  }
  return workers_.size();
}

void ThreadPool::worker_main(size_t index) {
  size_t seen = 0;
  for (;;) {
    const std::function<void(size_t)>* job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (index >= job_parts_) continue;  // this region needs fewer threads
      job = job_;
    }
    (*job)(index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t parts, const std::function<void(size_t)>& fn) {
  if (parts == 0) return;
  if (parts > kMaxThreads) parts = kMaxThreads;
  if (parts == 1) {
    fn(0);  // no pool thread involved: no need to wait for another caller's region
    return;
  }
  std::lock_guard<std::mutex> region(region_mutex_);
  // Parts without a thread (if threads could not be created) run on the caller, after its own;
  // the split of the work does not change, so neither do the results.
  const size_t threaded = std::min(parts - 1, grow(parts - 1));
  if (threaded > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_parts_ = threaded + 1;
    pending_ = threaded;
    ++generation_;
  }
  wake_.notify_all();
  fn(0);
  for (size_t p = threaded + 1; p < parts; ++p) fn(p);
  if (threaded == 0) return;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
}

}  // namespace softmax_simd
