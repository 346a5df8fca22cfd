// What a Plan holds: kernel calls with every tensor's location resolved for one set of input
// shapes. Internal to the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "coproc/base/result.h"
#include "graph/graph.h"
#include "coproc/runtime/model.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {

// Scratch tensors start on cache-line boundaries.
inline constexpr std::size_t kScratchAlignment = 64;

// Values known while planning (shape arithmetic) are computed then when they have at most this
// many elements; bigger all-known subgraphs run as kernels (and weights-only ones fold at load).
inline constexpr int64_t kFoldElementLimit = 1 << 16;

// Where a tensor's bytes are during a run.
struct Ref {
  enum class Loc : uint8_t { kNone, kInput, kOutput, kScratch, kConst };  // kNone: absent
  Loc loc = Loc::kScratch;
  uint32_t index = 0;               // kInput / kOutput: the caller's buffer
  std::size_t offset = 0;           // kScratch: bytes from the Session's scratch base
  const std::byte* data = nullptr;  // kConst: a weight (the Model's) or a value folded into the Plan
};

// One kernel call: refs[first, first + inputs) are its inputs, then its outputs.
struct Step {
  const Node* node = nullptr;
  const Kernel* kernel = nullptr;
  uint32_t first = 0;
  uint16_t inputs = 0;
  uint16_t outputs = 0;
};

// A graph output whose bytes live elsewhere (an input, a constant, another output): copied last.
struct OutputCopy {
  Ref src;
  uint32_t output = 0;
  std::size_t bytes = 0;
};

class Planner {
 public:
  // What Session and ClSession share. check_shapes: ranks in [0, kMaxRank] (shapes come off the
  // wire). matches: whether `plan` was made for these shapes (and value-input values).
  // build_within: build(), refusing a plan over limits.max_peak_bytes with kResourceExhausted
  // before its memory is allocated. check_buffers: run()'s argument checks.
  static Status check_shapes(std::span<const Shape> input_shapes);
  static bool matches(const Plan& plan, const Model& model, std::span<const Shape> input_shapes,
                      std::span<const void* const> input_values);
  static Result<std::unique_ptr<Plan>> build_within(const Model& model,
                                                    std::span<const Shape> input_shapes,
                                                    std::span<const void* const> input_values,
                                                    const SessionLimits& limits,
                                                    kernels::opencl::Device* cl = nullptr);
  static Status check_buffers(const Plan& plan, const Model& model,
                              std::span<const void* const> inputs, std::span<void* const> outputs);

  // input_values: per graph input, its data or nullptr; read only for Graph::value_inputs.
  // cl: the OpenCL device the kernels are for; nullptr for the CPU.
  static Result<std::unique_ptr<Plan>> build(const Model& model,
                                             std::span<const Shape> input_shapes,
                                             std::span<const void* const> input_values,
                                             kernels::opencl::Device* cl = nullptr);
};

// Plans one node: fills `out` (one info per node output) and returns its kernel (nullptr for a
// view). Checks what plan() leaves: every present output has a computable dtype and a bounded
// shape.
Result<std::unique_ptr<Kernel>> plan_node(const Graph& graph, const Node& node,
                                          std::span<const TensorInfo> in,
                                          std::vector<TensorInfo>* out,
                                          kernels::opencl::Device* cl = nullptr);

// Runs a planned node on host memory: inputs known, outputs allocated here.
Result<std::vector<HostTensor>> run_on_host(const Node& node, const Kernel* kernel,
                                            std::span<const TensorInfo> in,
                                            std::span<const TensorInfo> out);

}  // namespace coproc::runtime::detail
