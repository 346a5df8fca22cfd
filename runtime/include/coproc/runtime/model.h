// The model runtime: ONNX models lowered to a plan of kernel calls on a device (DESIGN.md
// section 6).
//
//  - Model: one loaded ONNX file. Immutable after load(): the graph, lowered to our operators,
//    and its weights (initializers and Constant nodes, read into memory once; the B operands of
//    Gemm and MatMul packed there once for the CPU GEMM, see LoadOptions). Shared read-only by
//    every Session and thread through shared_ptr<const Model>.
//  - Session: the state of ONE executing thread on one device (device.h: the CPU, an OpenCL
//    device): a cache of Plans keyed by input shapes and the scratch memory for intermediate
//    tensors. Not thread-safe; use one Session per thread. Once a Session has seen a set of input
//    shapes, prepare() and run() for them neither lock (but for a device shared by several
//    threads) nor allocate. An interface: each device implements it.
//  - Plan: everything about one set of concrete input shapes: every tensor's shape, where it lives
//    (a caller's input or output buffer, a weight, or scratch) and the kernel calls to make. Owned
//    by its Session; the pointer prepare() returns stays valid for the Session's lifetime.
//
// Errors are values (coproc::Result / Status): kNotFound (no such file), kBadModel (not a
// valid ONNX model; the message names the file and the problem), kUnsupported (valid ONNX that
// this runtime does not run; the message names every unsupported operator), kInvalidArgument
// (input shapes that do not fit the model; the message names the input and the mismatch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coproc/base/result.h"
#include "coproc/runtime/tensor.h"

namespace coproc::runtime {

namespace detail {
struct Graph;
struct Step;
struct Ref;
struct OutputCopy;
struct HostTensor;
class Kernel;
class Planner;
struct Internals;
}  // namespace detail

struct LoadOptions {
  // Pack the B operand of every Gemm and MatMul whose B is a weight once, at load, for the CPU
  // kernels' gemm_packed (the weight is then held only packed). false: every GEMM runs on
  // OpenBLAS, which repacks B on every call (kept to compare the two).
  bool pack_weights = true;
  // Keep each packed weight's original bytes as well: the OpenCL device reads those (a model that
  // may run there, with device gpu or auto, holds its GEMM weights twice).
  bool keep_unpacked = false;
  // Rewrite common subgraphs into fused kernels at load (passes.h): decomposed LayerNorm, GELU
  // via Erf, MatMul + bias (+ activation), attention. false keeps the graph as written (tests
  // compare the two).
  bool fuse = true;
};

class Model {
 public:
  // Parses, checks (onnx::checker, strict shape inference) and lowers the model at path.
  // kResourceExhausted when the packed weights cannot be allocated.
  static Result<std::shared_ptr<const Model>> load(const std::string& path,
                                                   const LoadOptions& options = {});

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  const std::string& path() const { return path_; }
  // Indices of the inputs whose VALUES determine shapes inside the model (a Reshape's target, a
  // Slice's bounds). Plans for such a model depend on those values: prepare() needs them.
  const std::vector<std::size_t>& value_inputs() const { return value_inputs_; }
  // Nodes after load-time passes (folding, fusion), and how many of them fusion made.
  std::size_t num_nodes() const;
  std::size_t num_fused_nodes() const;
  // Float32 initializers and constants as the model declares them. Packed copies hold the same
  // floats plus the zero padding of each matrix's last column panel.
  std::size_t weight_bytes() const;

 private:
  friend class detail::Planner;
  friend struct detail::Internals;
  Model(std::string path, std::unique_ptr<const detail::Graph> graph,
        std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs);

  std::string path_;
  std::unique_ptr<const detail::Graph> graph_;
  std::vector<TensorSpec> inputs_;
  std::vector<TensorSpec> outputs_;
  std::vector<std::size_t> value_inputs_;
};

class Plan {
 public:
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  std::size_t num_inputs() const { return input_shapes_.size(); }
  std::size_t num_outputs() const { return output_shapes_.size(); }
  const Shape& input_shape(std::size_t i) const { return input_shapes_[i]; }
  const Shape& output_shape(std::size_t j) const { return output_shapes_[j]; }
  std::size_t output_bytes(std::size_t j) const;
  // Bytes of intermediate tensors this plan needs (after reuse between tensors whose lifetimes
  // do not overlap): the peak activation memory of one run.
  std::size_t scratch_bytes() const { return scratch_bytes_; }
  // Everything one run touches besides the weights: scratch plus the inputs and outputs.
  std::size_t peak_bytes() const;
  std::size_t num_kernel_calls() const;
  std::size_t num_output_copies() const;

