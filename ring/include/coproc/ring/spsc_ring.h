// A single-producer single-consumer ring of fixed-size slots in shared memory,
// mapped by two processes that do not trust each other (Aeron aeron_spsc_rb.c,
// rigtorp SPSCQueue).
//
// Layout (offsets from the 64-byte aligned base; no pointers are stored in the
// shared memory, so each process may map it at a different address):
//
//   [0,   64)   tail: the producer's index, uint64, written only by the producer
//   [128, 192)  head: the consumer's index, uint64, written only by the consumer
//   [256, ...)  capacity slots of slot_bytes each; slot i holds message i & mask:
//                 [0, 4)  payload length in bytes (uint32), [4, 8) reserved,
//                 [8, slot_bytes) payload, so the payload is 8-byte aligned.
//
// head and tail sit 128 bytes apart, not 64: the spatial prefetcher on x86
// fetches 64-byte lines in 128-byte aligned pairs, so a neighbour on the same
// pair would still bounce between the two cores.
//
// Invariants (for a well-behaved peer):
//   I1  head and tail only grow; both are message counts, not slot numbers.
//   I2  head <= tail <= head + capacity. The ring is empty when head == tail
//       and full when tail == head + capacity.
//   I3  Slot (i & mask) belongs to the producer while i >= tail, to the
//       consumer while head <= i < tail, and is free again once head > i.
//   I4  Each side keeps its own index in private memory and only stores it to
//       shared memory for the peer; it never loads its own index back, so a
//       peer that scribbles on it cannot steer where we read or write.
//   I5  Each side caches the peer's index and reloads it from shared memory
//       only when the cache says full (producer) or empty (consumer), so in the
//       steady state neither side touches the other's cache line.
//   I6  Every value read from the peer (its index, a slot's length) is checked
//       against I2 and max_payload() before it is used. A bad value marks this
//       side corrupt; corruption is sticky and the owner disconnects the peer.
//       All slot addresses are computed from our private index and the trusted
//       geometry, so no value the peer writes can move a read or write outside
//       the ring, and no loop depends on a peer value.
//
// Memory order: publish() stores the length and payload, then stores tail with
// release; try_pop() loads tail with acquire before reading the slot. try_pop()
// copies the slot out and then stores head with release; claim() loads head
// with acquire before handing the slot back for overwriting.
//
// Threading: one RingProducer and one RingConsumer per ring, each used by one
// thread at a time. Neither call blocks, allocates or makes a syscall.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

namespace coproc::ring {

inline constexpr std::size_t kCacheLineBytes = 64;

struct RingGeometry {
  uint32_t capacity;    // number of slots: a power of two in [2, 1u << 20]
  uint32_t slot_bytes;  // bytes per slot including its header: a multiple of 64 in [64, 65536]
};

bool is_valid(RingGeometry g);
// Control block plus slots; a multiple of kCacheLineBytes. g must be valid.
std::size_t ring_bytes(RingGeometry g);
// Initialises a ring of ring_bytes(g) bytes at base (64-byte aligned) in zeroed
// or reused memory: both indices to 0. Called once by the creator before the
// memory is shared. Aborts on an invalid geometry or a misaligned base.
void ring_init(void* base, RingGeometry g);

namespace detail {

inline constexpr std::size_t kTailOffsetBytes = 0;
inline constexpr std::size_t kHeadOffsetBytes = 2 * kCacheLineBytes;
inline constexpr std::size_t kControlBytes = 4 * kCacheLineBytes;
inline constexpr uint32_t kSlotHeaderBytes = 8;

using Index = std::atomic<uint64_t>;
static_assert(Index::is_always_lock_free, "indices are shared between processes");
static_assert(sizeof(Index) == sizeof(uint64_t));
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free,
              "slot length headers are shared between processes");
static_assert(std::atomic_ref<uint32_t>::required_alignment <= kCacheLineBytes);

// Programmer errors (a broken precondition of the caller) abort loudly.
[[noreturn]] void die(const char* what);

inline Index* index_at(void* base, std::size_t offset_bytes) {
  return reinterpret_cast<Index*>(static_cast<std::byte*>(base) + offset_bytes);
}

// The length header of a slot: read and written only through atomic_ref, so a
// peer writing it concurrently cannot make us fetch it twice (no double fetch).
inline std::atomic_ref<uint32_t> slot_length(std::byte* slot) {
  return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(slot));
}

