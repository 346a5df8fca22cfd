// Building and pushing Completions. Every accepted request gets exactly one,
// through send_completion(); the caller's thread builds it in a thread-local
// flatbuffer builder, so any thread may answer any client.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "coproc/base/result.h"
#include "coproc/runtime/model.h"
#include "ingest/client_session.h"

namespace coproc::daemon {

struct CompletionTiming {
  uint64_t queue_ns = 0;
  uint64_t exec_ns = 0;
  uint32_t batch_size = 0;
};

// Returns false when the completion was dropped (client closed, ring full).
// wake = false leaves waking the client to the caller (ClientSession::wake).
bool send_completion(ClientSession& session, uint64_t id, ErrorCode code, std::string_view message,
                     std::span<const runtime::Shape> output_shapes, const CompletionTiming& timing,
                     bool wake = true);

inline bool send_error(ClientSession& session, uint64_t id, ErrorCode code,
                       std::string_view message) {
  return send_completion(session, id, code, message, {}, {});
}

}  // namespace coproc::daemon
