// The messages the stress tests send: a sequence number, then bytes derived
// from it, with a length that varies with it. The receiver recomputes both, so
// it checks order, length and content of every message without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace coproc::ring::test_support {

inline constexpr uint32_t kSequenceBytes = sizeof(uint64_t);

// Between kSequenceBytes and max_payload bytes, scattered by a multiplicative hash.
inline uint32_t message_length(uint64_t seq, uint32_t max_payload) {
  const uint64_t spread = (seq * 0x9E3779B97F4A7C15ull) >> 40;
  return kSequenceBytes + static_cast<uint32_t>(spread % (max_payload - kSequenceBytes + 1));
}

inline std::byte message_byte(uint64_t seq, uint32_t i) {
  return static_cast<std::byte>(static_cast<uint8_t>(seq * 131 + i * 7));
}

// Writes message `seq` into dst (at least message_length() bytes); returns its length.
inline uint32_t fill_message(uint64_t seq, std::span<std::byte> dst, uint32_t max_payload) {
  const uint32_t length = message_length(seq, max_payload);
  std::memcpy(dst.data(), &seq, kSequenceBytes);
  for (uint32_t i = kSequenceBytes; i < length; ++i) dst[i] = message_byte(seq, i);
  return length;
}

// True when `got` is exactly message `seq`.
inline bool is_message(uint64_t seq, std::span<const std::byte> got, uint32_t max_payload) {
  if (got.size() != message_length(seq, max_payload)) return false;
  uint64_t got_seq = 0;
  std::memcpy(&got_seq, got.data(), kSequenceBytes);
  if (got_seq != seq) return false;
  bool same = true;
  for (uint32_t i = kSequenceBytes; i < got.size(); ++i) same &= got[i] == message_byte(seq, i);
  return same;
}

}  // namespace coproc::ring::test_support
