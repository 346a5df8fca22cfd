// Enqueueing our .cl kernels: which kernel a call needs, its operands' element offsets, its box
// simplified (layout.h), its arguments in the kernel's order. A call the kernels cannot run (an
// operation on a dtype it is not defined for, a misaligned offset) enqueues nothing and is
// reported by finish(), like an OpenCL error.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "impl.h"
#include "kernel_codes.h"
#include "layout.h"

namespace coproc::kernels::opencl {

using detail::KernelId;
using detail::long8;

namespace {

const char* op_name(Elementwise op) {
  switch (op) {
    case Elementwise::kRelu:
      return "Relu";
    case Elementwise::kSigmoid:
      return "Sigmoid";
    case Elementwise::kTanh:
      return "Tanh";
    case Elementwise::kErf:
      return "Erf";
    case Elementwise::kExp:
      return "Exp";
    case Elementwise::kSqrt:
      return "Sqrt";
    case Elementwise::kReciprocal:
      return "Reciprocal";
    case Elementwise::kGelu:
      return "Gelu";
    case Elementwise::kNeg:
      return "Neg";
    case Elementwise::kCopy:
      return "Copy";
    case Elementwise::kAdd:
      return "Add";
    case Elementwise::kSub:
      return "Sub";
    case Elementwise::kMul:
      return "Mul";
    case Elementwise::kDiv:
      return "Div";
    case Elementwise::kPow:
      return "Pow";
    case Elementwise::kEqual:
      return "Equal";
    case Elementwise::kWhere:
      return "Where";
  }
  return "an unknown operation";
}

// How one elementwise call runs: the kernel, its operation code, how many operands it reads,
// and the dtypes of the output and of a, b and c (whose sizes turn byte offsets into element
// offsets).
struct ElementwisePlan {
  KernelId kernel = KernelId::kCopyBits32;
  int32_t code = 0;
  int operands = 1;
  DType out = DType::kFloat32;
  DType in[3] = {DType::kFloat32, DType::kFloat32, DType::kFloat32};
};

std::optional<int32_t> unary_code(Elementwise op) {
  switch (op) {
    case Elementwise::kRelu:
      return COPROC_UNARY_RELU;
    case Elementwise::kSigmoid:
      return COPROC_UNARY_SIGMOID;
    case Elementwise::kTanh:
      return COPROC_UNARY_TANH;
    case Elementwise::kErf:
      return COPROC_UNARY_ERF;
    case Elementwise::kExp:
      return COPROC_UNARY_EXP;
    case Elementwise::kSqrt:
      return COPROC_UNARY_SQRT;
    case Elementwise::kReciprocal:
      return COPROC_UNARY_RECIPROCAL;
    case Elementwise::kGelu:
      return COPROC_UNARY_GELU;
    case Elementwise::kNeg:
      return COPROC_UNARY_NEG;
    default:
      return std::nullopt;
  }
}

std::optional<int32_t> binary_code(Elementwise op) {
  switch (op) {
    case Elementwise::kAdd:
      return COPROC_BINARY_ADD;
    case Elementwise::kSub:
      return COPROC_BINARY_SUB;
    case Elementwise::kMul:
      return COPROC_BINARY_MUL;
    case Elementwise::kDiv:
      return COPROC_BINARY_DIV;
    case Elementwise::kPow:
      return COPROC_BINARY_POW;
    default:
      return std::nullopt;
  }
}

// The plan for `op` on `dtype`, or nullopt where the header does not define it.
std::optional<ElementwisePlan> plan_elementwise(Elementwise op, DType dtype) {
  const bool is_float = dtype == DType::kFloat32;
  const bool is_integer = dtype == DType::kInt64 || dtype == DType::kInt32;
  ElementwisePlan plan;
  plan.out = dtype;
  plan.in[0] = plan.in[1] = plan.in[2] = dtype;
  if (const auto code = unary_code(op)) {
    plan.code = *code;
    if (is_float) {
      plan.kernel = KernelId::kUnaryFloat;
    } else if (op == Elementwise::kNeg && is_integer) {
      plan.kernel = dtype == DType::kInt64 ? KernelId::kNegLong : KernelId::kNegInt;
    } else {
      return std::nullopt;
    }
    return plan;
  }
  if (const auto code = binary_code(op)) {
    if (!(is_float || (is_integer && op != Elementwise::kPow))) return std::nullopt;
    plan.code = *code;
    plan.operands = 2;
    plan.kernel = detail::kernel_for(KernelId::kBinaryFloat, dtype);
    return plan;
  }
  const bool is_32 = dtype == DType::kFloat32 || dtype == DType::kInt32;
  switch (op) {
    case Elementwise::kCopy:
      plan.kernel = dtype == DType::kBool ? KernelId::kCopyBool
                    : is_32               ? KernelId::kCopyBits32
                                          : KernelId::kCopyBits64;
      return plan;
    case Elementwise::kEqual:
      plan.kernel = detail::kernel_for(KernelId::kEqualFloat, dtype);
      plan.operands = 2;
      plan.out = DType::kBool;
      return plan;
    case Elementwise::kWhere:
      plan.kernel = dtype == DType::kBool ? KernelId::kWhereBool
                    : is_32               ? KernelId::kWhereBits32
                                          : KernelId::kWhereBits64;
      plan.operands = 3;
      plan.in[0] = DType::kBool;
      return plan;
    default:
      return std::nullopt;
  }
}

bool valid_rank(int rank) { return rank >= 0 && rank <= kMaxRank; }

}  // namespace

void Device::elementwise(const ElementwiseCall& call, Mem out, Mem a, Mem b, Mem c) {
  static constexpr const char* kCall = "Device::elementwise";
  Impl& d = *impl_;
  const Strided& l = call.layout;
  const auto refuse = [&](const std::string& why) {
    d.fail(std::string(kCall) + " (" + op_name(call.op) + ", " + detail::dtype_name(call.dtype) +
           "): " + why);
  };
  if (!valid_rank(l.rank)) return refuse("rank " + std::to_string(l.rank));
  const int64_t elements = l.elements();
  if (elements <= 0) return;
  const std::optional<ElementwisePlan> plan = plan_elementwise(call.op, call.dtype);
  if (!plan) return refuse("not defined for this dtype");
  const Mem operands[3] = {a, b, c};
  int64_t offsets[3] = {0, 0, 0};
  for (int k = 0; k < plan->operands; ++k) {
    if (!operands[k].present()) return refuse("operand " + std::to_string(k) + " is absent");
    const auto offset = d.element_offset(operands[k], dtype_bytes(plan->in[k]), kCall);
    if (!offset) return;
    offsets[k] = *offset;
  }
  const auto out_offset = d.element_offset(out, dtype_bytes(plan->out), kCall);
  if (!out_offset) return;
  const detail::Box box = detail::simplify(l.rank, l.dims, {l.out, l.a, l.b, l.c});
  d.launch(plan->kernel, kCall, static_cast<uint64_t>(elements), out.buffer, *out_offset, a.buffer,
           offsets[0], b.buffer, offsets[1], c.buffer, offsets[2], static_cast<uint64_t>(elements),
           static_cast<int32_t>(box.rank), long8(box.dims), long8(box.strides[0]),
           long8(box.strides[1]), long8(box.strides[2]), long8(box.strides[3]), plan->code);
}

void Device::cast(const CastCall& call, Mem out, Mem in) {
  static constexpr const char* kCall = "Device::cast";
  Impl& d = *impl_;
  if (call.elements <= 0) return;
  const auto out_offset = d.element_offset(out, dtype_bytes(call.to), kCall);
  const auto in_offset = d.element_offset(in, dtype_bytes(call.from), kCall);
  if (!out_offset || !in_offset) return;
  const auto kernel =
      static_cast<KernelId>(static_cast<int>(KernelId::kCastFirst) +
                            4 * static_cast<int>(call.from) + static_cast<int>(call.to));
  d.launch(kernel, kCall, static_cast<uint64_t>(call.elements), out.buffer, *out_offset, in.buffer,
           *in_offset, static_cast<uint64_t>(call.elements));
}

void Device::reduce(const ReduceCall& call, Mem out, Mem in) {
  static constexpr const char* kCall = "Device::reduce";
  Impl& d = *impl_;
  const auto refuse = [&](const std::string& why) {
    d.fail(std::string(kCall) + " of " + detail::dtype_name(call.dtype) + ": " + why);
  };
  if (!valid_rank(call.out_rank) || !valid_rank(call.reduced_rank)) {
    return refuse("ranks " + std::to_string(call.out_rank) + " and " +
                  std::to_string(call.reduced_rank));
  }
  const int64_t outputs = detail::product(call.out_dims, call.out_rank);
  const int64_t count = detail::product(call.reduced_dims, call.reduced_rank);
  if (outputs <= 0) return;
  if (count < 0) return refuse("a reduced dim is negative");
  const bool argmax = call.op == Reduce::kArgMax || call.op == Reduce::kArgMaxLast;
  if (call.dtype == DType::kBool) return refuse("bools are not reduced");
  if (call.op == Reduce::kMean && call.dtype != DType::kFloat32) {
    return refuse("the mean is defined for float32 only");
  }
  const auto out_offset =
      d.element_offset(out, argmax ? sizeof(int64_t) : dtype_bytes(call.dtype), kCall);
  const auto in_offset = d.element_offset(in, dtype_bytes(call.dtype), kCall);
  if (!out_offset || !in_offset) return;
  // The output is dense, so its dims merge wherever the input's strides allow.
  const detail::Box outs = detail::simplify(call.out_rank, call.out_dims, {call.in_strides});
  const detail::Box box =
      detail::simplify(call.reduced_rank, call.reduced_dims, {call.reduced_strides});
  int32_t code = 0;
  switch (call.op) {
    case Reduce::kSum:
      code = COPROC_REDUCE_SUM;
      break;
    case Reduce::kSumSquare:
      code = COPROC_REDUCE_SUM_SQUARE;
      break;
    case Reduce::kMean:
      code = COPROC_REDUCE_MEAN;
      break;
    case Reduce::kMax:
      code = COPROC_REDUCE_MAX;
      break;
    case Reduce::kArgMax:
      code = 0;  // argmax_*'s `last`: the first maximum wins
      break;
    case Reduce::kArgMaxLast:
      code = 1;
      break;
  }
  const KernelId kernel =
      detail::kernel_for(argmax ? KernelId::kArgMaxFloat : KernelId::kReduceFloat, call.dtype);
  d.launch(kernel, kCall, static_cast<uint64_t>(outputs), out.buffer, *out_offset, in.buffer,
           *in_offset, static_cast<uint64_t>(outputs), static_cast<int32_t>(outs.rank),
           long8(outs.dims), long8(outs.strides[0]), static_cast<int32_t>(box.rank),
           long8(box.dims), long8(box.strides[0]), static_cast<uint64_t>(count), code);
}

void Device::softmax(const SoftmaxCall& call, Mem out, Mem in) {
  static constexpr const char* kCall = "Device::softmax";
  Impl& d = *impl_;
  if (call.outer <= 0 || call.n <= 0 || call.inner <= 0) return;
  const auto out_offset = d.element_offset(out, sizeof(float), kCall);
  const auto in_offset = d.element_offset(in, sizeof(float), kCall);
  if (!out_offset || !in_offset) return;
  if (call.inner == 1) {
    const KernelId kernel = KernelId::kSoftmaxRows;
    d.launch_groups(kernel, kCall, static_cast<uint64_t>(call.outer), out.buffer, *out_offset,
                    in.buffer, *in_offset, call.n, detail::LocalFloats{d.local_size(kernel)});
    return;
  }
  const auto lines = static_cast<uint64_t>(call.outer * call.inner);
  d.launch(KernelId::kSoftmaxLines, kCall, lines, out.buffer, *out_offset, in.buffer, *in_offset,
           call.n, call.inner, lines);
}

void Device::layer_norm(const LayerNormCall& call, Mem y, Mem x, Mem scale, Mem bias, Mem mean,
                        Mem inv_std_dev) {
  static constexpr const char* kCall = "Device::layer_norm";
  Impl& d = *impl_;
  if (call.rows <= 0) return;
  const Mem optional[4] = {scale, bias, mean, inv_std_dev};
  const int32_t bits[4] = {COPROC_LAYER_NORM_SCALE, COPROC_LAYER_NORM_BIAS, COPROC_LAYER_NORM_MEAN,
                           COPROC_LAYER_NORM_INV_STD_DEV};
  int32_t present = 0;
  int64_t offsets[4] = {0, 0, 0, 0};
  for (int k = 0; k < 4; ++k) {
    if (!optional[k].present()) continue;
    present |= bits[k];
    const auto offset = d.element_offset(optional[k], sizeof(float), kCall);
    if (!offset) return;
    offsets[k] = *offset;
  }
  const auto y_offset = d.element_offset(y, sizeof(float), kCall);
  const auto x_offset = d.element_offset(x, sizeof(float), kCall);
  if (!y_offset || !x_offset) return;
  const KernelId kernel = KernelId::kLayerNorm;
  d.launch_groups(kernel, kCall, static_cast<uint64_t>(call.rows), y.buffer, *y_offset, x.buffer,
                  *x_offset, scale.buffer, offsets[0], bias.buffer, offsets[1], mean.buffer,
                  offsets[2], inv_std_dev.buffer, offsets[3], call.n, call.epsilon, present,
                  detail::LocalFloats{d.local_size(kernel)});
}

void Device::bias_activation(Mem y, int64_t rows, int64_t cols, Mem bias, Activation activation) {
  static constexpr const char* kCall = "Device::bias_activation";
  Impl& d = *impl_;
  if (rows <= 0 || cols <= 0 || (!bias.present() && activation == Activation::kNone)) return;
  const auto y_offset = d.element_offset(y, sizeof(float), kCall);
  const std::optional<int64_t> bias_offset =
      bias.present() ? d.element_offset(bias, sizeof(float), kCall) : std::optional<int64_t>(0);
  if (!y_offset || !bias_offset) return;
  int32_t code = COPROC_ACTIVATION_NONE;
  switch (activation) {
    case Activation::kNone:
      break;
    case Activation::kRelu:
      code = COPROC_ACTIVATION_RELU;
      break;
    case Activation::kGelu:
      code = COPROC_ACTIVATION_GELU;
      break;
    case Activation::kTanh:
      code = COPROC_ACTIVATION_TANH;
      break;
    case Activation::kSigmoid:
      code = COPROC_ACTIVATION_SIGMOID;
      break;
  }
  const auto elements = static_cast<uint64_t>(rows * cols);
  d.launch(KernelId::kBiasActivation, kCall, elements, y.buffer, *y_offset, bias.buffer,
           *bias_offset, static_cast<int32_t>(bias.present()), cols, elements, code);
}

void Device::gather(const GatherCall& call, Mem out, Mem data, Mem indices) {
  static constexpr const char* kCall = "Device::gather";
  Impl& d = *impl_;
  if (call.indices <= 0) return;
  if (call.index_dtype != DType::kInt64 && call.index_dtype != DType::kInt32) {
    return d.fail(std::string(kCall) + ": " + detail::dtype_name(call.index_dtype) + " indices");
  }
  // 4-byte units where the slices and both offsets allow, else bytes.
  const bool words = call.inner_bytes % 4 == 0 && out.offset % 4 == 0 && data.offset % 4 == 0;
  const std::size_t unit = words ? 4 : 1;
  const int64_t units = call.inner_bytes / static_cast<int64_t>(unit);
  const auto out_offset = d.element_offset(out, unit, kCall);
  const auto data_offset = d.element_offset(data, unit, kCall);
  const auto index_offset = d.element_offset(indices, dtype_bytes(call.index_dtype), kCall);
  if (!out_offset || !data_offset || !index_offset) return;
  const bool wide = call.index_dtype == DType::kInt64;
  const KernelId kernel = words ? (wide ? KernelId::kGatherBits32Long : KernelId::kGatherBits32Int)
                                : (wide ? KernelId::kGatherBits8Long : KernelId::kGatherBits8Int);
  // At least one outer position and one unit, so that every index is checked.
  const auto elements = static_cast<uint64_t>(std::max<int64_t>(call.outer, 1) * call.indices *
                                              std::max<int64_t>(units, 1));
  d.gather_pending = true;
  d.launch(kernel, kCall, elements, out.buffer, *out_offset, data.buffer, *data_offset,
           indices.buffer, *index_offset, call.outer, call.axis_dim, call.indices, units, elements,
           d.gather_record, call.tag);
}

void Device::Impl::scale_matrices(const char* call, Mem c, int64_t ldc, int64_t stride, int64_t m,
                                  int64_t n, int64_t batch, float beta) {
  const auto c_offset = element_offset(c, sizeof(float), call);
  if (!c_offset) return;
  const auto elements = static_cast<uint64_t>(batch * m * n);
  launch(KernelId::kScaleMatrix, call, elements, c.buffer, *c_offset, ldc, stride, m, n, elements,
         beta);
}

}  // namespace coproc::kernels::opencl
