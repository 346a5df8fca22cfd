// Device-neutral descriptions of the work an operator's plan() chose. Internal to the runtime.
//
// plan() (ops.h) checks attributes, dtypes and shapes once, and returns a KernelChoice: the host
// kernel (which the CPU device runs, and which the planner runs on host memory to fold values
// known when planning) and one DeviceCall, the same computation said in terms any device can
// bind: sizes, strides in elements, element types, operand positions. A call names no device and
// holds no device memory; each device binds the calls it can into kernels of its own and refuses
// the others with kUnsupported (device/<name>/). So a new device reads these and no operator, and
// a new operator that a device should run adds a call here (or reuses one) for it to bind.
//
// Operands are the node's: inputs 0, 1, ... in the node's order, and output 0, unless a call says
// otherwise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "coproc/runtime/tensor.h"

namespace coproc::runtime::detail {

// One int64 per dim, outermost first: strides or sizes in elements (or bytes, where so named).
using Strides = std::array<int64_t, kMaxRank>;

// A box of `rank` dims, outermost first, and per operand its strides in elements over them (0
// broadcasts a dim, a negative stride walks backwards): `out` for the output, a, b and c for up to
// three inputs. Rank 0 is one element.
struct StridedLayout {
  int32_t rank = 0;
  Strides dims{};
  Strides out{};
  Strides a{};
  Strides b{};
  Strides c{};
  int64_t elements() const;
};

enum class ElementwiseOp : uint8_t {
  // unary, float32
  kRelu,
  kSigmoid,
  kTanh,
  kErf,
  kExp,
  kSqrt,
  kReciprocal,
  kGelu,  // x * (1 + erf(x / sqrt 2)) / 2
  // unary, float32, int64, int32: integers wrap (negating the minimum gives it back)
  kNeg,
  // binary, float32, int64, int32: integers wrap; integer Div truncates toward zero, x / 0 = 0
  // and min / -1 = min (ops/elementwise.cc)
  kAdd,
  kSub,
  kMul,
  kDiv,
  // binary, any computed types (input_dtypes says which), the base's type out
  kPow,
  // binary, any dtype -> bool: IEEE equality for floats
  kEqual,
  // ternary: input 0 the bool condition (nonzero is true), inputs 1 and 2 the values
  kWhere,
};

// out = op(inputs 0 .. operands - 1), numpy-broadcast to the output: layout's a, b and c are the
// inputs' strides over the output's dims, in that order.
struct ElementwiseCall {
  ElementwiseOp op = ElementwiseOp::kAdd;
  // The value operands' dtype (inputs 1 and 2 for kWhere) and, except for kEqual, the output's.
  DType dtype = DType::kFloat32;
  std::array<DType, 3> input_dtypes{};
  int32_t operands = 1;
  StridedLayout layout;
};

// numpy astype over `elements` dense elements (ops/tensor.cc, cast_value).
struct CastCall {
  DType from = DType::kFloat32;
  DType to = DType::kFloat32;
  int64_t elements = 0;
};

// Copies of elements into the output (Transpose, Slice, Concat, Expand): copy i moves input
// copies[i].input's elements at src_offset + index . layout.a to dst_offset + index . layout.out,
// for every index of layout's box (offsets in elements). They move bits, not values.
struct StridedCopyCall {
  std::size_t input = 0;
  StridedLayout layout;
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
};
struct CopiesCall {
  DType dtype = DType::kFloat32;
  std::vector<StridedCopyCall> copies;
};

// `elements` copies of one element (ConstantOfShape): its bytes, little-endian, in the low
// dtype_bytes(dtype) bytes of `pattern`.
struct FillCall {
  DType dtype = DType::kFloat32;
  uint64_t pattern = 0;
  int64_t elements = 0;
};

// Gather along one axis of data (input 0) viewed as [outer, axis_dim, inner] with the indices of
// input 1: out[o, i, :] = data[o, indices[i], :]. An index outside [-axis_dim, axis_dim) fails the
// run with kInvalidArgument naming the node (node_index, into Graph::nodes), as the host's does.
struct GatherCall {
  int64_t outer = 0;
  int64_t axis_dim = 0;
  int64_t indices = 0;
  int64_t inner_bytes = 0;  // bytes of one [inner] slice
  DType index_dtype = DType::kInt64;
  int32_t node_index = 0;
};

// One output element (dense) per index of out_dims: the reduction, over the box reduced_dims with
// input strides reduced_strides, of the input elements from the index's dot product with
// in_strides. ArgMax outputs int64; the others the input's dtype.
enum class ReduceOp : uint8_t { kSum, kSumSquare, kMean, kMax, kArgMax, kArgMaxLast };
struct ReduceCall {
  ReduceOp op = ReduceOp::kSum;
  DType dtype = DType::kFloat32;
  int32_t out_rank = 0;
  Strides out_dims{};
  Strides in_strides{};
  int32_t reduced_rank = 0;
  Strides reduced_dims{};
  Strides reduced_strides{};
};

// Softmax over the middle dim of a dense [outer, n, inner].
struct SoftmaxCall {
  int64_t outer = 0;
  int64_t n = 0;
  int64_t inner = 1;
};

// LayerNormalization of `rows` rows of n: Y = (X - mean) * inv_std_dev * Scale + B, B (input 2)
// optional; Mean and InvStdDev (outputs 1 and 2) written when present. per_element: Scale and B
// hold one value per element of a row; otherwise one of them broadcasts over the rows too.
struct LayerNormCall {
  int64_t rows = 0;
  int64_t n = 0;
  float epsilon = 1e-5f;
  bool per_element = true;
};

enum class ActivationOp : uint8_t { kNone, kRelu, kGelu, kTanh, kSigmoid };

// C = alpha * op(A) op(B) + beta * C over `batch` float32 matrices (strides in elements, 0: one
// matrix shared by all), A input 0, B input 1, C the output; leading dimensions in elements. With
// copy_c, input 2 is broadcast into C first (Gemm's C; c_layout: a its strides, out C's); with
// bias, input 2 (n values) is added to each row, and then the activation.
struct GemmCall {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0, n = 0, k = 0, lda = 1, ldb = 1, ldc = 1;
  float alpha = 1.0f;
  float beta = 0.0f;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
  bool copy_c = false;
  StridedLayout c_layout;
  bool bias = false;
  ActivationOp activation = ActivationOp::kNone;
};

// MatMul whose batch dims broadcast irregularly: one [m, k] x [k, n] product per output matrix,
// the operands at the given element offsets (a, b, c).
struct GemmListCall {
  int64_t m = 0, n = 0, k = 0;
  std::vector<std::array<int64_t, 3>> offsets;
};

// coproc.Attention (ops/fused.cc): per head, O = softmax(scale * Q K^T + mask) V, float32.
struct AttentionCall {
  enum Operand : std::size_t { kQ, kK, kV, kMask, kOut, kOperands };
  // One head: Q [q_rows, head_dim] with row stride ldq; K [kv_rows, head_dim] (ldk), or K^T
  // [head_dim, kv_rows] when k_transposed; V [kv_rows, value_dim] (ldv); O [q_rows, value_dim]
  // (ldo); the mask's (r, c) at r * mask_row_stride + c * mask_col_stride (input 3, optional).
  int64_t q_rows = 0, kv_rows = 0, head_dim = 0, value_dim = 0;
  int64_t ldq = 1, ldk = 1, ldv = 1, ldo = 1;
  bool k_transposed = false;
  float scale = 1.0f;
  bool has_mask = false;
  int64_t mask_row_stride = 0, mask_col_stride = 0;
  // The heads: every index over head_dims, each operand's head at the sum of index times its
  // strides (0 where it broadcasts).
  Shape head_dims;
  std::array<Strides, kOperands> head_strides{};
};

// No device-neutral description: the host kernel is all there is (Shape and Size, which the
// planner always folds). A device other than the host refuses it.
struct HostOnly {};

using DeviceCall =
    std::variant<HostOnly, ElementwiseCall, CastCall, CopiesCall, FillCall, GatherCall, ReduceCall,
                 SoftmaxCall, LayerNormCall, GemmCall, GemmListCall, AttentionCall>;

}  // namespace coproc::runtime::detail
