// fuzz_ring: the daemon's side of a shared-memory SPSC ring (ring/include/coproc/ring/spsc_ring.h)
// with the other side played by the fuzzer, which may write anything anywhere in the ring between
// two calls. The daemon consumes submission rings and produces into completion rings, so both
// RingConsumer and RingProducer face a peer that lies.
//
// Input, read front to back (fuzz_make_seeds writes the same format): one byte each for the
// capacity (2 << (b % 8)), the slot size (64 * (1 + b % 8)) and the side (b & 1: producer), then
// a program of ops, each an op byte (b % 10, Op below) and its operands, integers little-endian;
// a short input reads as zeros. Each op either changes the shared memory
// the way a peer can (an index set to any value, stepped forward or back; a slot's length or
// payload; any bytes anywhere; or a well-behaved peer's publish / consume) or calls the side
// under test (try_pop / empty, or try_push / claim + publish).
//
// Oracle, beyond "no crash, no out-of-bounds access" (the ring is a heap block of exactly
// ring_bytes(), so ASan sees a read or write past it):
//   - every result equals that of a reference model written from the header's invariants (I2, I5,
//     I6): the peer's index is loaded only when the cached one says empty (consumer) or full
//     (producer), a loaded index outside I2 or a slot length above max_payload() makes the side
//     corrupt, and corrupt is sticky;
//   - a popped message is the slot's bytes, `length` of them, and nothing more is written to the
//     caller's buffer;
//   - the side under test writes nothing in the shared memory but its own index and, for the
//     producer, the length and payload of the slot it publishes (a shadow copy is compared after
//     every call), and it never loads its own index back (I4: scribbling on it changes nothing).
// Changes while a call is running (a double fetch) cannot be made in one thread; the single
// atomic load of each peer value is what rules them out, and the TSan stress tests race it.
//
//   build/fuzz/bin/fuzz_ring tests/fuzz/corpus/ring
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "coproc/ring/spsc_ring.h"
#include "fuzz_check.h"

