// Intra-op parallelism: one kernel's work split over a small process-wide pool of threads.
//
// The pool has intra_op_threads() - 1 workers; the calling thread takes a share too. One caller
// uses the pool at a time: a second thread calling parallel_for while the pool is busy (the
// daemon's poller running a request inline while the worker runs a batch) runs its work inline
// instead of waiting. With one thread (the default) parallel_for is a plain loop.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace coproc::kernels::cpu {

// Threads one kernel call may use, the caller included: 1 (default) to 64. Process-wide; call
// before running models (it restarts the pool).
void set_intra_op_threads(int n);
int intra_op_threads();

// A non-owning reference to a callable `void(int64_t begin, int64_t end)`.
class RangeFn {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F&& f)  // NOLINT(google-explicit-constructor): binds a lambda at the call site
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(o))(b, e); }) {}
  void operator()(int64_t begin, int64_t end) const { call_(object_, begin, end); }

 private:
  void* object_;
  void (*call_)(void*, int64_t, int64_t);
};

// Calls fn(begin, end) over disjoint ranges covering [0, n), in at most intra_op_threads() pieces
// of at least `grain` items each (the last may be shorter), and returns when all are done. fn
// must be safe to run concurrently on disjoint ranges.
void parallel_for(int64_t n, int64_t grain, RangeFn fn);

}  // namespace coproc::kernels::cpu
