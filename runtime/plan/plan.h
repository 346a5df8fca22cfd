// What a Plan holds: kernel calls with every tensor's location resolved for one set of input
// shapes. Internal to the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "coproc/base/result.h"
#include "coproc/runtime/model.h"
#include "graph/graph.h"
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
  uint32_t index = 0;      // kInput / kOutput: the caller's buffer
  std::size_t offset = 0;  // kScratch: bytes from the Session's scratch base
  const std::byte* data =
      nullptr;  // kConst: a weight (the Model's) or a value folded into the Plan
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

// What a device does with an operator's KernelChoice (ops.h): the kernel its sessions run for the
// node. The CPU device takes the host kernel; another device binds the DeviceCall into a kernel
// of its own whose KernelIO pointers are its memory, or refuses it with kUnsupported naming the
// node (node_error). Called only for nodes that run (not views, not folded ones), once per node
// per plan, while planning: a device compiles and allocates here what its kernel needs, so that
// running it does neither.
class Binder {
 public:
  virtual ~Binder() = default;
  // Whether bind() reads KernelChoice::call: false where the host kernel is all a device runs,
  // so that planning for it leaves the calls undescribed (PlanContext::describe).
  virtual bool reads_calls() const = 0;
  virtual Result<std::unique_ptr<Kernel>> bind(const Node& node, KernelChoice&& choice) const = 0;
};

class Planner {
 public:
  // What every device's Session shares. check_shapes: ranks in [0, kMaxRank] (shapes come off
  // the wire). matches: whether `plan` was made for these shapes (and value-input values).
  // build_within: build(), refusing a plan over limits.max_peak_bytes with kResourceExhausted
  // before its memory is allocated. check_buffers: run()'s argument checks.
  static Status check_shapes(std::span<const Shape> input_shapes);
  static bool matches(const Plan& plan, const Model& model, std::span<const Shape> input_shapes,
                      std::span<const void* const> input_values);
  static Result<std::unique_ptr<Plan>> build_within(const Model& model,
                                                    std::span<const Shape> input_shapes,
                                                    std::span<const void* const> input_values,
                                                    const SessionLimits& limits,
                                                    const Binder& binder);
  static Status check_buffers(const Plan& plan, const Model& model,
                              std::span<const void* const> inputs, std::span<void* const> outputs);

  // input_values: per graph input, its data or nullptr; read only for Graph::value_inputs.
  // binder: the device the plan's kernels are for.
  static Result<std::unique_ptr<Plan>> build(const Model& model,
                                             std::span<const Shape> input_shapes,
                                             std::span<const void* const> input_values,
                                             const Binder& binder);
};

// The private parts of Model and Plan, for the runtime's own code (the planner, the devices'
// sessions): the public header keeps them from users.
struct Internals {
  static const Graph& graph(const Model& model) { return *model.graph_; }
  static const std::vector<std::size_t>& input_bytes(const Plan& plan) { return plan.input_bytes_; }
  static const std::vector<std::size_t>& output_bytes(const Plan& plan) {
    return plan.output_bytes_;
  }
  static const std::vector<Step>& steps(const Plan& plan) { return plan.steps_; }
  static const std::vector<Ref>& refs(const Plan& plan) { return plan.refs_; }
  // Per ref: its tensor's bytes (what a device uploads of a constant).
  static const std::vector<std::size_t>& ref_bytes(const Plan& plan) { return plan.ref_bytes_; }
  static const std::vector<OutputCopy>& copies(const Plan& plan) { return plan.copies_; }
  // The most tensors one step has (inputs and outputs): the size of a run's pointer arrays.
  static std::size_t max_step_tensors(const Plan& plan) { return plan.max_step_tensors_; }
};

// Plans one node: fills `out` (one info per node output) and `choice` (left empty, as it comes,
// for a view; its call only when `describe`). Checks what plan() leaves: every present output has
// a computable dtype and a bounded shape.
Status plan_node(const Graph& graph, const Node& node, std::span<const TensorInfo> in,
                 std::vector<TensorInfo>* out, KernelChoice* choice, bool describe);

// Runs a planned node on host memory: inputs known, outputs allocated here.
Result<std::vector<HostTensor>> run_on_host(const Node& node, const Kernel* kernel,
                                            std::span<const TensorInfo> in,
                                            std::span<const TensorInfo> out);

}  // namespace coproc::runtime::detail
