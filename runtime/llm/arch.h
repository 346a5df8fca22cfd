// An architecture: how a GGUF file's tensors make a network, and its forward pass. Each one is a
// file under arch/ that builds its pass from the pieces of an LlmDevice (device.h), so one file
// runs on every device, and a line in arch/registry.cc. A second architecture is a new file, not
// edits all over.
#pragma once

#include <string_view>

#include "coproc/base/result.h"
#include "llm/batch.h"

namespace coproc::llm {

class GgufFile;
class KvCache;
class Model;
struct Hparams;
struct Weights;
class LlmDevice;

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string_view name() const = 0;
  // Reads the hyperparameters and binds the weights, refusing a missing tensor, a wrong shape
  // or a type we don't run, naming the tensor.
  virtual Status load(const GgufFile& file, Hparams* hp, Weights* w) const = 0;
  // Runs the batch on `dev`: stores every entry's key and value in the device's cache (whose
  // blocks the caller reserved in `kv`) and writes batch.n_logits() rows of hp.n_vocab logits, in
  // entry order. Fails only when the device does (kInternal).
  virtual Status forward(const Model& model, const Batch& batch, KvCache& kv, LlmDevice& dev,
                         float* logits) const = 0;
};

// The architecture named `general.architecture`, or nullptr.
const Architecture* find_architecture(std::string_view name);

}  // namespace coproc::llm