struct Attached {
  std::byte* slots = nullptr;
  Index* own = nullptr;         // our index in shared memory: stored, never loaded
  const Index* peer = nullptr;  // the peer's index in shared memory: loaded, never stored
  uint32_t capacity = 0;
  uint32_t mask = 0;
  uint32_t slot_bytes = 0;
  uint32_t max_payload = 0;  // slot_bytes - kSlotHeaderBytes
};
Attached attach(void* base, RingGeometry g, std::size_t own_offset, std::size_t peer_offset);

}  // namespace detail

class RingProducer {
 public:
  RingProducer() = default;  // detached: claim() is always empty
  // g is the caller's trusted private copy of the geometry the ring was
  // initialised with. The ring must be freshly initialised (tail == 0).
  RingProducer(void* base, RingGeometry g)
      : s_{detail::attach(base, g, detail::kTailOffsetBytes, detail::kHeadOffsetBytes)} {}
  RingProducer(RingProducer&& other) noexcept : s_(std::exchange(other.s_, State{})) {}
  RingProducer& operator=(RingProducer&& other) noexcept {
    s_ = std::exchange(other.s_, State{});
    return *this;
  }
  RingProducer(const RingProducer&) = delete;
  RingProducer& operator=(const RingProducer&) = delete;

  uint32_t max_payload() const { return s_.ring.max_payload; }

  // Writable payload area (max_payload() bytes, 8-byte aligned) of the next
  // free slot, or an empty span when the ring is full or corrupt. Calling it
  // again before publish() returns the same slot.
  std::span<std::byte> claim() {
    if (s_.tail - s_.head_cache >= s_.ring.capacity && !refresh_head()) return {};
    s_.claimed = true;
    return {slot(s_.tail) + detail::kSlotHeaderBytes, max_payload()};
  }

  // Publishes the claimed slot with `bytes` of payload. Preconditions (abort
  // otherwise): claim() returned a slot since the last publish(), and
  // bytes <= max_payload().
  void publish(uint32_t bytes) {
    if (!s_.claimed || bytes > max_payload()) [[unlikely]] {
      detail::die("RingProducer::publish: no claim, or bytes > max_payload()");
    }
    // relaxed: ordered before the consumer's read by the release store of tail below.
    detail::slot_length(slot(s_.tail)).store(bytes, std::memory_order_relaxed);
    ++s_.tail;
    s_.claimed = false;
    // release: publishes the slot's length and payload to the consumer's
    // acquire load of tail in RingConsumer::refresh_tail().
    s_.ring.own->store(s_.tail, std::memory_order_release);
  }

  // claim + memcpy + publish. False when the ring is full or corrupt, or when
  // bytes > max_payload() (nothing is written then).
  bool try_push(const void* data, uint32_t bytes) {
    if (bytes > max_payload()) return false;
    const std::span<std::byte> dst = claim();
    if (dst.empty()) return false;
    if (bytes != 0) std::memcpy(dst.data(), data, bytes);
    publish(bytes);
    return true;
  }

  // The consumer's head was seen outside [tail - capacity, tail]. Sticky.
  bool corrupt() const { return s_.corrupt; }

 private:
  struct State {
    detail::Attached ring;
    uint64_t tail = 0;        // our index, the private copy of record (I4)
    uint64_t head_cache = 0;  // last head loaded from the consumer (I5)
    bool claimed = false;
    bool corrupt = false;
  };

  std::byte* slot(uint64_t index) const {
    return s_.ring.slots +
           std::size_t{static_cast<uint32_t>(index) & s_.ring.mask} * s_.ring.slot_bytes;
  }

  // Slow path, taken when the cached head says full. True when there is room.
  // corrupt is only ever set here, with the cache saying full, so a corrupt
  // producer keeps taking this path and claim() stays empty.
  bool refresh_head() {
    if (s_.corrupt || s_.ring.peer == nullptr) return false;
    // acquire: pairs with the consumer's release store of head in try_pop(), so
    // its copy out of every slot below head happens before we overwrite one.
    const uint64_t head = s_.ring.peer->load(std::memory_order_acquire);
    if (head > s_.tail || s_.tail - head > s_.ring.capacity) {  // I6: head outside I2
      s_.corrupt = true;
      return false;
    }
    s_.head_cache = head;
    return s_.tail - head < s_.ring.capacity;
  }

