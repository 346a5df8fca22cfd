#include "ingest/client_session.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {
uint64_t align_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }
}  // namespace

Result<std::shared_ptr<ClientSession>> ClientSession::create(uint32_t id, pid_t pid, uid_t uid,
                                                             const SegmentGeometry& g,
                                                             int numa_node) {
  using namespace wire;
  ring::RingGeometry ring{g.ring_slots, g.slot_bytes};
  if (!ring::is_valid(ring)) {
    return make_error(ErrorCode::kInvalidArgument, "invalid ring geometry");
  }
  uint64_t sq_offset = kPageBytes;
  uint64_t cq_offset = align_up(sq_offset + ring::ring_bytes(ring), kCacheLineBytes);
  uint64_t arena_offset = align_up(cq_offset + ring::ring_bytes(ring), kPageBytes);
  uint64_t total = arena_offset + align_up(g.arena_bytes, kPageBytes);

  std::shared_ptr<ClientSession> s(new ClientSession());
  s->id_ = id;
  s->pid_ = pid;
  s->uid_ = uid;
  auto segment = SharedMemory::create("coproc-client", total, numa_node);
  if (!segment.ok()) return segment.error();
  s->segment_ = std::move(segment.value());
  if (auto sealed = s->segment_.seal(/*read_only_for_others=*/false); !sealed.ok()) {
    return sealed.error();
  }
  s->event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->event_fd_ < 0) {
    return make_error(ErrorCode::kResourceExhausted,
                      std::string("eventfd: ") + std::strerror(errno));
  }

  std::byte* base = s->segment_.data();
  ring::ring_init(base + sq_offset, ring);
  ring::ring_init(base + cq_offset, ring);
  s->submissions_ = ring::RingConsumer(base + sq_offset, ring);
  s->completions_ = ring::RingProducer(base + cq_offset, ring);
  s->arena_ = base + arena_offset;
  s->arena_bytes_ = total - arena_offset;

  auto* h = new (base) SegmentHeader{};
  h->magic = kSegmentMagic;
  h->segment_bytes = total;
  h->client_id = id;
  h->submission = {sq_offset, ring.capacity, ring.slot_bytes};
  h->completion = {cq_offset, ring.capacity, ring.slot_bytes};
  h->arena_offset = arena_offset;
  h->arena_bytes = s->arena_bytes_;
  // release: publishes the header to the client's acquire of layout_version.
  h->layout_version.store(kSegmentLayoutVersion, std::memory_order_release);
  s->header_ = h;
  return s;
}

ClientSession::~ClientSession() {
  if (event_fd_ >= 0) ::close(event_fd_);
  if (release_stats_) release_stats_();
}

std::byte* ClientSession::arena_range(uint64_t offset, uint64_t bytes) const {
  if (offset > arena_bytes_ || bytes > arena_bytes_ - offset) return nullptr;
  return arena_ + offset;
}

bool ClientSession::push_completion(std::span<const uint8_t> completion, bool ok, bool wake_client,
                                    bool signal) {
  if (closed()) return false;
  {
    std::lock_guard lock(completion_mu_);
    if (!completions_.try_push(completion.data(), static_cast<uint32_t>(completion.size()))) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      overflowed_.store(true, std::memory_order_relaxed);
      return false;
    }
    // Under completion_mu_: the producers of this client take turns, so each counter has one
    // writer at a time and the mutex orders them.
    if (stats_ != nullptr) bump(ok ? stats_->completed_ok : stats_->completed_error);
  }
  if (signal) event_pending_.store(true, std::memory_order_release);
  if (wake_client) wake();
  return true;
}

void ClientSession::wake() {
  // The wake words live in the client's segment: a lying client only delays
  // its own wake-ups.
  //
  // The eventfd first, then the futex: a thread of the client woken from its
  // futex could otherwise read the ring, hand a collectable completion to the
  // client's loop and have it collected before this write lands, which would
  // wake the loop for nothing (E3 in client_impl.h).
  //
  // seq_cst fence, then armed relaxed: the fence orders the load after the
  // pushes and pairs with the client's fence after it arms the flag (E4 in
  // client_impl.h), as the one in ring::notify() does for sleepers. The
  // pending flag is taken only when armed: a signal taken while unarmed could
  // belong to a push that this thread's fence does not order, so the client's
  // arming drain might miss it. Left pending, it costs at most one spurious
  // readiness after arming. The relaxed load skips the locked exchange when
  // nothing is pending; a stale false means the pusher's own wake() is still
  // to come.
  ring::detail::seq_cst_fence();
  if (header_->eventfd_armed.load(std::memory_order_relaxed) != 0 &&
      event_pending_.load(std::memory_order_relaxed) &&
      event_pending_.exchange(false, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof(one));
  }
  ring::notify(header_->completion_seq, header_->completion_sleepers);
}

}  // namespace coproc::daemon
