// Internal definitions of the opaque handles behind coproc.h. The C bridge
// (c_api.cc) validates arguments and converts; this layer does the work.
//
// Threading inside a client:
//  - submit_mu_ guards the submission ring's producer side, the request pool's
//    free list and the flatbuffer builder: the ring is single-producer, and
//    this mutex is what makes every thread of the process one producer.
//  - draining_ is a try-only lock over the completion ring's consumer side
//    (waiters spin on it, so taking it is one xchg and releasing it a plain
//    store, not a mutex's two locked operations). Whoever holds it pops
//    completions and publishes each into its request with a release store of
//    `state`; waiters read `state` with acquire. Waiters that do not get the
//    lock simply re-check their own request.
//  - ready_mu_ guards the collect queue (ready_): completions of requests
//    submitted with COPROC_SUBMIT_COLLECT that coproc_collect has not handed
//    out yet. Lock order: the drain lock, then submit_mu_, then ready_mu_
//    (collect holds all three while it hands requests out); nobody waits for
//    the drain lock while holding a mutex.
//  - The arena allocator has its own mutex (alloc_mu_).
//
// The event fd (coproc_event_fd) is readable exactly while ready_ holds a
// request (E1), give or take the windows below. Two parties write it: the
// daemon after it pushes completions (only once the client armed it), and the
// client itself; only the client reads (resets) it, always holding the drain
// lock, so resets never race with pops:
//  E1  ready_ empty -> non-empty (a drain appends): the drainer writes 1.
//  E2  a collect leaves ready_ empty: it resets the fd, then looks at the
//      ring once more. A completion pushed before the reset is seen by that
//      look (the daemon pushes before it writes, and the eventfd's kernel
//      lock orders its write before our read); one pushed after it writes
//      the fd again. So no completion is left in the ring with the fd quiet.
//  E3  the daemon signals only for completions of COPROC_SUBMIT_COLLECT
//      requests (wire::kRequestIdSignalsEventFd in their id), so a thread
//      that waits for its own requests neither wakes the loop nor needs to
//      touch the fd; and it writes the fd before it wakes futex sleepers, so
//      such a thread cannot take a completion to ready_ and have the loop
//      collect it before the daemon's signal lands. A signal can still land
//      just after a collect took its completion (a loop collecting while the
//      daemon pushes): one readiness with nothing to collect, which the next
//      coproc_collect answers with 0 and clears (E2). Rare: 0 or 1 in about
//      3,000 wake-ups of tests/integration/event_loop_test.cc.
//  E4  arming (the first coproc_event_fd) publishes the flag to the daemon,
//      then drains and writes 1 if ready_ is non-empty, so completions that
//      arrived before the fd was asked for are not silent; the seq_cst fence
//      after the flag pairs with the daemon's fence in ring::notify() (as W1
//      in ring/wait.h): either the daemon sees the flag, or our drain sees its
//      completion.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <atomic>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "coproc.h"
#include "coproc/ring/spsc_ring.h"
#include "coproc/segment.h"

struct coproc_model {
  coproc_client* client = nullptr;
  uint32_t id = 0;
  uint32_t max_batch = 0;
  std::string name;
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  std::vector<coproc_tensor_info> inputs;
  std::vector<coproc_tensor_info> outputs;
};

// A request's fields are written by the submitting thread and later by the
// thread that drains its completion. What orders the two is the daemon, in
// another process: the submission ring's release, the daemon's acquire, its
// completion push (release) and our pop (acquire). ThreadSanitizer cannot see
// an edge that runs through another process, so it is stated to it here: a
// release on the request when it is submitted, an acquire when its
// completion is drained. No effect outside TSan builds.
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define COPROC_TSAN_RELEASE(addr) __tsan_release(addr)
#define COPROC_TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define COPROC_TSAN_RELEASE(addr) ((void)(addr))
#define COPROC_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

namespace coproc::client {
inline constexpr uint32_t kMaxTensorsPerRequest = 16;
enum class RequestState : uint32_t { kFree = 0, kInFlight = 1, kDone = 2 };
}  // namespace coproc::client