namespace {

using coproc::ring::RingConsumer;
using coproc::ring::RingGeometry;
using coproc::ring::RingProducer;

// The layout the header documents, restated here so a change to it shows up as a failure.
constexpr std::size_t kTailOffset = 0;
constexpr std::size_t kHeadOffset = 128;
constexpr std::size_t kSlotsOffset = 256;
constexpr std::size_t kSlotHeaderBytes = 8;
// Small rings: wrap-around and full rings are reached in a few ops.
constexpr int kMaxCapacityLog2 = 8;
constexpr uint32_t kMaxSlotLines = 8;
constexpr std::size_t kMaxScribbleBytes = 16;
constexpr int kMaxOps = 4096;

enum class Side : uint8_t { kConsumer, kProducer };

// The input, front to back; past its end every read is zero.
class Reader {
 public:
  Reader(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t remaining() const { return size_ - at_; }
  template <class T>
  T integral() {
    T value = 0;
    const std::size_t n = std::min(sizeof(T), remaining());
    for (std::size_t i = 0; i < n; ++i) value |= static_cast<T>(T{data_[at_ + i]} << (8 * i));
    at_ += n;
    return value;
  }
  // A value in [lo, hi], taken from as many bytes as T has.
  template <class T>
  T in_range(T lo, T hi) {
    const T span = hi - lo;
    const T raw = integral<T>();
    return span == static_cast<T>(~T{0}) ? raw : lo + raw % (span + 1);
  }
  // Up to n bytes (fewer at the end of the input).
  std::span<const uint8_t> bytes(std::size_t n) {
    n = std::min(n, remaining());
    const std::span<const uint8_t> out(data_ + at_, n);
    at_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

enum class Op : uint8_t {
  kSetPeerIndex,   // the peer's index := any value
  kStepPeerIndex,  // += [0, 2 * capacity + 1]
  kRewindPeerIndex,
  kSetOwnIndex,   // scribble on the side under test's index: must be ignored (I4)
  kSetLength,     // any slot's length header := any value
  kWritePayload,  // bytes into any slot's payload
  kScribble,      // up to kMaxScribbleBytes anywhere in the ring
  kPeerStep,      // a well-behaved peer publishes (consumer) or consumes (producer) a few
  kCall,          // try_pop / try_push
  kCallOther,     // empty() / claim() + publish()
};
constexpr uint8_t kOpCount = static_cast<uint8_t>(Op::kCallOther) + 1;

Op next_op(Reader& in) { return static_cast<Op>(in.integral<uint8_t>() % kOpCount); }

// The ring memory and a shadow of what it must hold.
class Memory {
 public:
  explicit Memory(RingGeometry g)
      : g_(g),
        bytes_(coproc::ring::ring_bytes(g)),
        real_(static_cast<std::byte*>(std::aligned_alloc(coproc::ring::kCacheLineBytes, bytes_))),
        shadow_(bytes_) {
    std::memset(real_.get(), 0, bytes_);
    coproc::ring::ring_init(real_.get(), g);
  }

  std::byte* base() { return real_.get(); }
  std::size_t bytes() const { return bytes_; }
  const RingGeometry& geometry() const { return g_; }
  std::size_t slot_offset(uint64_t index) const {
    return kSlotsOffset +
           std::size_t{static_cast<uint32_t>(index) & (g_.capacity - 1)} * g_.slot_bytes;
  }

  // A peer's write: lands in both.
  void write(std::size_t offset, const void* src, std::size_t n) {
    if (n == 0) return;  // src may be null
    std::memcpy(real_.get() + offset, src, n);
    std::memcpy(shadow_.data() + offset, src, n);
  }
  template <class T>
  void put(std::size_t offset, T value) {
    write(offset, &value, sizeof(T));
  }
  // What the side under test is allowed to write: only the shadow, checked by same().
  template <class T>
  void expect(std::size_t offset, T value) {
    std::memcpy(shadow_.data() + offset, &value, sizeof(T));
  }
  void expect_bytes(std::size_t offset, const void* src, std::size_t n) {
    if (n == 0) return;  // src may be null
    std::memcpy(shadow_.data() + offset, src, n);
  }
  template <class T>
  T get(std::size_t offset) const {
    T value;
    std::memcpy(&value, shadow_.data() + offset, sizeof(T));
    return value;
  }
  const std::byte* real_at(std::size_t offset) const { return real_.get() + offset; }
  bool same() const { return std::memcmp(real_.get(), shadow_.data(), bytes_) == 0; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  RingGeometry g_;
  std::size_t bytes_;
  std::unique_ptr<std::byte, Free> real_;
  std::vector<std::byte> shadow_;
};

// The consumer as spsc_ring.h specifies it.
struct ConsumerModel {
  uint64_t head = 0;
  uint64_t tail_cache = 0;
  bool corrupt = false;

  bool refresh(const Memory& m) {
    if (corrupt) return false;
    const uint64_t tail = m.get<uint64_t>(kTailOffset);
    if (tail < head || tail - head > m.geometry().capacity) {
      corrupt = true;
      return false;
    }
    tail_cache = tail;
    return tail != head;
  }
  RingConsumer::Pop pop(const Memory& m, uint32_t* length) {
    if (corrupt) return RingConsumer::Pop::kCorrupt;
    if (head == tail_cache && !refresh(m)) {
      return corrupt ? RingConsumer::Pop::kCorrupt : RingConsumer::Pop::kEmpty;
    }
    *length = m.get<uint32_t>(m.slot_offset(head));
    if (*length > m.geometry().slot_bytes - kSlotHeaderBytes) {
      corrupt = true;
      return RingConsumer::Pop::kCorrupt;
    }
    ++head;
    return RingConsumer::Pop::kOk;
  }
  bool empty(const Memory& m) { return head == tail_cache && !refresh(m) && !corrupt; }
};

// The producer as spsc_ring.h specifies it.
struct ProducerModel {
  uint64_t tail = 0;
  uint64_t head_cache = 0;
  bool corrupt = false;

  bool has_room(const Memory& m) {
    const uint32_t capacity = m.geometry().capacity;
    if (tail - head_cache < capacity) return true;
    if (corrupt) return false;
    const uint64_t head = m.get<uint64_t>(kHeadOffset);
    if (head > tail || tail - head > capacity) {
      corrupt = true;
      return false;
    }
    head_cache = head;
    return tail - head < capacity;
  }
};

// n bytes of the input, padded with 0x5a where it runs out.
void fill(Reader& in, std::byte* dst, std::size_t n) {
  if (n == 0) return;  // dst may be an empty vector's null data()
  const std::span<const uint8_t> bytes = in.bytes(n);
  if (!bytes.empty()) std::memcpy(dst, bytes.data(), bytes.size());
  std::memset(dst + bytes.size(), 0x5a, n - bytes.size());
}

// A peer's write that any op may make, whichever side is under test. False: not one of those.
bool peer_write(Op op, Reader& in, Memory& m, std::size_t peer_offset, std::size_t own_offset) {
  const RingGeometry& g = m.geometry();
  const uint64_t peer = m.get<uint64_t>(peer_offset);
  switch (op) {
    case Op::kSetPeerIndex:
      m.put(peer_offset, in.integral<uint64_t>());
      return true;
    case Op::kStepPeerIndex:
      m.put(peer_offset, peer + in.in_range<uint64_t>(0, 2 * g.capacity + 1));
      return true;
    case Op::kRewindPeerIndex:
      m.put(peer_offset, peer - in.in_range<uint64_t>(1, g.capacity + 1));
      return true;
    case Op::kSetOwnIndex:
      m.put(own_offset, in.integral<uint64_t>());
      return true;
    case Op::kSetLength:
      m.put(m.slot_offset(in.integral<uint32_t>()), in.integral<uint32_t>());
      return true;
    case Op::kWritePayload: {
      const std::size_t slot = m.slot_offset(in.integral<uint32_t>()) + kSlotHeaderBytes;
      const std::size_t max = g.slot_bytes - kSlotHeaderBytes;
      const std::size_t at = in.in_range<uint16_t>(0, static_cast<uint16_t>(max - 1));
      const std::span<const uint8_t> bytes =
          in.bytes(in.in_range<uint16_t>(0, static_cast<uint16_t>(max - at)));
      m.write(slot + at, bytes.data(), bytes.size());
      return true;
    }
    case Op::kScribble: {
      const std::size_t at = in.in_range<uint32_t>(0, static_cast<uint32_t>(m.bytes() - 1));
      const std::span<const uint8_t> bytes = in.bytes(std::min(kMaxScribbleBytes, m.bytes() - at));
      m.write(at, bytes.data(), bytes.size());
      return true;
    }
    default:
      return false;
  }
}

void run_consumer(Reader& in, Memory& m) {
  RingConsumer consumer(m.base(), m.geometry());
  ConsumerModel model;
  const uint32_t max_payload = m.geometry().slot_bytes - kSlotHeaderBytes;
  FUZZ_CHECK(consumer.max_payload() == max_payload, "max_payload() is slot_bytes - 8");
  // Exactly max_payload() bytes on the heap: a longer copy is an ASan report.
  std::vector<std::byte> out(max_payload);
  for (int i = 0; i < kMaxOps && in.remaining() > 0; ++i) {
    const Op op = next_op(in);
    if (peer_write(op, in, m, kTailOffset, kHeadOffset)) continue;
    if (op == Op::kPeerStep) {  // a producer that keeps the protocol publishes up to 3 messages
      const int n = in.in_range<uint8_t>(1, 3);
      for (int k = 0; k < n; ++k) {
        const uint64_t tail = m.get<uint64_t>(kTailOffset);
        if (tail - m.get<uint64_t>(kHeadOffset) >= m.geometry().capacity) break;  // full
        const uint32_t length = in.in_range<uint16_t>(0, static_cast<uint16_t>(max_payload));
        std::vector<std::byte> payload(length);
        fill(in, payload.data(), length);
        m.write(m.slot_offset(tail) + kSlotHeaderBytes, payload.data(), length);
        m.put(m.slot_offset(tail), length);
        m.put(kTailOffset, tail + 1);
      }
    } else if (op == Op::kCall) {
      std::memset(out.data(), 0xee, out.size());
      const uint64_t head_before = model.head;
      uint32_t want_length = 0;
      const RingConsumer::Pop want = model.pop(m, &want_length);
      uint32_t length = 0xdeadbeef;
      const RingConsumer::Pop got = consumer.try_pop(out, &length);
      FUZZ_CHECK(got == want, "try_pop() agrees with the model");
      if (got == RingConsumer::Pop::kOk) {
        FUZZ_CHECK(length == want_length, "the popped length is the slot's");
        const std::byte* slot = m.real_at(m.slot_offset(head_before) + kSlotHeaderBytes);
        FUZZ_CHECK(std::memcmp(out.data(), slot, length) == 0, "the popped bytes are the slot's");
        for (std::size_t b = length; b < out.size(); ++b) {
          FUZZ_CHECK(out[b] == std::byte{0xee}, "nothing past the message is written");
        }
        m.expect(kHeadOffset, model.head);  // release store of the new head
      }
    } else {
      FUZZ_CHECK(consumer.empty() == model.empty(m), "empty() agrees with the model");
    }
    FUZZ_CHECK(consumer.corrupt() == model.corrupt, "corrupt() agrees with the model (sticky)");
    FUZZ_CHECK(m.same(), "the consumer wrote only its head");
  }
}

void run_producer(Reader& in, Memory& m) {
  RingProducer producer(m.base(), m.geometry());
  ProducerModel model;
  const uint32_t max_payload = m.geometry().slot_bytes - kSlotHeaderBytes;
  FUZZ_CHECK(producer.max_payload() == max_payload, "max_payload() is slot_bytes - 8");
  for (int i = 0; i < kMaxOps && in.remaining() > 0; ++i) {
    const Op op = next_op(in);
    if (peer_write(op, in, m, kHeadOffset, kTailOffset)) continue;
    if (op == Op::kPeerStep) {  // a consumer that keeps the protocol takes up to 3 messages
      const uint64_t head = m.get<uint64_t>(kHeadOffset);
      const uint64_t tail = m.get<uint64_t>(kTailOffset);
      const uint64_t pending = tail >= head ? tail - head : 0;
      m.put(kHeadOffset,
            head + in.in_range<uint8_t>(0, static_cast<uint8_t>(std::min<uint64_t>(3, pending))));
    } else if (op == Op::kCall) {
      // Up to a line past max_payload(): those must be refused, writing nothing.
      const uint32_t length = in.in_range<uint16_t>(0, static_cast<uint16_t>(max_payload + 64));
      std::vector<std::byte> payload(length);
      fill(in, payload.data(), length);
      const bool want = length <= max_payload && model.has_room(m);
      FUZZ_CHECK(producer.try_push(payload.data(), length) == want,
                 "try_push() agrees with the model");
      if (want) {
        const std::size_t slot = m.slot_offset(model.tail);
        m.expect(slot, length);
        m.expect_bytes(slot + kSlotHeaderBytes, payload.data(), length);
        m.expect(kTailOffset, ++model.tail);
      }
    } else {  // claim() twice, write into the span, publish()
      const bool want = model.has_room(m);
      const std::span<std::byte> span = producer.claim();
      FUZZ_CHECK(span.empty() != want, "claim() agrees with the model");
      if (want) {
        const std::size_t slot = m.slot_offset(model.tail);
        FUZZ_CHECK(span.data() == m.base() + slot + kSlotHeaderBytes && span.size() == max_payload,
                   "claim() hands out exactly the next slot's payload");
        FUZZ_CHECK(producer.claim().data() == span.data(), "claiming again gives the same slot");
        const uint32_t length = in.in_range<uint16_t>(0, static_cast<uint16_t>(max_payload));
        fill(in, span.data(), length);
        m.expect_bytes(slot + kSlotHeaderBytes, span.data(), length);
        producer.publish(length);
        m.expect(slot, length);
        m.expect(kTailOffset, ++model.tail);
      }
    }
    FUZZ_CHECK(producer.corrupt() == model.corrupt, "corrupt() agrees with the model (sticky)");
    FUZZ_CHECK(m.same(), "the producer wrote only its slot and its tail");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Reader in(data, size);
  const RingGeometry g{
      .capacity = 2u << (in.integral<uint8_t>() % kMaxCapacityLog2),
      .slot_bytes = static_cast<uint32_t>(coproc::ring::kCacheLineBytes) *
                    (1 + in.integral<uint8_t>() % kMaxSlotLines),
  };
  const Side side = (in.integral<uint8_t>() & 1) != 0 ? Side::kProducer : Side::kConsumer;
  Memory m(g);
  if (side == Side::kConsumer) {
    run_consumer(in, m);
  } else {
    run_producer(in, m);
  }
  return 0;
}
