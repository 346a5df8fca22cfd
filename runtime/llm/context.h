// A Context runs one Model on batches of (sequence, position, token) entries: it owns the KV
// cache of its sequences and the activation buffers. A model is shared by any number of
// contexts; a context is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "coproc/base/result.h"
#include "llm/batch.h"
#include "llm/device.h"
#include "llm/kv_cache.h"
#include "llm/model.h"

namespace coproc::llm {

struct ContextOptions {
  int64_t kv_tokens = 4096;           // KV cache capacity over all sequences, in tokens
  int32_t max_context = 0;            // longest sequence; 0: the model's training context
  int32_t max_step_tokens = 512;      // entries run per forward call; longer batches are split
  DeviceChoice device;                // where the forward pass runs: the CPU unless told
};

class Context {
 public:
  // A context on the CPU, which cannot fail; options.device must say the CPU (create() opens the
  // others).
  Context(std::shared_ptr<const Model> model, ContextOptions options);
  // A context on options.device: kUnavailable when that device cannot be opened or cannot hold
  // the model and its KV cache, saying why.
  static Result<std::unique_ptr<Context>> create(std::shared_ptr<const Model> model,
                                                 ContextOptions options);

  const Model& model() const { return *model_; }
  KvCache& kv() { return kv_; }
  const KvCache& kv() const { return kv_; }
  const LlmDevice& device() const { return *device_; }
  int32_t max_context() const { return max_context_; }

  Status add_sequence(SeqId seq) { return kv_.add_sequence(seq); }
  void remove_sequence(SeqId seq) { kv_.remove_sequence(seq); }

  // Runs the batch. Checks it first (batch.h's contract, tokens in the vocabulary, positions below
  // max_context) and reserves the KV blocks of every sequence in it, all or nothing: on an error
  // nothing changed. *logits receives batch.n_logits() rows of n_vocab floats, in entry order.
  // A device failure while running is kInternal; the sequences' KV is then unspecified.
  Status decode(const Batch& batch, std::vector<float>* logits);

 private:
  Context(std::shared_ptr<const Model> model, ContextOptions options, bool host_kv);
  Status check(const Batch& batch) const;

  std::shared_ptr<const Model> model_;
  ContextOptions options_;
  int32_t max_context_;
  KvCache kv_;
  std::unique_ptr<LlmDevice> device_;
  Batch chunk_;
};

}  // namespace coproc::llm