struct coproc_request {
  coproc_client* client = nullptr;
  uint32_t index = 0;
  // Bumped on release (under submit_mu_); part of the wire id. Atomic because
  // collect() and the drainer compare it with a queued id while the owner may
  // be releasing the request (relaxed: a mismatch only means "stale").
  std::atomic<uint32_t> generation{0};
  std::atomic<uint32_t> state{0};          // RequestState; release by the drainer, acquire by readers
  std::atomic<bool> abandoned{false};      // nobody will release it: the drainer frees it on completion
  bool collect = false;                    // COPROC_SUBMIT_COLLECT: reported by coproc_collect
  void* user_data = nullptr;               // coproc_submit_options.user_data
  coproc_status status = COPROC_OK;
  std::string message;
  uint32_t n_outputs = 0;
  int32_t output_rank[coproc::client::kMaxTensorsPerRequest] = {};
  int64_t output_shape[coproc::client::kMaxTensorsPerRequest][COPROC_MAX_RANK] = {};
  coproc_timing timing = {};

  // The wire id: index, generation (31 bits) and, for a collectable request,
  // the bit that asks the daemon to signal the eventfd.
  uint32_t gen() const { return generation.load(std::memory_order_relaxed) & kGenerationMask; }
  uint64_t wire_id() const {
    return (uint64_t{gen()} << 32) | index | (collect ? coproc::wire::kRequestIdSignalsEventFd : 0);
  }
  bool matches(uint64_t id) const { return gen() == (static_cast<uint32_t>(id >> 32) & kGenerationMask); }
  static constexpr uint32_t kGenerationMask = 0x7fffffff;
};

struct coproc_client {
 public:
  ~coproc_client();

  // Connects, maps the segments and reads the model table. On failure the
  // message says what went wrong (path, versions, errno).
  static coproc_status connect(const coproc_connect_options& options, coproc_client** out,
                               std::string* message);

  coproc_status submit(const coproc_model& model, const coproc_tensor* inputs, size_t n_inputs,
                       const coproc_tensor* outputs, size_t n_outputs,
                       const coproc_submit_options& options, coproc_request** out,
                       std::string* message);
  coproc_status wait(coproc_request& request, int64_t timeout_ns, std::string* message);
  coproc_status poll(coproc_request* const* requests, size_t n, int64_t timeout_ns,
                     size_t* out_done, std::string* message);
  coproc_status cancel(coproc_request& request, std::string* message);
  coproc_status release(coproc_request& request, std::string* message);
  // Gives up on an in-flight request (its caller stops waiting): it is freed
  // when its completion arrives, or now if it already has.
  void abandon(coproc_request& request);
  // coproc_infer: submit, wait, read the output shapes into `outputs`, release. On a timeout
  // the request is cancelled and given a short grace to complete, so that its buffers are
  // normally no longer written once this returns; if even that runs out, it is abandoned and
  // the answer is COPROC_ERR_IN_FLIGHT. Never leaves a request for the caller to release.
  coproc_status infer(const coproc_model& model, const coproc_tensor* inputs, size_t n_inputs,
                      coproc_tensor* outputs, size_t n_outputs, int64_t timeout_ns,
                      std::string* message);
  // Whether the request's completion has been read, reading the completion ring first if no
  // other thread is draining it (never waits).
  bool completed(const coproc_request& request);
  // The shape of output `index` of a completed request (zeros past its rank).
  coproc_status output_shape(const coproc_request& request, size_t index, int32_t* out_rank,
                             int64_t out_shape[COPROC_MAX_RANK], std::string* message);
  // The timing of a completed request, as its completion was read (no refresh).
  coproc_status timing(const coproc_request& request, coproc_timing* out, std::string* message);
  // The model of that name; null if the daemon serves none.
  coproc_model* find_model(std::string_view name);

