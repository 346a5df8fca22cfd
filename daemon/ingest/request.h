// Turning the bytes a client pushed into its submission ring into work the
// daemon can run. The bytes are a private copy (the ring consumer copies a
// slot out before anything reads it), so nothing can change under the
// checks: the flatbuffer is verified, every TensorRef is bounds-checked
// against the client's arena, and dtypes, ranks, byte sizes and shapes are
// checked against the model. A request that fails gets an error Completion
// with a message naming what was wrong.
//
// All of a request's validation is here: a WorkItem that leaves ingest is
// fully checked against its model, and nothing downstream (the dispatcher, an
// executor) checks client data again. What stays for later is what only a run
// can tell (whether the outputs its plan computes fit where the request said)
// and the operator's limits (limits.max_request_rows, queue_limit) at admission.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coproc/base/result.h"
#include "coproc/runtime/model.h"
#include "ingest/client_session.h"

namespace coproc::daemon {

class ModelSet;
struct LoadedModel;

inline constexpr uint32_t kMaxTensorsPerRequest = 16;

// Set by the dispatcher on its copy of a request that runs in chunks (more rows
// than the model's max_batch): which rows this copy is, and what the earlier
// chunks took, for the one completion the request gets.
struct ChunkOf {
  uint64_t ticket = 0;     // the request's place in the dispatcher
  int64_t first_row = 0;   // the copy's inputs start at this row of the request's
  int64_t total_rows = 0;  // the request's rows; 0: not a chunk, the whole request
  bool last = true;        // the request completes with this chunk
  // Over the chunks that ran before this one:
  uint64_t first_start_ticks = 0;  // CycleClock, when the first started (0: none ran)
  uint64_t exec_ns = 0;
  uint32_t batch_rows = 0;  // the largest batch one ran in
  int64_t rows_done = 0;    // rows they wrote
};

// A verified inference request; pointers are into the client's arena. The
// poller reuses one WorkItem for every request it reads (the hot path builds
// nothing); only a request queued for the executor thread is copied, and the
// copy pins its client with keep_alive.
struct WorkItem {
  ClientSession* session = nullptr;
  std::shared_ptr<ClientSession> keep_alive;  // set only while queued
  const LoadedModel* model = nullptr;
  uint64_t id = 0;
  uint8_t priority = 0;
  uint64_t deadline_ns = 0;
  uint64_t received_ticks = 0;  // CycleClock, when the poller read it
  uint32_t n_inputs = 0;
  uint32_t n_outputs = 0;
  std::array<runtime::Shape, kMaxTensorsPerRequest> input_shapes{};
  std::array<const void*, kMaxTensorsPerRequest> inputs{};
  std::array<void*, kMaxTensorsPerRequest> outputs{};
  std::array<uint64_t, kMaxTensorsPerRequest> output_bytes{};
  // Along the model's variable-length dim (dim 1 of the inputs where it is dynamic), the
  // same in all of them; 0 when the model has none.
  int64_t length = 0;
  ChunkOf chunk;  // the dispatcher's; the poller leaves it default
};

// Rows of a request: dim 0 of its first input (1 for a scalar input).
inline int64_t request_rows(const WorkItem& item) {
  return item.input_shapes[0].rank > 0 ? item.input_shapes[0].dims[0] : 1;
}

struct CancelItem {
  uint64_t target_id = 0;
};

// A request refused before it runs. `id_known` is false only when the bytes
// are so broken that not even the id could be read: nothing can be answered.
struct Rejection {
  uint64_t id = 0;
  bool id_known = false;
  ErrorCode code = ErrorCode::kInvalidArgument;
  std::string message;
  // Refused for its shapes against this model (rank, batch dim, length, a fixed dim, no rows):
  // the model's stats count it (rejected_invalid and the completion), as they always have;
  // null for a request refused before its shapes were checked.
  const LoadedModel* counted_against = nullptr;
};

enum class ParseKind { kWork, kCancel, kRejected };

// What one message turned out to be besides work; reused across messages.
struct Parsed {
  CancelItem cancel;    // kCancel
  Rejection rejection;  // kRejected
};

// now_ticks: CycleClock::now() when the message was read. kWork fills *work
// (which the caller reuses: the hot path constructs nothing).
ParseKind parse_request(std::span<const std::byte> bytes, ClientSession& session,
                        const ModelSet& models, uint64_t now_ticks, Parsed* out, WorkItem* work);

}  // namespace coproc::daemon
