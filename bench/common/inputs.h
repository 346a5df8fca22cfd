// The inputs every coproc-bench command feeds a model: their shapes and their values. One rule for
// all commands (and, through the files coproc-bench writes for it, for tools/ort_worker.py), so
// every side of a comparison runs on the same tensors.
//
// Shapes: in each tensor's declared dims, -1 marks a dynamic dim. The first dynamic dim of a
// tensor is the batch, the second the sequence length (seq), any further one 1. Fixed dims stay.
// So input_ids [-1, -1] at batch 32, seq 128 is [32, 128]; the mlp's x [-1, 256] is [32, 256] and
// has no seq. Outputs follow the same rule (a client must size their buffers before the daemon
// answers).
//
// Values, from a fixed seed per input (its index), by dtype:
//   float32              uniform in [-1, 1]
//   int64, int32         all ones if the input's name contains "mask" (an attention mask that
//                        masks nothing), else uniform integers in [0, 1000): valid token ids for
//                        BERT-family vocabularies (30522 for MiniLM)
//   bool                 true
//   anything else        zero
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace coproc::bench {

struct ShapeRule {
  int64_t batch = 1;
  int64_t seq = 1;
};

// `declared` with its dynamic dims set by `rule`.
std::vector<int64_t> resolve_dims(std::span<const int64_t> declared, const ShapeRule& rule);

// True when `declared` has a second dynamic dim, which the benchmark's seq sets.
bool has_seq_dim(std::span<const int64_t> declared);

// Fills `data` (a dense tensor of `dtype`, numbered as coproc_dtype / runtime::DType) with the
// values above for input number `index`, named `name`.
void fill_input(int dtype, std::string_view name, std::size_t index, std::span<std::byte> data);

}  // namespace coproc::bench