  coproc_status alloc(size_t bytes, void** out, std::string* message);
  coproc_status free(void* ptr, std::string* message);
  coproc_status event_fd(int* out_fd, std::string* message);
  // Hands out up to `capacity` collectable completions, oldest first (E2).
  size_t collect(coproc_request** out, size_t capacity);
  // Refreshes the request's state from the completion ring if no other
  // thread is draining it (never waits).
  void refresh() { drain_completions(); }

  uint64_t arena_bytes() const { return arena_bytes_; }
  size_t max_in_flight() const { return pool_.size(); }

  std::vector<std::unique_ptr<coproc_model>>& models() { return models_; }
  bool in_arena(const void* ptr, uint64_t bytes) const;
  bool daemon_gone();

 private:
  coproc_client() = default;
  coproc_status map_segments(const int fds[], std::string* message);
  coproc_status read_model_table(std::string* message);
  // Pops every available completion into its request. Returns false when
  // another thread holds the drain lock.
  bool drain_completions();
  void lock_drain();  // waits for the drain lock: for the short pops of another thread
  void unlock_drain();
  // Caller holds the drain lock. Pops every available completion; collectable
  // ones go to ready_, and with `signal` the fd is made readable if ready_ was
  // empty (E1).
  void drain_locked(bool signal);
  void signal_event_fd();
  void reset_event_fd();
  void release_locked(coproc_request& request);  // caller holds submit_mu_; idempotent
  // infer() after its wait ran out: cancel, wait out the grace, release or abandon.
  coproc_status cancel_after_timeout(coproc_request& request, std::string* message);
  void build_template(const coproc_model& model, const coproc_tensor* inputs, size_t n_inputs,
                      const coproc_tensor* outputs, size_t n_outputs);
  coproc_status push_message(const flatbuffers::FlatBufferBuilder& fbb, std::string* message);

  int socket_fd_ = -1;
  int event_fd_ = -1;
  uint32_t client_id_ = 0;
  int64_t spin_ns_ = 0;

  void* segment_ = nullptr;
  size_t segment_bytes_ = 0;
  const void* registry_ = nullptr;
  size_t registry_bytes_ = 0;
  void* doorbell_ = nullptr;

  coproc::wire::SegmentHeader* header_ = nullptr;
  const coproc::wire::RegistryHeader* registry_header_ = nullptr;
  coproc::wire::Doorbell* doorbell_page_ = nullptr;
  std::byte* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;

  std::mutex submit_mu_;
  coproc::ring::RingProducer submissions_;
  flatbuffers::FlatBufferBuilder builder_{1024};  // ForceDefaults: every scalar patchable
  // The last Request built, reused when the next submit names the same model
  // and byte-identical tensor descriptors (the usual loop: same buffers, same
  // shapes): its bytes are copied into the slot and only id, priority and
  // deadline are patched in place. Guarded by submit_mu_.
  struct RequestTemplate {
    const coproc_model* model = nullptr;
    size_t n_inputs = 0;
    std::vector<coproc_tensor> tensors;  // inputs, then outputs
    std::vector<uint8_t> bytes;
  } template_;
  std::vector<std::unique_ptr<coproc_request>> pool_;
  std::vector<uint32_t> free_;

  std::atomic<bool> draining_{false};
  coproc::ring::RingConsumer completions_;
  std::vector<std::byte> completion_buffer_;
  // relaxed: read by drainers, which hold the drain lock, and set once by
  // event_fd() while it holds the drain lock too (the lock orders them).
  std::atomic<bool> event_armed_{false};

  std::mutex ready_mu_;
  // Wire ids (index | generation << 32) in completion order. A request
  // released before it was collected leaves a stale id, skipped on collect;
  // stale ids are purged once the queue reaches the window, so it never
  // holds more than twice the window.
  std::deque<uint64_t> ready_;

  std::mutex alloc_mu_;
  std::unique_ptr<boost::interprocess::managed_external_buffer> allocator_;
  std::unordered_set<void*> allocations_;

  std::atomic<bool> gone_{false};
  std::vector<std::unique_ptr<coproc_model>> models_;
};
