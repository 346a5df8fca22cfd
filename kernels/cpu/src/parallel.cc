// The intra-op pool. Synchronisation is one mutex and two condition variables: the job (fn,
// piece count) is written under the mutex before the generation is bumped, and workers read it
// under the mutex after seeing the new generation, so the mutex orders everything; pieces are
// claimed with a relaxed fetch_add on `next_` (the job it indexes was published by the mutex).
// Completion is counted under the mutex too. Costs a few microseconds per call, so kernels call
// parallel_for only for work of tens of microseconds or more.
#include "coproc/kernels/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace coproc::kernels::cpu {
namespace {

class Pool {
 public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // false when another caller holds the pool.
  bool try_run(int64_t n, int64_t pieces, const RangeFn& fn) {
    std::unique_lock<std::mutex> owner(owner_, std::try_to_lock);
    if (!owner.owns_lock()) return false;
    {
      std::lock_guard lock(mu_);
      fn_ = &fn;
      n_ = n;
      pieces_ = pieces;
      next_.store(0, std::memory_order_relaxed);
      busy_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    run_pieces(fn, n, pieces);
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    fn_ = nullptr;
    return true;
  }

 private:
  void run_pieces(const RangeFn& fn, int64_t n, int64_t pieces) {
    for (;;) {
      const int64_t p = next_.fetch_add(1, std::memory_order_relaxed);
      if (p >= pieces) return;
      fn(p * n / pieces, (p + 1) * n / pieces);
    }
  }

  void work() {
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      const RangeFn* fn = fn_;
      const int64_t n = n_;
      const int64_t pieces = pieces_;
      lock.unlock();
      run_pieces(*fn, n, pieces);
      lock.lock();
      if (--busy_ == 0) done_.notify_one();
    }
  }

  std::mutex owner_;  // held by the one caller using the pool
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t pieces_ = 0;
  std::atomic<int64_t> next_{0};
  int busy_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

std::mutex g_config_mu;
std::shared_ptr<Pool> g_pool;     // guarded by g_config_mu; null while one thread
std::atomic<int> g_threads{1};

}  // namespace

void set_intra_op_threads(int n) {
  n = std::clamp(n, 1, 64);
  std::lock_guard lock(g_config_mu);
  g_pool = n > 1 ? std::make_shared<Pool>(n) : nullptr;
  g_threads.store(n, std::memory_order_relaxed);
}

int intra_op_threads() { return g_threads.load(std::memory_order_relaxed); }

void parallel_for(int64_t n, int64_t grain, RangeFn fn) {
  if (n <= 0) return;
  const int64_t threads = intra_op_threads();
  const int64_t pieces = std::min(threads, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (pieces > 1) {
    std::shared_ptr<Pool> pool;
    {
      std::lock_guard lock(g_config_mu);
      pool = g_pool;
    }
    if (pool != nullptr && pool->try_run(n, std::min<int64_t>(pieces, pool->threads()), fn)) return;
  }
  fn(0, n);
}

}  // namespace coproc::kernels::cpu