  State s_;
};

class RingConsumer {
 public:
  enum class Pop { kEmpty, kOk, kCorrupt };

  RingConsumer() = default;  // detached: always empty
  // g is the caller's trusted private copy of the geometry the ring was
  // initialised with. The ring must be freshly initialised (head == 0).
  RingConsumer(void* base, RingGeometry g)
      : s_{detail::attach(base, g, detail::kHeadOffsetBytes, detail::kTailOffsetBytes)} {}
  RingConsumer(RingConsumer&& other) noexcept : s_(std::exchange(other.s_, State{})) {}
  RingConsumer& operator=(RingConsumer&& other) noexcept {
    s_ = std::exchange(other.s_, State{});
    return *this;
  }
  RingConsumer(const RingConsumer&) = delete;
  RingConsumer& operator=(const RingConsumer&) = delete;

  uint32_t max_payload() const { return s_.ring.max_payload; }

  // Copies the next message out of its slot into `out` and stores its length
  // in *bytes, then releases the slot. Copying first means the caller verifies
  // a private copy that the producer can no longer change. Precondition (abort
  // otherwise): out.size() >= max_payload(). kCorrupt is sticky.
  Pop try_pop(std::span<std::byte> out, uint32_t* bytes) {
    if (out.size() < max_payload()) [[unlikely]] {
      detail::die("RingConsumer::try_pop: output smaller than max_payload()");
    }
    if (s_.corrupt) [[unlikely]] {
      return Pop::kCorrupt;
    }
    if (s_.head == s_.tail_cache && !refresh_tail()) {
      return s_.corrupt ? Pop::kCorrupt : Pop::kEmpty;
    }
    std::byte* const src = slot(s_.head);
    // relaxed: ordered after the producer's writes by the acquire load of tail
    // in refresh_tail(); loaded exactly once, then checked (I6).
    const uint32_t length = detail::slot_length(src).load(std::memory_order_relaxed);
    if (length > max_payload()) [[unlikely]] {
      s_.corrupt = true;
      return Pop::kCorrupt;
    }
    if (length != 0) std::memcpy(out.data(), src + detail::kSlotHeaderBytes, length);
    *bytes = length;
    ++s_.head;
    // release: orders our copy out of the slot before the producer's acquire
    // load of head in RingProducer::refresh_head(), after which it may reuse it.
    s_.ring.own->store(s_.head, std::memory_order_release);
    return Pop::kOk;
  }

  // True when there is nothing to pop. Reloads the shared tail only when the
  // cached one says empty, so it is cheap while messages are pending. A
  // corrupt ring is not empty: the next try_pop() reports kCorrupt.
  bool empty() { return s_.head == s_.tail_cache && !refresh_tail() && !s_.corrupt; }

  // The producer's tail was seen outside [head, head + capacity], or a slot's
  // length was above max_payload(). Sticky.
  bool corrupt() const { return s_.corrupt; }

 private:
  struct State {
    detail::Attached ring;
    uint64_t head = 0;        // our index, the private copy of record (I4)
    uint64_t tail_cache = 0;  // last tail loaded from the producer (I5)
    bool corrupt = false;
  };

  std::byte* slot(uint64_t index) const {
    return s_.ring.slots +
           std::size_t{static_cast<uint32_t>(index) & s_.ring.mask} * s_.ring.slot_bytes;
  }

  // Slow path, taken when the cached tail says empty. True when a message is
  // pending; false when empty or corrupt (corrupt() tells which).
  bool refresh_tail() {
    if (s_.corrupt || s_.ring.peer == nullptr) return false;
    // acquire: pairs with the producer's release store of tail in publish(), so
    // the length and payload of every slot below tail are visible to us.
    const uint64_t tail = s_.ring.peer->load(std::memory_order_acquire);
    if (tail < s_.head || tail - s_.head > s_.ring.capacity) {  // I6: tail outside I2
      s_.corrupt = true;
      return false;
    }
    s_.tail_cache = tail;
    return tail != s_.head;
  }

  State s_;
};

}  // namespace coproc::ring
