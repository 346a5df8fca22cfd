// Operators: how each ONNX operator (and each fused operator of ours) is planned. Internal to the
// runtime.
//
// An operator is an OpDef: a name and a plan() function. The planner calls plan() once per node
// per set of concrete input shapes, with every input's dtype and shape and, where known when
// planning, its value (weights, constants, values folded from shapes). plan() checks attributes,
// dtypes and shapes against the ONNX specification, sets each output's dtype and shape, and
// chooses (PlanContext::choose) the host Kernel bound to those shapes and the same work described
// for any device (device_call.h). Kernels hold everything they need (sizes, strides, attribute
// values), so running one neither allocates nor re-derives. No operator names a device: the
// session's device binds the choice (the CPU device runs the host kernel; another device turns the
// DeviceCall into kernels of its own, device/<name>/), after the checks, which are the operator's
// alone and the same on every device.
//
// Folding: when every input of a node is known when planning and the outputs are small, the
// planner runs the host kernel right then on host memory (shape arithmetic: Shape -> Gather ->
// Concat -> Reshape and the like) and the node makes no kernel call at run time. Weights-only
// nodes are folded once, at load (passes.h).
//
// Untrusted data: inputs may live in another process's shared memory and change while a kernel
// reads them. A kernel that indexes memory by input VALUES (Gather) reads each index once into a
// local, checks it, and fails with kInvalidArgument when it is out of range.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "coproc/base/result.h"
#include "graph/graph.h"
#include "ops/device_call.h"

namespace coproc::runtime::detail {

// What the planner knows of one tensor.
struct TensorInfo {
  DType dtype = DType::kInvalid;  // kInvalid: an absent optional input
  Shape shape;
  const HostTensor* value = nullptr;  // set when the value is known while planning
  bool present() const { return dtype != DType::kInvalid; }
};

// A step's tensors during one run: one pointer per node input and output (nullptr for absent
// ones, and possibly for empty tensors).
struct KernelIO {
  std::span<const void* const> in;
  std::span<void* const> out;
  template <class T>
  const T* input(std::size_t k) const {
    return static_cast<const T*>(in[k]);
  }
  template <class T>
  T* output(std::size_t k) const {
    return static_cast<T*>(out[k]);
  }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // kInvalidArgument when the data is refused (an index out of range); the message need not
  // name the node (the session adds it).
  virtual Status run(const KernelIO& io) const = 0;
};

// A kernel from a callable `Status(const KernelIO&)` or `void(const KernelIO&)`.
template <class F>
std::unique_ptr<Kernel> make_kernel(F f) {
  struct Impl final : Kernel {
    explicit Impl(F body) : fn_(std::move(body)) {}
    Status run(const KernelIO& io) const override {
      if constexpr (std::is_void_v<decltype(fn_(io))>) {
        fn_(io);
        return {};
      } else {
        return fn_(io);
      }
    }
    F fn_;
  };
  return std::make_unique<Impl>(std::move(f));
}

// "node 'name' (Op): problem": how every planning error names its node (plan() through
// PlanContext::fail, a device that refuses a DeviceCall directly).
Error node_error(const Node& node, const std::string& problem,
                 ErrorCode code = ErrorCode::kInvalidArgument);

// What plan() chose for one node and one set of shapes.
struct KernelChoice {
  // The kernel on host memory; nullptr for a view (Aliasing::kView), where no kernel runs.
  std::unique_ptr<Kernel> host;
  // The same work for any device; HostOnly for a view, and where the host kernel is all there is.
  DeviceCall call;
};

struct PlanContext {
  const Graph& graph;
  const Node& node;
  std::span<const TensorInfo> in;  // one per node input
  std::vector<TensorInfo>& out;    // one per node output, to fill (dtype and shape)
  // What plan() chooses, to fill through choose() (a view leaves it empty). Filled in place: a
  // DeviceCall is hundreds of bytes, and planning is not to pay for moving it around.
  KernelChoice& choice;
  // Whether the device binds DeviceCalls (Binder::reads_calls): false for the CPU, which runs the
  // host kernel, and for folding, which runs it on host memory. Read by choose() and the choose_*
  // helpers; never by an operator.
  bool describe = true;

  const TensorInfo& input(std::size_t k) const;  // an absent info past the node's inputs
  bool has_input(std::size_t k) const { return k < in.size() && in[k].present(); }
  // An error naming the node: "node 'name' (Op): problem".
  Error fail(const std::string& problem, ErrorCode code = ErrorCode::kInvalidArgument) const;
  Error unsupported(const std::string& problem) const {
    return fail(problem, ErrorCode::kUnsupported);
  }
  // Input k's value as int64s (int64, int32 or bool data); the input must be known (OpDef::
  // value_operands guarantees it for the inputs listed there).
  std::vector<int64_t> ints(std::size_t k) const;
  // Output k's info, for plan() to fill.
  TensorInfo& output(std::size_t k) const { return out[k]; }
  // plan()'s last word for a node that runs: its host kernel and the same work for any device,
  // given as a DeviceCall alternative or as a callable that makes one (called only when
  // `describe`, so that planning for the CPU does not pay for describing). Without a call:
  // HostOnly.
  template <class Call>
  Status choose(std::unique_ptr<Kernel> host, Call&& call) const {
    choice.host = std::move(host);
    if (!describe) return {};
    if constexpr (std::is_invocable_v<Call>) {
      store(call());
    } else {
      store(std::forward<Call>(call));
    }
    return {};
  }
  Status choose(std::unique_ptr<Kernel> host) const { return choose(std::move(host), HostOnly{}); }
  // Normalises a possibly negative axis for a rank; fails when out of [-rank, rank).
  Result<int32_t> axis(int64_t axis, int32_t rank) const;

