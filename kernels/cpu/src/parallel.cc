// The intra-op pool. A job (fn, size, piece count) is written under the mutex, then published by
// a release store of the next `generation_`; a worker that sees the new generation with an
// acquire load may read the job without the mutex. Pieces are claimed with a relaxed fetch_add
// on `next_` (the job it indexes was published as above). A worker finishing its pieces
// decrements `busy_` with release (its writes to the outputs happen before), and the caller
// reads `busy_ == 0` with acquire before returning, so it sees every output.
//
// Waiting spins first, then sleeps: a worker spins up to kSpinBeforeSleep for the next
// generation, and the caller spins as long for completion, before each blocks on its condition
// variable (the predicate is rechecked under the mutex, and the other side notifies under it,
// so no wake-up is lost). The LLM engine's decode step makes hundreds of short parallel calls a
// token, back to back; without the spin each paid a futex wake and a context switch. The spin is
// bounded, so an idle pool sleeps within kSpinBeforeSleep of its last job.
#include "coproc/kernels/parallel.h"

#include <algorithm>
#include <chrono>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace coproc::kernels::cpu {
namespace {

constexpr auto kSpinBeforeSleep = std::chrono::microseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until ready() or kSpinBeforeSleep has passed; true when ready.
template <class Ready>
bool spin_until(Ready&& ready) {
  const auto until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) return false;
  }
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mu_);
      stop_.store(true, std::memory_order_release);
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
      busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
      // Publishes the job to spinning workers (acquire in work()); sleeping ones read it after
      // the mutex, which orders it too.
      generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    wake_.notify_all();
    run_pieces(fn, n, pieces);
    auto finished = [&] { return busy_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(finished)) {
      std::unique_lock lock(mu_);
      done_.wait(lock, finished);
    }
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
    auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    for (;;) {
      if (!spin_until([&] { return fresh() || stop_.load(std::memory_order_acquire); })) {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stop_.load(std::memory_order_relaxed) || fresh(); });
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      run_pieces(*fn_, n_, pieces_);
      // The last worker out wakes a caller that went to sleep; under the mutex, so the caller
      // cannot check busy_ and block between this decrement and the notify.
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mu_);
        done_.notify_one();
      }
    }
  }

  std::mutex owner_;  // held by the one caller using the pool
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  // The job: written by the caller under mu_ before the generation_ store that publishes it,
  // read by workers after seeing that generation; never written while a worker is busy with it.
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t pieces_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> busy_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
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
