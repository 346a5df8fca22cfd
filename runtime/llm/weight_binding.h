// Shared by the architecture loaders: reading the common "<arch>.*" hyperparameters and binding
// named tensors with the shape and types a forward pass expects, refusing anything else with a
// message that names the key or the tensor.
#pragma once

#include <string>

#include "coproc/base/result.h"
#include "llm/gguf.h"
#include "llm/model.h"

namespace coproc::llm {

// Reads block_count, embedding_length, attention.head_count(_kv), feed_forward_length,
// context_length, rope.dimension_count, rope.freq_base and attention.layer_norm_rms_epsilon under
// `prefix`, and checks them against each other and against bounds far above any real model.
Status read_hparams(const GgufFile& file, std::string_view prefix, Hparams* hp);

class WeightBinder {
 public:
  WeightBinder(const GgufFile& file, Weights* w) : file_(file), w_(w) {}
  // A 2-D tensor of `cols` (dims[0]) by `rows` (dims[1]; -1: any) in a supported type. F16 and
  // BF16 matrices are converted to owned F32.
  Result<Matrix> matrix(const std::string& name, int64_t cols, int64_t rows);
  // A 1-D tensor of n floats (F32, or F16/BF16 converted).
  Result<const float*> vector(const std::string& name, int64_t n);
  // Refuses a matrix the matrix kernels cannot multiply (a supported type they lack).
  Status check_matmul(const Matrix& m) const;

 private:
  Result<const TensorInfo*> find(const std::string& name) const;
  const float* to_f32(const TensorInfo& t);
  // The kernels' packed copy of a quantized matrix (Weights::packed owns it); nullptr otherwise.
  const void* pack(const Matrix& m);

  const GgufFile& file_;
  Weights* w_;
};

}  // namespace coproc::llm