 private:
  friend class detail::Planner;
  friend struct detail::Internals;
  Plan();

  std::vector<Shape> input_shapes_;
  std::vector<std::vector<std::byte>> input_values_;  // of Model::value_inputs(), in that order
  std::vector<std::size_t> input_bytes_;
  std::vector<Shape> output_shapes_;
  std::vector<std::size_t> output_bytes_;
  std::vector<detail::Step> steps_;
  std::vector<detail::Ref> refs_;
  std::vector<std::size_t> ref_bytes_;  // per ref: its tensor's bytes (the OpenCL device's uploads)
  std::vector<std::unique_ptr<detail::Kernel>> kernels_;
  std::vector<std::unique_ptr<detail::HostTensor>> folded_;  // values known when planning
  std::vector<detail::OutputCopy> copies_;
  std::size_t scratch_bytes_ = 0;
  std::size_t max_step_tensors_ = 0;
};

// Bounds on what one Session may hold, for inputs whose shapes others choose.
struct SessionLimits {
  // Plans kept; the least recently used is dropped past this. 0: no bound.
  std::size_t max_plans = 0;
  // A plan whose peak_bytes() exceeds this is refused with kResourceExhausted before any of its
  // memory is allocated. 0: no bound.
  uint64_t max_peak_bytes = 0;
};

// What runs a Model on one device for one thread (see the top of this file); a device's
// PlacedModel opens one (device.h). Not thread-safe.
class Session {
 public:
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  virtual const Model& model() const = 0;

  // Validates input_shapes against the model's inputs (count, rank, fixed dims, the same dynamic
  // dim_param taking one value across inputs) and returns the cached plan for these shapes,
  // making it on first sight. kInvalidArgument names the input and the mismatch, or the node whose
  // shapes do not fit (e.g. a Reshape to the wrong element count); kUnsupported names a node the
  // device does not run at these shapes. input_values: per input, its data; needed (and read,
  // once) only for Model::value_inputs(), whose values key the plan too; kUnsupported when such a
  // model gets none. With limits.max_plans set, the pointer stays valid until max_plans prepare()
  // calls for other shapes have been made since (an evicted plan is freed); without, for the
  // Session's life.
  Result<const Plan*> prepare(std::span<const Shape> input_shapes,
                              std::span<const void* const> input_values = {}) {
    return prepare_shapes(input_shapes, input_values);
  }

  // inputs[i]: dense row-major data of input i (its dtype) in plan->input_shape(i), in host
  // memory; outputs[j]: host space for output j, plan->output_bytes(j) bytes. Outputs must not
  // overlap inputs or each other. Inputs may live in another process's shared memory and change
  // while we read them: a kernel that indexes memory by input VALUES (Gather) reads each index
  // once and checks it, so the worst case is a garbage result or kInvalidArgument (an index out
  // of range, naming the node), never an access out of bounds. A device failure is kInternal.
  // plan must come from this Session's prepare().
  virtual Status run(const Plan& plan, std::span<const void* const> inputs,
                     std::span<void* const> outputs) = 0;
  // run(), where the caller vouches that the rows along dim 0 of every input and output are
  // independent (a batch of requests): a device with transfers may overlap them with compute
  // across parts of the batch. A device with nothing to overlap runs it as run().
  virtual Status run_rows(const Plan& plan, std::span<const void* const> inputs,
                          std::span<void* const> outputs) {
    return run(plan, inputs, outputs);
  }

  // Host memory for input i and output j of the plans prepare() returned, at least as large as
  // theirs, that the device reaches fastest (pinned, mapped for its DMA): a caller that gathers a
  // batch gathers it here and hands these to run(). nullptr where the device has none (the CPU
  // reads any host memory as fast).
  virtual void* input_staging(std::size_t /*i*/) const { return nullptr; }
  virtual void* output_staging(std::size_t /*j*/) const { return nullptr; }

 protected:
  Session() = default;

 private:
  // prepare(), for each device (a public virtual with a default argument would take the default
  // of the static type).
  virtual Result<const Plan*> prepare_shapes(std::span<const Shape> input_shapes,
                                             std::span<const void* const> input_values) = 0;
};

}  // namespace coproc::runtime
