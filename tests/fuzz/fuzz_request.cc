// fuzz_request: the bytes of one submission-ring slot through the daemon's admission
// (parse_request, daemon/ingest/request.h) and, when it is admitted, through what the infer
// executor does with a request it runs alone (InferExecutor::run_one): prepare a plan for the
// request's shapes, check the output capacity, run the model zero-copy on the client's arena.
//
// The fixture is the daemon's own: a real ClientSession (memfd segment, a kArenaBytes arena) and
// a ModelSet loaded from tests/fuzz/models (ids: noop, mlp_small, embed, mixed, seq, act; see
// make_models.py). Each input is a slot's payload; the arena holds the input tiled over its
// first kPatternBytes (so tensor values, e.g. the Gather ids of `embed`, are the fuzzer's too)
// and zeros after.
//
// Oracle, beyond "no crash, no hang, no sanitizer report":
//   - an admitted request's tensors all lie inside the arena, each input's byte count is exactly
//     its shape's element count times its dtype's size (computed here without overflow), its
//     dtype is the model's, and the counts of inputs and outputs are the model's;
//   - a refusal has a message, and names the request's id when the bytes are a valid Request;
//   - a run writes nothing in the arena outside the request's output ranges.
// Reads and writes outside the arena are invisible to ASan (the arena is one mapping), which is
// why the ranges are checked here.
//
//   build/fuzz/bin/fuzz_request tests/fuzz/corpus/request
#include <spdlog/spdlog.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coproc/coproc_generated.h"
#include "coproc/kernels/cpu.h"
#include "coproc/runtime/model.h"
#include "fuzz_check.h"
#include "ingest/client_session.h"
#include "ingest/request.h"
#include "models/models.h"

namespace {

using namespace coproc;
using namespace coproc::daemon;

constexpr uint32_t kRingSlots = 8;
constexpr uint32_t kSlotBytes = 1024;  // the daemon's default
constexpr uint32_t kMaxPayloadBytes = kSlotBytes - 8;
constexpr uint64_t kArenaBytes = 256 * 1024;  // a whole number of pages: nothing rounds it up
constexpr std::size_t kPatternBytes = 64 * 1024;
// A run whose plan needs more (scratch, inputs and outputs) is not made: the fuzzer looks for
// bugs, not for the largest model run that fits in memory.
constexpr std::size_t kMaxRunBytes = std::size_t{64} << 20;
// Plans are cached per distinct set of shapes and never evicted; a fresh runtime::Session every
// so many requests keeps a long run's memory flat.
constexpr int kPreparesPerSession = 64;

constexpr const char* kModelNames[] = {"noop", "mlp_small", "embed", "mixed", "seq", "act"};

struct Fixture {
  std::shared_ptr<ClientSession> client;
  ModelSet models;
  std::byte* arena = nullptr;
  std::vector<std::unique_ptr<runtime::Session>> sessions;
  std::vector<int> prepares;
  std::vector<std::byte> before_run;  // the arena as it was before a run
};

Fixture* g_fixture = nullptr;

// The fixture must come up; a failure here is the environment's, not an input's.
template <class T>
T take(Result<T> result, const char* what) {
  if (!result.ok()) {
    std::fprintf(stderr, "fuzz_request: %s: %s\n", what, result.error().message.c_str());
    std::abort();
  }
  return std::move(result.value());
}

Fixture* make_fixture() {
  auto* f = new Fixture;
  f->client = take(ClientSession::create(1, ::getpid(), ::getuid(),
                                         SegmentGeometry{kRingSlots, kSlotBytes, kArenaBytes},
                                         /*numa_node=*/-1),
                   "cannot create a client session");
  Config config;
  for (const char* name : kModelNames) {
    ModelConfig m;
    m.name = name;
    m.path = std::string(COPROC_FUZZ_MODELS_DIR "/") + name + ".onnx";
    config.models.push_back(std::move(m));
  }
  f->models = take(ModelSet::load(config), "cannot load the models");
  f->arena = f->client->arena_range(0, kArenaBytes);
  FUZZ_CHECK(f->arena != nullptr && f->client->arena_range(0, kArenaBytes + 1) == nullptr,
             "the arena is exactly kArenaBytes");
  f->sessions.resize(f->models.size());
  f->prepares.assign(f->models.size(), 0);
  f->before_run.resize(kArenaBytes);
  return f;
}

bool inside_arena(const Fixture& f, const void* p, uint64_t bytes) {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= f.arena && b <= f.arena + kArenaBytes &&
         bytes <= static_cast<uint64_t>(f.arena + kArenaBytes - b);
}

// The element count of `shape`, or -1 past 2^62: no overflow, whatever the dims.
int64_t checked_elements(const runtime::Shape& shape) {
  constexpr uint64_t kLimit = uint64_t{1} << 62;
  uint64_t n = 1;
  for (int32_t d = 0; d < shape.rank; ++d) {
    const int64_t dim = shape.dims[static_cast<std::size_t>(d)];
    if (dim < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(dim), &n) || n > kLimit) {
      return -1;
    }
  }
  return static_cast<int64_t>(n);
}

// Session::run requires outputs that overlap neither the inputs nor each other (model.h);
// parse_request refuses such requests (found here: regressions/request/output_overlaps_input).
bool overlaps(const void* a, uint64_t a_bytes, const void* b, uint64_t b_bytes) {
  const auto* x = static_cast<const std::byte*>(a);
  const auto* y = static_cast<const std::byte*>(b);
  return a_bytes > 0 && b_bytes > 0 && x < y + b_bytes && y < x + a_bytes;
}

