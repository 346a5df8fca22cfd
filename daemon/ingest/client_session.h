// One connected client: its segment (rings + arena), its eventfd, and the
// daemon's private copies of every size and offset in that segment. Nothing
// is ever read back from the segment's header: the client can write there.
//
// Threads: the poller is the only consumer of the submission ring. Any thread
// that finishes work for this client (poller running inline, executor) may
// produce completions; completion_mu_ makes them one producer at a time.
// Shared ownership: queued work holds a shared_ptr, so a client that
// disconnects keeps its mapping alive until its last in-flight work is
// dropped; `closed` tells that work to discard its results.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "coproc/ring/spsc_ring.h"
#include "coproc/segment.h"
#include "ingest/shm.h"

namespace coproc::daemon {

struct SegmentGeometry {
  uint32_t ring_slots;
  uint32_t slot_bytes;
  uint64_t arena_bytes;
};

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  static Result<std::shared_ptr<ClientSession>> create(uint32_t id, pid_t pid, uid_t uid,
                                                       const SegmentGeometry& geometry,
                                                       int numa_node);
  ~ClientSession();

  uint32_t id() const { return id_; }
  pid_t pid() const { return pid_; }
  uid_t uid() const { return uid_; }
  int segment_fd() const { return segment_.fd(); }
  int event_fd() const { return event_fd_; }
  uint64_t segment_bytes() const { return segment_.bytes(); }

  // Poller thread only.
  ring::RingConsumer& submissions() { return submissions_; }

  // [offset, offset + bytes) checked against the private arena size;
  // nullptr when it does not fit.
  std::byte* arena_range(uint64_t offset, uint64_t bytes) const;

  // Pushes one finished Completion (a flatbuffer) and, with `wake`, wakes the
  // client. Never blocks. Returns false, dropping it, when the client is
  // closed or its completion ring is full. The ring holds a whole in-flight
  // window (ring_slots), so only a client that submits past its window can
  // fill it (libcoproc cannot): the drop is counted and the session marked
  // overflowed, and the poller disconnects it (a stuck client must not cost
  // the daemon anything, and that client would wait forever for the lost
  // completion anyway).
  // `ok`: the completion's status is OK (counted in the client's stats slot).
  // `signal`: its request asked for the eventfd (wire::kRequestIdSignalsEventFd);
  // the next wake() writes the eventfd if the client armed it.
  bool push_completion(std::span<const uint8_t> completion, bool ok, bool wake = true,
                       bool signal = false);
  // Wakes the client if it sleeps (futex), and signals its eventfd if a
  // completion pushed since the last wake asked for it: after a batch pushed
  // several completions with wake = false, one wake-up instead of one each.
  void wake();

  // Control loop, before the session is shared: the client's slot in the stats page (null when
  // every slot was taken). `release` runs in the destructor, when nothing can count into it.
  void attach_stats(wire::ClientStats* stats, std::function<void()> release) {
    stats_ = stats;
    release_stats_ = std::move(release);
  }
  // Poller thread: a request read off the submission ring (its only writer).
  void count_request() {
    if (stats_ != nullptr) bump(stats_->requests);
  }

  void close() { closed_.store(true, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }
  uint64_t dropped_completions() const { return dropped_.load(std::memory_order_relaxed); }
  // A completion found the ring full (see push_completion). relaxed: a flag
  // the poller polls; the disconnect it triggers needs no data from the pusher.
  bool overflowed() const { return overflowed_.load(std::memory_order_relaxed); }

 private:
  ClientSession() = default;
  // One writer per counter (see attach_stats, push_completion): a load and a store, no locked
  // instruction. release: a seqlock reader that acquires this count also sees the slot's reset
  // and identity written before it (segment.h), so it never pairs a new client's counts with
  // the previous client's identity. On x86 it is a plain store.
  static void bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  uint32_t id_ = 0;
  pid_t pid_ = 0;
  uid_t uid_ = 0;
  SharedMemory segment_;
  int event_fd_ = -1;
  wire::SegmentHeader* header_ = nullptr;
  std::byte* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;

  ring::RingConsumer submissions_;
  std::mutex completion_mu_;
  ring::RingProducer completions_;
  // relaxed: a hint checked before work; the shared_ptr keeps memory valid.
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<bool> overflowed_{false};
  // A completion that asked for the eventfd was pushed and no wake() has
  // signalled it yet. release by the pusher (after its push), acquire by the
  // wake() that takes it: that wake's eventfd write comes after the push, so
  // the client's read of the eventfd sees the completion in the ring.
  std::atomic<bool> event_pending_{false};
  wire::ClientStats* stats_ = nullptr;
  std::function<void()> release_stats_;
};

}  // namespace coproc::daemon
