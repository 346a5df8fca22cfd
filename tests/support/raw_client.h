// A client that speaks the wire protocol by hand, without libcoproc, so tests
// can send what a hostile or broken client would: garbage bytes, requests
// pointing outside the arena, wrong versions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coproc/ring/spsc_ring.h"
#include "coproc/segment.h"

namespace coproc::test {

struct RawCompletion {
  uint64_t id = 0;
  int status = 0;
  std::string message;
};

class RawClient {
 public:
  // Connects with the given protocol version; check hello_status() after.
  RawClient(const std::string& socket_path, uint32_t protocol_version = wire::kProtocolVersion);
  ~RawClient();

  int hello_status() const { return reply_.status; }
  std::string hello_message() const { return reply_.message; }
  bool connected() const { return segment_ != nullptr; }
  uint64_t arena_bytes() const { return arena_bytes_; }
  const wire::RegistryHeader& registry() const {
    return *static_cast<const wire::RegistryHeader*>(registry_);
  }
  std::byte* arena() const { return arena_; }

  bool push(std::span<const uint8_t> bytes);
  // Writes the shared submission tail directly, as a hostile client could,
  // and rings the doorbell.
  void scribble_submission_tail(uint64_t value);
  // True once the daemon closed our control socket (within timeout_ms).
  bool closed_by_daemon(int timeout_ms);
  // Waits up to timeout_ms for the next completion.
  std::optional<RawCompletion> next_completion(int timeout_ms);

 private:
  int fd_ = -1;
  wire::HelloReply reply_{};
  int fds_[wire::kHelloFdCount] = {-1, -1, -1, -1};
  void* segment_ = nullptr;
  std::size_t segment_bytes_ = 0;
  const void* registry_ = nullptr;
  std::size_t registry_bytes_ = 0;
  void* doorbell_ = nullptr;
  std::byte* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  ring::RingProducer submissions_;
  ring::RingConsumer completions_;
};

// A connection to the daemon's socket that says nothing (no hello); -1 if connect failed.
int connect_silently(const std::string& path);

// A well-formed Request flatbuffer with one input and one output TensorRef.
std::vector<uint8_t> make_request(uint64_t id, uint32_t model_id, uint64_t in_offset,
                                  uint64_t in_bytes, std::vector<int64_t> in_shape,
                                  uint64_t out_offset, uint64_t out_bytes, uint8_t dtype = 1,
                                  uint8_t kind = 0);

}  // namespace coproc::test