bool has_overlapping_output(const WorkItem& w, const runtime::Plan& p) {
  for (uint32_t j = 0; j < w.n_outputs; ++j) {
    for (uint32_t i = 0; i < w.n_inputs; ++i) {
      const uint64_t in_bytes = static_cast<uint64_t>(checked_elements(w.input_shapes[i])) *
                                runtime::dtype_bytes(w.model->model->inputs()[i].dtype);
      if (overlaps(w.outputs[j], p.output_bytes(j), w.inputs[i], in_bytes)) return true;
    }
    for (uint32_t k = 0; k < j; ++k) {
      if (overlaps(w.outputs[j], p.output_bytes(j), w.outputs[k], p.output_bytes(k))) return true;
    }
  }
  return false;
}

// ------------------------------------------------------------------ oracle and run

void check_admitted(const Fixture& f, const WorkItem& w) {
  FUZZ_CHECK(w.model != nullptr && w.session == f.client.get(), "the item names model and client");
  const auto& in_specs = w.model->model->inputs();
  const auto& out_specs = w.model->model->outputs();
  FUZZ_CHECK(w.n_inputs == in_specs.size() && w.n_outputs == out_specs.size(),
             "tensor counts are the model's");
  FUZZ_CHECK(w.priority <= 3, "priority is one of the four");
  for (uint32_t i = 0; i < w.n_inputs; ++i) {
    const runtime::Shape& s = w.input_shapes[i];
    FUZZ_CHECK(s.rank >= 0 && s.rank <= runtime::kMaxRank, "input rank");
    const int64_t elements = checked_elements(s);
    FUZZ_CHECK(elements >= 0, "an admitted input's element count fits in 62 bits");
    const uint64_t bytes =
        static_cast<uint64_t>(elements) * runtime::dtype_bytes(in_specs[i].dtype);
    FUZZ_CHECK(bytes <= kArenaBytes, "an admitted input is no larger than the arena");
    FUZZ_CHECK(inside_arena(f, w.inputs[i], bytes), "an admitted input lies inside the arena");
  }
  for (uint32_t j = 0; j < w.n_outputs; ++j) {
    FUZZ_CHECK(inside_arena(f, w.outputs[j], w.output_bytes[j]),
               "an admitted output lies inside the arena");
  }
}

// A message that verifies as a Request has a readable id: its refusal must carry it.
void check_refusal(const Rejection& r, const uint8_t* data, std::size_t size) {
  FUZZ_CHECK(!r.message.empty(), "a refusal says why");
  flatbuffers::Verifier verifier(data, size);
  if (verifier.VerifyBuffer<fb::Request>(nullptr)) {
    FUZZ_CHECK(r.id_known && r.id == flatbuffers::GetRoot<fb::Request>(data)->id(),
               "the refusal of a well-formed Request names its id");
  }
}

// What InferExecutor::run_one does with an admitted request.
void run_alone(Fixture& f, WorkItem& w) {
  const uint32_t id = w.model->id;
  if (!f.sessions[id] || ++f.prepares[id] > kPreparesPerSession) {
    f.sessions[id] = w.model->cpu->open_session();  // the CPU placement ModelSet made
    f.prepares[id] = 0;
  }
  runtime::Session& session = *f.sessions[id];
  auto plan = session.prepare({w.input_shapes.data(), w.n_inputs});
  if (!plan.ok()) return;
  const runtime::Plan& p = *plan.value();
  if (p.peak_bytes() > kMaxRunBytes) return;
  for (uint32_t j = 0; j < w.n_outputs; ++j) {
    if (w.output_bytes[j] < p.output_bytes(j)) return;  // refused for its capacity
  }
  FUZZ_CHECK(!has_overlapping_output(w, p), "an admitted output overlaps no input or output");
  std::memcpy(f.before_run.data(), f.arena, kArenaBytes);
  const Status run = session.run(p, {w.inputs.data(), w.n_inputs}, {w.outputs.data(), w.n_outputs});
  (void)run;  // an error (e.g. a Gather id out of range) is an answer like any other
  // Every byte a run changed must belong to one of the outputs it was given.
  std::vector<bool> writable(kArenaBytes, false);
  for (uint32_t j = 0; j < w.n_outputs; ++j) {
    const std::size_t at =
        static_cast<std::size_t>(static_cast<std::byte*>(w.outputs[j]) - f.arena);
    for (std::size_t b = 0; b < p.output_bytes(j); ++b) writable[at + b] = true;
  }
  for (std::size_t b = 0; b < kArenaBytes; ++b) {
    if (!writable[b]) FUZZ_CHECK(f.arena[b] == f.before_run[b], "a run wrote outside its outputs");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  kernels::cpu::set_threads(1);
  g_fixture = make_fixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size > kMaxPayloadBytes) return -1;  // the ring never delivers more: not worth keeping
  Fixture& f = *g_fixture;
  if (size == 0) std::memset(f.arena, 0, kPatternBytes);
  for (std::size_t at = 0; size > 0 && at < kPatternBytes; at += size) {
    std::memcpy(f.arena + at, data, std::min(size, kPatternBytes - at));
  }
  std::memset(f.arena + kPatternBytes, 0, kArenaBytes - kPatternBytes);

  // libFuzzer's buffer is exactly `size` bytes on the heap: a read past the message is an ASan
  // report here, where the daemon's slot copy would hide it.
  Parsed parsed;
  WorkItem work;
  const ParseKind kind = parse_request({reinterpret_cast<const std::byte*>(data), size}, *f.client,
                                       f.models, /*now_ticks=*/1, &parsed, &work);
  switch (kind) {
    case ParseKind::kWork:
      check_admitted(f, work);
      run_alone(f, work);
      break;
    case ParseKind::kCancel:
      break;
    case ParseKind::kRejected:
      check_refusal(parsed.rejection, data, size);
      break;
  }
  return 0;
}
