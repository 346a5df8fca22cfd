// A decoder LLM loaded from a GGUF file: its hyperparameters and its weights, immutable once
// loaded and shared by every context that runs it (per-sequence state lives in KvCache and
// Context, never here).
//
// The weights are views into the mapped file; only tensors stored in a float type we run through
// float kernels (F16, BF16 norms and matrices) are converted once into owned F32 copies.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "coproc/base/result.h"
#include "llm/ggml_types.h"
#include "llm/gguf.h"

namespace coproc::llm {

class Architecture;
class Vocab;

// What the forward pass needs to know about the network; read from "<arch>.*" keys.
struct Hparams {
  std::string arch;          // general.architecture
  int32_t n_layer = 0;       // <arch>.block_count
  int32_t n_embd = 0;        // <arch>.embedding_length
  int32_t n_head = 0;        // <arch>.attention.head_count
  int32_t n_head_kv = 0;     // <arch>.attention.head_count_kv (grouped-query attention)
  int32_t head_dim = 0;      // n_embd / n_head
  int32_t n_ff = 0;          // <arch>.feed_forward_length
  int32_t n_vocab = 0;       // rows of the output head
  int32_t n_ctx_train = 0;   // <arch>.context_length
  int32_t rope_dim = 0;      // <arch>.rope.dimension_count (defaults to head_dim)
  float rope_freq_base = 0;  // <arch>.rope.freq_base (defaults to 10000, as the format says)
  float rms_eps = 0;         // <arch>.attention.layer_norm_rms_epsilon
};

// A weight matrix [rows, cols]: `rows` output features, each a row of `cols` inputs in `type`'s
// blocks. Quantized types are viewed in place (data: rows looked up, as the embedding is) and
// packed once into the layout the matrix kernels stream (packed: kernels/cpu quant_matmul.h);
// float types point at an owned F32 copy.
struct Matrix {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;
  const void* packed = nullptr;  // quantized types only
  int64_t rows = 0;
  int64_t cols = 0;
  std::string_view name;
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  Matrix wq, wk, wv, wo;
  const float* ffn_norm = nullptr;
  Matrix gate, up, down;
};

struct Weights {
  Matrix token_embd;            // [n_vocab, n_embd]: rows are looked up, never multiplied
  const float* output_norm = nullptr;
  Matrix output;                // the output head; token_embd itself when tied
  bool tied_output = false;
  std::vector<LayerWeights> layers;
  std::vector<std::vector<float>> owned;  // F32 copies of float tensors stored as F16/BF16
  struct FreeBytes {
    void operator()(void* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<void, FreeBytes>> packed;  // every Matrix::packed, 64-byte aligned
};

class Model {
 public:
  // Maps the file, checks that its architecture is one we run and that every tensor it needs
  // is present with the right shape and a supported type (an unsupported one is refused naming
  // the tensor and the type), and reads the vocabulary (vocab.h).
  static Result<std::shared_ptr<const Model>> load(const std::string& path);
  ~Model();

  const Hparams& hparams() const { return hparams_; }
  const Weights& weights() const { return weights_; }
  const Architecture& arch() const { return *arch_; }
  const Vocab& vocab() const { return *vocab_; }
  const GgufFile& file() const { return *file_; }
  // Bytes of weights one forward step reads (every matrix once, the output head included).
  int64_t weight_bytes_per_step() const;

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  Hparams hparams_;
  Weights weights_;
  const Architecture* arch_ = nullptr;
  std::unique_ptr<Vocab> vocab_;
};

}  // namespace coproc::llm
