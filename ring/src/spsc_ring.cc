// Cold paths of the SPSC ring: geometry checks, initialisation and attaching.
// The hot paths (claim/publish/try_pop) are inline in spsc_ring.h; the
// invariants and memory orders are documented there.
#include "coproc/ring/spsc_ring.h"

#include <cstdio>
#include <cstdlib>
#include <new>

namespace coproc::ring {

namespace {

constexpr uint32_t kMinCapacity = 2;
constexpr uint32_t kMaxCapacity = 1u << 20;
constexpr uint32_t kMinSlotBytes = kCacheLineBytes;
constexpr uint32_t kMaxSlotBytes = 64u * 1024u;

bool is_cache_line_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % kCacheLineBytes == 0;
}

}  // namespace

bool is_valid(RingGeometry g) {
  const bool capacity_ok = g.capacity >= kMinCapacity && g.capacity <= kMaxCapacity &&
                           (g.capacity & (g.capacity - 1)) == 0;
  const bool slot_ok = g.slot_bytes >= kMinSlotBytes && g.slot_bytes <= kMaxSlotBytes &&
                       g.slot_bytes % kCacheLineBytes == 0;
  return capacity_ok && slot_ok;
}

std::size_t ring_bytes(RingGeometry g) {
  if (!is_valid(g)) detail::die("ring_bytes: invalid geometry");
  return detail::kControlBytes + std::size_t{g.capacity} * g.slot_bytes;
}

void ring_init(void* base, RingGeometry g) {
  if (!is_valid(g)) detail::die("ring_init: invalid geometry");
  if (base == nullptr || !is_cache_line_aligned(base))
    detail::die("ring_init: base not 64-byte aligned");
  // Starts the lifetime of both indices in this process. They are not yet
  // shared, so the ordering of these stores does not matter: the memory is
  // handed to the peer later (fd passing, fork) with its own synchronisation.
  ::new (static_cast<std::byte*>(base) + detail::kTailOffsetBytes) detail::Index(0);
  ::new (static_cast<std::byte*>(base) + detail::kHeadOffsetBytes) detail::Index(0);
}

namespace detail {

void die(const char* what) {
  std::fprintf(stderr, "coproc::ring: %s\n", what);
  std::abort();
}

Attached attach(void* base, RingGeometry g, std::size_t own_offset, std::size_t peer_offset) {
  if (!is_valid(g)) die("attach: invalid geometry");
  if (base == nullptr || !is_cache_line_aligned(base)) die("attach: base not 64-byte aligned");
  Attached a;
  a.slots = static_cast<std::byte*>(base) + kControlBytes;
  a.own = index_at(base, own_offset);
  a.peer = index_at(base, peer_offset);
  a.capacity = g.capacity;
  a.mask = g.capacity - 1;
  a.slot_bytes = g.slot_bytes;
  a.max_payload = g.slot_bytes - kSlotHeaderBytes;
  return a;
}

}  // namespace detail
}  // namespace coproc::ring
