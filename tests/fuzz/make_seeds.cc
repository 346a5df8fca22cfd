// fuzz_make_seeds: writes the seed inputs of fuzz_request and fuzz_ring; the outputs are
// committed, so this runs only when they should change:
//
//   cmake --build build/fuzz --target fuzz_make_seeds
//   build/fuzz/bin/fuzz_make_seeds tests/fuzz/corpus
//
// corpus/request: one ring slot's payload each: well-formed Requests for every model of
// fuzz_request's table (tests/fuzz/models, ids in make_models.py's order) at a few batch sizes,
// and near misses, each wrong in one way (dtype, rank, size, offset, alignment, model id,
// priority, kind, tensor count), plus cancels and bytes that are not a Request.
// corpus/ring: programs in fuzz_ring's input format (see fuzz_ring.cc), for both sides: normal
// traffic, wrap-around, a full ring, and each kind of peer lie.
#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "coproc/coproc_generated.h"

namespace {

namespace fs = std::filesystem;
namespace fb = coproc::fb;

// fuzz_request.cc's fixture: the arena's first 64 KiB hold the input tiled, zeros after.
constexpr uint64_t kArenaBytes = 256 * 1024;
constexpr uint64_t kZeroedOffset = 64 * 1024;

void write_file(const fs::path& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "fuzz_make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// ---------------------------------------------------------------- requests

struct Tensor {
  std::string name;
  fb::DType dtype;
  std::vector<int64_t> shape;  // inputs only
  uint64_t offset;
  uint64_t bytes;
};

struct Request {
  uint64_t id = 1;
  fb::RequestKind kind = fb::RequestKind::Infer;
  uint32_t model_id = 0;
  fb::Priority priority = fb::Priority::Normal;
  uint64_t deadline_ns = 0;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  uint64_t target_id = 0;
};

std::vector<uint8_t> serialise(const Request& r) {
  flatbuffers::FlatBufferBuilder b(512);
  auto refs = [&](const std::vector<Tensor>& tensors) {
    std::vector<flatbuffers::Offset<fb::TensorRef>> out;
    for (const Tensor& t : tensors) {
      out.push_back(fb::CreateTensorRef(b, b.CreateString(t.name), t.dtype,
                                        t.shape.empty() ? 0 : b.CreateVector(t.shape), t.offset,
                                        t.bytes));
    }
    return b.CreateVector(out);
  };
  const auto inputs = refs(r.inputs);
  const auto outputs = refs(r.outputs);
  b.Finish(fb::CreateRequest(b, r.id, r.kind, r.model_id, r.priority, r.deadline_ns, inputs,
                             outputs, r.target_id));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

uint64_t elements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t size_of(fb::DType dtype) {
  switch (dtype) {
    case fb::DType::Int64:
      return 8;
    case fb::DType::Bool:
    case fb::DType::Int8:
    case fb::DType::UInt8:
      return 1;
    case fb::DType::Float16:
      return 2;
    default:
      return 4;
  }
}

// Lays tensors out one after another from `offset`, 64-byte aligned.
class Layout {
 public:
  explicit Layout(uint64_t offset) : at_(offset) {}
  Tensor input(const std::string& name, fb::DType dtype, std::vector<int64_t> shape) {
    const uint64_t bytes = elements(shape) * size_of(dtype);
    return place(Tensor{name, dtype, std::move(shape), 0, bytes});
  }
  Tensor output(const std::string& name, fb::DType dtype, uint64_t elements) {
    return place(Tensor{name, dtype, {}, 0, elements * size_of(dtype)});
  }

 private:
  Tensor place(Tensor t) {
    t.offset = at_;
    at_ += (t.bytes + 63) / 64 * 64;
    return t;
  }
  uint64_t at_;
};

// A well-formed request for model `id` of fuzz_request's table at batch `n` (and length `len`).
Request valid(uint32_t id, int64_t n, int64_t len, uint64_t offset) {
  Layout l(offset);
  Request r;
  r.id = 100 + id * 10 + static_cast<uint64_t>(n);
  r.model_id = id;
  const auto un = static_cast<uint64_t>(n);
  switch (id) {
    case 0:  // noop: x [N, 16] -> y [N, 16]
      r.inputs = {l.input("x", fb::DType::Float32, {n, 16})};
      r.outputs = {l.output("y", fb::DType::Float32, un * 16)};
      break;
    case 1:  // mlp_small: x [N, 8] -> y [N, 4]
      r.inputs = {l.input("x", fb::DType::Float32, {n, 8})};
      r.outputs = {l.output("y", fb::DType::Float32, un * 4)};
      break;
    case 2:  // embed: ids int64 [N, L] -> y [N, 8]
      r.inputs = {l.input("ids", fb::DType::Int64, {n, len})};
      r.outputs = {l.output("y", fb::DType::Float32, un * 8)};
      break;
    case 3:  // mixed: cond bool, a float32, b int32, all [N, 4] -> y float32, same bool
      r.inputs = {l.input("cond", fb::DType::Bool, {n, 4}),
                  l.input("a", fb::DType::Float32, {n, 4}), l.input("b", fb::DType::Int32, {n, 4})};
      r.outputs = {l.output("y", fb::DType::Float32, un * 4),
                   l.output("same", fb::DType::Bool, un * 4)};
      break;
    case 4:  // seq: x [N, L, 8] -> y [N, L, 8]
      r.inputs = {l.input("x", fb::DType::Float32, {n, len, 8})};
      r.outputs = {l.output("y", fb::DType::Float32, un * static_cast<uint64_t>(len) * 8)};
      break;
    default:  // act: x [N, 8] -> y [N, 8]
      r.inputs = {l.input("x", fb::DType::Float32, {n, 8})};
      r.outputs = {l.output("y", fb::DType::Float32, un * 8)};
      break;
  }
  return r;
}

void write_requests(const fs::path& dir) {
  fs::create_directories(dir);
  auto save = [&](const std::string& name, const Request& r) {
    const std::vector<uint8_t> bytes = serialise(r);
    write_file(dir / (name + ".bin"), bytes.data(), bytes.size());
  };
  const char* names[] = {"noop", "mlp_small", "embed", "mixed", "seq", "act"};
  for (uint32_t id = 0; id < std::size(names); ++id) {
    for (int64_t n : {1, 3}) {
      save(std::string("valid_") + names[id] + "_b" + std::to_string(n),
           valid(id, n, 5, kZeroedOffset));
    }
  }
  save("valid_noop_b0", valid(0, 0, 1, kZeroedOffset));
  save("valid_seq_len0", valid(4, 2, 0, kZeroedOffset));
  // Inside the tiled pattern: ids are the request's own bytes, mostly out of range for Gather.
  save("valid_embed_pattern_ids", valid(2, 2, 4, 0));
  save("valid_mixed_pattern", valid(3, 2, 1, 128));
  save("valid_act_pattern", valid(5, 4, 1, 0));
  save("valid_mlp_at_arena_end", valid(1, 1, 1, kArenaBytes - 64));

  Request r = valid(0, 2, 1, kZeroedOffset);
  r.priority = fb::Priority::Critical;
  r.deadline_ns = 123456789;
  save("valid_noop_critical_deadline", r);
  r = valid(1, 1, 1, kZeroedOffset);
  r.priority = fb::Priority::Low;
  save("valid_mlp_low", r);

  r = valid(0, 1, 1, kZeroedOffset);
  r.inputs[0].dtype = fb::DType::Int32;
  save("bad_dtype", r);
  r = valid(0, 1, 1, kZeroedOffset);
  r.inputs[0].dtype = static_cast<fb::DType>(200);
  save("bad_dtype_unknown", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].shape = {2, 16, 1, 1, 1, 1, 1, 1, 1};
  save("bad_rank9", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].shape = {2, 4, 4};
  save("bad_rank3", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].shape = {2, -16};
  save("bad_negative_dim", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].bytes -= 4;
  save("bad_bytes_short", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].offset = kArenaBytes - 64;
  save("bad_offset_past_arena_end", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].offset = UINT64_MAX - 7;
  save("bad_offset_wraps", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.inputs[0].offset += 2;
  save("bad_offset_misaligned", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.outputs[0].bytes -= 4;
  save("bad_output_too_small", r);
  r = valid(0, 2, 1, kZeroedOffset);
  r.outputs[0].bytes = kArenaBytes;
  save("bad_output_past_arena_end", r);
  r = valid(1, 2, 1, kZeroedOffset);
  r.inputs[0].shape = {2, 9};
  r.inputs[0].bytes = 2 * 9 * 4;
  save("bad_mlp_feature_dim", r);
  r = valid(3, 2, 1, kZeroedOffset);
  r.inputs[2].shape = {3, 4};
  r.inputs[2].bytes = 3 * 4 * 4;
  save("bad_mixed_batch_mismatch", r);
  r = valid(0, 1, 1, kZeroedOffset);
  r.model_id = 99;
  save("bad_model_id", r);
  r = valid(0, 1, 1, kZeroedOffset);
  r.priority = static_cast<fb::Priority>(7);
  save("bad_priority", r);
  r = valid(0, 1, 1, kZeroedOffset);
  r.kind = fb::RequestKind::Generate;
  save("bad_kind_generate", r);
  r = valid(0, 1, 1, kZeroedOffset);
  r.outputs.clear();
  save("bad_no_outputs", r);
  r = valid(0, 1, 1, kZeroedOffset);
  for (int k = 0; k < 16; ++k) r.inputs.push_back(r.inputs[0]);
  save("bad_17_inputs", r);

  Request cancel;
  cancel.id = 7;
  cancel.kind = fb::RequestKind::Cancel;
  cancel.target_id = 101;
  save("cancel", cancel);

  const std::vector<uint8_t> good = serialise(valid(1, 2, 1, kZeroedOffset));
  write_file(dir / "bad_truncated.bin", good.data(), good.size() / 2);
  const char garbage[] = "not a flatbuffer at all";
  write_file(dir / "bad_garbage.bin", garbage, sizeof(garbage) - 1);
  write_file(dir / "bad_empty.bin", "", 0);
}

// ---------------------------------------------------------------- ring programs

// Op numbers and operand encodings of fuzz_ring.cc.
enum Op : uint8_t {
  kSetPeerIndex = 0,
  kStepPeerIndex = 1,
  kRewindPeerIndex = 2,
  kSetOwnIndex = 3,
  kSetLength = 4,
  kWritePayload = 5,
  kScribble = 6,
  kPeerStep = 7,
  kCall = 8,
  kCallOther = 9,
};

class Program {
 public:
  // capacity = 2 << capacity_log2_minus_1, slot = 64 * lines.
  Program(uint8_t capacity_log2_minus_1, uint8_t lines, bool producer) {
    bytes_ = {capacity_log2_minus_1, static_cast<uint8_t>(lines - 1),
              producer ? uint8_t{1} : uint8_t{0}};
  }
  // Peer writes, either side.
  Program& set_peer(uint64_t v) { return op(kSetPeerIndex).le(v); }
  Program& step_peer(uint64_t by) { return op(kStepPeerIndex).le(by); }
  Program& rewind_peer(uint64_t by) { return op(kRewindPeerIndex).le(by); }
  Program& set_own(uint64_t v) { return op(kSetOwnIndex).le(v); }
  Program& set_length(uint32_t slot, uint32_t length) { return op(kSetLength).le(slot).le(length); }
  Program& write_payload(uint32_t slot, uint16_t at, uint16_t n, uint8_t seed) {
    return op(kWritePayload).le(slot).le(at).le(n).payload(n, seed);
  }
  Program& scribble(uint32_t at, uint8_t seed) {
    return op(kScribble).le(at).payload(kScribbleBytes, seed);
  }
  // Consumer side: a well-behaved producer publishes messages of these lengths (at most 3, and
  // only while the ring has room: the caller keeps to that), then the consumer's calls.
  Program& publish(std::initializer_list<uint16_t> lengths) {
    op(kPeerStep).le(static_cast<uint8_t>(lengths.size() - 1));
    uint8_t seed = 1;
    for (uint16_t n : lengths) le(n).payload(n, seed++);
    return *this;
  }
  Program& pop(int times = 1) {
    for (int i = 0; i < times; ++i) op(kCall);
    return *this;
  }
  Program& check_empty() { return op(kCallOther); }
  // Producer side: the producer's calls (claim_publish only while the ring has room), then a
  // well-behaved consumer taking n messages.
  Program& push(uint16_t n) { return op(kCall).le(n).payload(n, 7); }
  Program& claim_publish(uint16_t n) { return op(kCallOther).le(n).payload(n, 9); }
  Program& consume(uint8_t n) { return op(kPeerStep).le(n); }

  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  static constexpr uint16_t kScribbleBytes = 16;  // fuzz_ring's kMaxScribbleBytes

  Program& op(Op o) {
    bytes_.push_back(o);
    return *this;
  }
  template <class T>
  Program& le(T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    return *this;
  }
  Program& payload(uint16_t n, uint8_t seed) {
    for (uint16_t i = 0; i < n; ++i) bytes_.push_back(static_cast<uint8_t>(seed + i));
    return *this;
  }

  std::vector<uint8_t> bytes_;
};

void write_rings(const fs::path& dir) {
  fs::create_directories(dir);
  auto save = [&](const std::string& name, const Program& p) {
    write_file(dir / (name + ".bin"), p.bytes().data(), p.bytes().size());
  };
  // Consumer (the daemon's submission rings). Program(2, 1, ...): 8 slots of 64 bytes.
  save("consumer_basic", Program(2, 1, false).publish({5, 0, 56}).pop(4).check_empty());
  Program wrap(0, 2, false);
  for (int i = 0; i < 6; ++i) wrap.publish({static_cast<uint16_t>(8 * i), 3}).pop(2);
  save("consumer_wrap_around", wrap);
  save("consumer_full_ring", Program(1, 1, false).publish({1, 2, 3}).publish({56}).pop(5));
  save("consumer_max_payload", Program(2, 4, false).publish({248, 0}).pop(2));
  save("consumer_empty_then_publish",
       Program(3, 8, false).check_empty().pop().publish({500, 1}).check_empty().pop(3));
  save("consumer_tail_too_far", Program(2, 1, false).set_peer(100).pop(2).check_empty());
  save("consumer_tail_huge", Program(2, 1, false).set_peer(UINT64_MAX).pop());
  save("consumer_tail_exactly_full", Program(1, 1, false).set_peer(4).pop(5));
  save("consumer_tail_rewound", Program(2, 1, false).publish({4, 4}).pop().rewind_peer(1).pop(3));
  save("consumer_tail_stepped", Program(2, 1, false).step_peer(3).pop(4).step_peer(17).pop(2));
  save("consumer_length_too_big",
       Program(2, 1, false).publish({8}).set_length(0, 0xffffffff).pop(2).check_empty());
  save("consumer_length_just_too_big", Program(2, 1, false).publish({8}).set_length(0, 57).pop());
  save("consumer_length_rewritten",
       Program(2, 2, false).publish({100}).set_length(0, 3).write_payload(0, 0, 3, 0xa0).pop(2));
  save("consumer_own_head_scribbled",
       Program(2, 1, false).publish({4, 4}).set_own(12345).pop(3).check_empty());
  save("consumer_control_scribbled", Program(2, 1, false).publish({16}).scribble(0, 0xf0).pop(2));

  // Producer (the daemon's completion rings).
  save("producer_basic", Program(2, 1, true).push(5).push(0).push(56).consume(3).push(1));
  Program pwrap(0, 2, true);
  for (int i = 0; i < 6; ++i) pwrap.push(static_cast<uint16_t>(8 * i)).push(3).consume(2);
  save("producer_wrap_around", pwrap);
  save("producer_full_ring",
       Program(0, 1, true).push(1).push(2).push(3).consume(1).push(4).push(5));
  save("producer_too_long", Program(2, 1, true).push(57).push(56));
  save("producer_claim_publish",
       Program(2, 2, true).claim_publish(10).claim_publish(0).consume(2).claim_publish(120));
  save("producer_head_ahead",
       Program(1, 1, true).push(1).push(1).push(1).push(1).set_peer(9).push(1).push(1));
  save("producer_head_huge", Program(0, 1, true).push(1).push(1).set_peer(UINT64_MAX).push(1));
  save("producer_head_rewound",
       Program(0, 1, true).push(1).push(1).consume(2).push(1).push(1).rewind_peer(2).push(1));
  save("producer_own_tail_scribbled",
       Program(2, 1, true).push(3).set_own(777).push(4).consume(2).push(5));
  save("producer_control_scribbled", Program(2, 1, true).push(8).scribble(120, 0x33).push(8));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path corpus = argv[1];
  write_requests(corpus / "request");
  write_rings(corpus / "ring");
  return 0;
}