 private:
  template <class Call>
  void store(Call&& call) const {
    if constexpr (std::is_same_v<std::decay_t<Call>, DeviceCall>) {
      choice.call = std::forward<Call>(call);
    } else {
      choice.call.emplace<std::decay_t<Call>>(std::forward<Call>(call));
    }
  }
};

enum class Aliasing : uint8_t {
  kNone,
  // Output 0 is input 0's bytes with another shape (Reshape, Flatten, Squeeze, Unsqueeze,
  // Identity): plan() chooses no kernel and no kernel runs.
  kView,
  // Output 0 may be written over any input with the output's shape and element size (the
  // kernel reads element i of each operand before writing element i of the output).
  kElementwise,
};

struct OpDef {
  std::string_view name;
  Status (*plan)(PlanContext& ctx) = nullptr;
  Aliasing aliasing = Aliasing::kNone;
  // Bit k: input k's VALUE is read when planning (a shape, axes, starts): it must be known then.
  uint32_t value_operands = 0;
  // Reads only the shapes of its inputs, never their data (Shape, Size).
  bool shapes_only = false;
};

// The operator named `name` (an ONNX op type of the default domain, or a fused op of ours), or
// nullptr.
const OpDef* find_op(std::string_view name);

// The tables each ops/*.cc file contributes (ops/ops.cc lists them).
std::span<const OpDef> elementwise_ops();  // ops/elementwise.cc
std::span<const OpDef> linalg_ops();       // ops/linalg.cc
std::span<const OpDef> tensor_ops();       // ops/tensor.cc: views and data movement
std::span<const OpDef> copy_ops();         // ops/copy.cc: strided copies
std::span<const OpDef> reduce_ops();       // ops/reduce.cc
std::span<const OpDef> fused_ops();        // ops/fused.cc

// Shared helpers for plan() functions.
std::string shape_string(const Shape& shape);
bool is_float(DType dtype);
bool is_integer(DType dtype);  // int64 or int32
int64_t product(const Shape& s, int32_t begin, int32_t end);

// A dim as an index into a Strides or Shape::dims; inline, as StridedCopy's loops index with it.
inline std::size_t at(int64_t d) { return static_cast<std::size_t>(d); }
// Fails unless `s` is bounded (bounded_elements): for plan() functions that build strides from
// an output shape, since plan_node's check comes after, too late for products that could overflow.
Status check_bounded(const PlanContext& ctx, const Shape& s);
// Input k's value (a shape, axes, starts) as int64s; fails unless it is 1-D. `what` names it.
Result<std::vector<int64_t>> vector_operand(const PlanContext& ctx, std::size_t k,
                                            const char* what);
// Row-major strides of a dense tensor of `shape`, in elements.
Strides dense_strides(const Shape& shape);
// PlanContext::choose for an operator over numpy broadcasting: `host` and the ElementwiseCall of
// inputs 0 .. n-1 of the node (n = 1 to 3) broadcast to `out`; value_dtype as
// ElementwiseCall::dtype.
Status choose_elementwise(const PlanContext& ctx, std::unique_ptr<Kernel> host, ElementwiseOp op,
                          DType value_dtype, const Shape& out);
// Normalises axes for a rank: fails unless each is in [-rank, rank) and none is named twice.
Result<std::vector<int32_t>> normalize_axes(const PlanContext& ctx, std::span<const int64_t> axes,
                                            int32_t rank);

// op(a, b) on T's unsigned type, converted back: integer + - * (std::plus<> and the like) that
// wrap around, as numpy's do. Signed overflow is undefined behaviour in C++ and the operands may
// come from a client; the conversion back is modular since C++20.
template <class T, class Op>
T wrapping(Op op, T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(op(static_cast<U>(a), static_cast<U>(b)));
}

// numpy broadcasting of any number of shapes: the output shape and, per operand, its strides in
// elements over the output's dims (0 where broadcast). For kernels on non-float types and for
// ops with more than two operands (Where).
struct MultiBroadcast {
  Shape out;
  std::vector<std::array<int64_t, kMaxRank>> strides;
};
bool make_multi_broadcast(std::span<const Shape> shapes, MultiBroadcast* out);
// Calls f(out_index, offsets) for every output element in row-major order, where offsets[k] is
// the element offset into operand k.
template <class F>
void for_each_broadcast(const MultiBroadcast& b, F&& f) {
  const std::size_t n = b.strides.size();
  const int32_t rank = b.out.rank;
  const int64_t total = b.out.elements();
  std::array<int64_t, kMaxRank> idx{};
  std::array<int64_t, 4> off{};
  for (int64_t i = 0; i < total; ++i) {
    f(i, off);
    for (int32_t d = rank - 1; d >= 0; --d) {
      const auto ud = static_cast<std::size_t>(d);
      ++idx[ud];
      for (std::size_t k = 0; k < n; ++k) off[k] += b.strides[k][ud];
      if (idx[ud] < b.out.dims[ud]) break;
      for (std::size_t k = 0; k < n; ++k) off[k] -= b.strides[k][ud] * idx[ud];
      idx[ud] = 0;
    }
  }
}

// Calls f.template operator()<T>() with T the C++ type of dtype: float, int64_t, int32_t, and
// uint8_t for bool (never C++ bool: a client may send any byte, and reading a bool that is not 0
// or 1 is undefined behaviour; kernels treat nonzero as true and write only 0 or 1). Returns false
// for other dtypes.
template <class F>
bool dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      f.template operator()<float>();
      return true;
    case DType::kInt64:
      f.template operator()<int64_t>();
      return true;
    case DType::kInt32:
      f.template operator()<int32_t>();
      return true;
    case DType::kBool:
      f.template operator()<uint8_t>();
      return true;
    default:
      return false;
  }
}

}  // namespace coproc::runtime::detail
