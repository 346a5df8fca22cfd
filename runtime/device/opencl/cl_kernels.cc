#include "device/opencl/cl_kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace coproc::runtime::detail {
namespace {

ocl::DType cl_dtype(DType dtype) {
  switch (dtype) {
    case DType::kInt64:
      return ocl::DType::kInt64;
    case DType::kInt32:
      return ocl::DType::kInt32;
    case DType::kBool:
      return ocl::DType::kBool;
    default:
      return ocl::DType::kFloat32;
  }
}

ocl::Strided cl_layout(const StridedLayout& layout) {
  ocl::Strided s;
  s.rank = layout.rank;
  for (int32_t d = 0; d < layout.rank; ++d) {
    s.dims[d] = layout.dims[at(d)];
    s.out[d] = layout.out[at(d)];
    s.a[d] = layout.a[at(d)];
    s.b[d] = layout.b[at(d)];
    s.c[d] = layout.c[at(d)];
  }
  return s;
}

ocl::Elementwise cl_elementwise_op(ElementwiseOp op) {
  switch (op) {
    case ElementwiseOp::kRelu:
      return ocl::Elementwise::kRelu;
    case ElementwiseOp::kSigmoid:
      return ocl::Elementwise::kSigmoid;
    case ElementwiseOp::kTanh:
      return ocl::Elementwise::kTanh;
    case ElementwiseOp::kErf:
      return ocl::Elementwise::kErf;
    case ElementwiseOp::kExp:
      return ocl::Elementwise::kExp;
    case ElementwiseOp::kSqrt:
      return ocl::Elementwise::kSqrt;
    case ElementwiseOp::kReciprocal:
      return ocl::Elementwise::kReciprocal;
    case ElementwiseOp::kGelu:
      return ocl::Elementwise::kGelu;
    case ElementwiseOp::kNeg:
      return ocl::Elementwise::kNeg;
    case ElementwiseOp::kAdd:
      return ocl::Elementwise::kAdd;
    case ElementwiseOp::kSub:
      return ocl::Elementwise::kSub;
    case ElementwiseOp::kMul:
      return ocl::Elementwise::kMul;
    case ElementwiseOp::kDiv:
      return ocl::Elementwise::kDiv;
    case ElementwiseOp::kPow:
      return ocl::Elementwise::kPow;
    case ElementwiseOp::kEqual:
      return ocl::Elementwise::kEqual;
    case ElementwiseOp::kWhere:
      return ocl::Elementwise::kWhere;
  }
  return ocl::Elementwise::kCopy;
}

ocl::Reduce cl_reduce_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ocl::Reduce::kSum;
    case ReduceOp::kSumSquare:
      return ocl::Reduce::kSumSquare;
    case ReduceOp::kMean:
      return ocl::Reduce::kMean;
    case ReduceOp::kMax:
      return ocl::Reduce::kMax;
    case ReduceOp::kArgMax:
      return ocl::Reduce::kArgMax;
    case ReduceOp::kArgMaxLast:
      return ocl::Reduce::kArgMaxLast;
  }
  return ocl::Reduce::kSum;
}

ocl::Activation cl_activation(ActivationOp a) {
  switch (a) {
    case ActivationOp::kRelu:
      return ocl::Activation::kRelu;
    case ActivationOp::kGelu:
      return ocl::Activation::kGelu;
    case ActivationOp::kTanh:
      return ocl::Activation::kTanh;
    case ActivationOp::kSigmoid:
      return ocl::Activation::kSigmoid;
    case ActivationOp::kNone:
      break;
  }
  return ocl::Activation::kNone;
}

using KernelResult = Result<std::unique_ptr<Kernel>>;

// Compiles CLBlast's kernels for one GEMM shape and sizes the device's temporary buffer, so that
// a run allocates and compiles nothing.
Status reserve(ocl::Device& device, const Node& node, bool trans_a, bool trans_b, int64_t m,
               int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  if (m == 0 || n == 0 || k == 0) return {};
  std::string error;
  if (!device.reserve_gemm(trans_a, trans_b, m, n, k, lda, ldb, ldc, &error)) {
    return node_error(
        node, fmt::format("the OpenCL GEMM [{} x {}] x [{} x {}] fails: {}", m, k, k, n, error),
        ErrorCode::kUnsupported);
  }
  return {};
}

// One bind_call() per DeviceCall alternative; std::visit picks it.
class ClBinder final : public Binder {
 public:
  explicit ClBinder(ocl::Device& device) : device_(device) {}

  bool reads_calls() const override { return true; }

  KernelResult bind(const Node& node, KernelChoice&& choice) const override {
    return std::visit([&](const auto& call) { return bind_call(node, call); }, choice.call);
  }

 private:
  KernelResult bind_call(const Node& node, const HostOnly& /*call*/) const {
    return node_error(node, "has no kernel on the OpenCL device", ErrorCode::kUnsupported);
  }

  KernelResult bind_call(const Node& node, const ElementwiseCall& c) const {
    if (c.op == ElementwiseOp::kPow &&
        (c.input_dtypes[0] != DType::kFloat32 || c.input_dtypes[1] != DType::kFloat32)) {
      return node_error(node,
                        fmt::format("{} to a {} power on the OpenCL device",
                                    dtype_name(c.input_dtypes[0]), dtype_name(c.input_dtypes[1])),
                        ErrorCode::kUnsupported);
    }
    const ocl::ElementwiseCall call{cl_elementwise_op(c.op), cl_dtype(c.dtype),
                                    cl_layout(c.layout)};
    const int32_t operands = c.operands;
    ocl::Device& device = device_;
    return make_kernel([&device, call, operands](const KernelIO& io) {
      if (call.layout.elements() == 0) return;
      device.elementwise(call, cl_out(io, 0), cl_in(io, 0),
                         operands > 1 ? cl_in(io, 1) : ocl::Mem{},
                         operands > 2 ? cl_in(io, 2) : ocl::Mem{});
    });
  }

  KernelResult bind_call(const Node& /*node*/, const CastCall& c) const {
    const ocl::CastCall call{cl_dtype(c.from), cl_dtype(c.to), c.elements};
    ocl::Device& device = device_;
    return make_kernel([&device, call](const KernelIO& io) {
      if (call.elements > 0) device.cast(call, cl_out(io, 0), cl_in(io, 0));
    });
  }

  // One strided copy of an operator made of them: the source's elements at src_offset plus
  // index times its strides go to the output at dst_offset plus index times its strides.
  struct Copy {
    std::size_t input = 0;
    ocl::Strided layout;  // out: the destination's strides; a: the source's
    int64_t src_offset = 0;
    int64_t dst_offset = 0;
  };

  KernelResult bind_call(const Node& /*node*/, const CopiesCall& c) const {
    // Copies move bits: a float copy through registers could quiet a signalling NaN, so 4-byte
    // elements move as int32.
    const ocl::DType bits = c.dtype == DType::kFloat32 ? ocl::DType::kInt32 : cl_dtype(c.dtype);
    const auto size = static_cast<int64_t>(dtype_bytes(c.dtype));
    std::vector<Copy> copies;
    for (const StridedCopyCall& s : c.copies) {
      copies.push_back({s.input, cl_layout(s.layout), s.src_offset, s.dst_offset});
    }
    ocl::Device& device = device_;
    return make_kernel([&device, bits, size, copies = std::move(copies)](const KernelIO& io) {
      for (const Copy& copy : copies) {
        if (copy.layout.elements() == 0) continue;
        const ocl::ElementwiseCall call{ocl::Elementwise::kCopy, bits, copy.layout};
        device.elementwise(call, cl_advance(cl_out(io, 0), copy.dst_offset * size),
                           cl_advance(cl_in(io, copy.input), copy.src_offset * size));
      }
    });
  }

  KernelResult bind_call(const Node& /*node*/, const FillCall& c) const {
    const uint64_t pattern = c.pattern;
    const std::size_t size = dtype_bytes(c.dtype);
    const int64_t elements = c.elements;
    ocl::Device& device = device_;
    return make_kernel([&device, pattern, size, elements](const KernelIO& io) {
      if (elements > 0) device.fill(cl_out(io, 0), &pattern, size, elements);
    });
  }

  KernelResult bind_call(const Node& /*node*/, const GatherCall& c) const {
    ocl::GatherCall call;
    call.outer = c.outer;
    call.axis_dim = c.axis_dim;
    call.indices = c.indices;
    call.inner_bytes = c.inner_bytes;
    call.index_dtype = cl_dtype(c.index_dtype);
    call.tag = c.node_index;  // ClSession::finish_run names the node by it
    ocl::Device& device = device_;
    return make_kernel([&device, call](const KernelIO& io) {
      if (call.indices > 0) device.gather(call, cl_out(io, 0), cl_in(io, 0), cl_in(io, 1));
    });
  }

  KernelResult bind_call(const Node& /*node*/, const ReduceCall& c) const {
    ocl::ReduceCall call;
    call.op = cl_reduce_op(c.op);
    call.dtype = cl_dtype(c.dtype);
    call.out_rank = c.out_rank;
    call.reduced_rank = c.reduced_rank;
    std::copy_n(c.out_dims.begin(), c.out_rank, call.out_dims);
    std::copy_n(c.in_strides.begin(), c.out_rank, call.in_strides);
    std::copy_n(c.reduced_dims.begin(), c.reduced_rank, call.reduced_dims);
    std::copy_n(c.reduced_strides.begin(), c.reduced_rank, call.reduced_strides);
    ocl::Device& device = device_;
    return make_kernel(
        [&device, call](const KernelIO& io) { device.reduce(call, cl_out(io, 0), cl_in(io, 0)); });
  }

  KernelResult bind_call(const Node& /*node*/, const SoftmaxCall& c) const {
    const ocl::SoftmaxCall call{c.outer, c.n, c.inner};
    ocl::Device& device = device_;
    return make_kernel([&device, call](const KernelIO& io) {
      if (call.outer * call.n * call.inner > 0) device.softmax(call, cl_out(io, 0), cl_in(io, 0));
    });
  }

  KernelResult bind_call(const Node& node, const LayerNormCall& c) const {
    if (!c.per_element) {
      return node_error(node, "a Scale or B that broadcasts over the rows, on the OpenCL device",
                        ErrorCode::kUnsupported);
    }
    const ocl::LayerNormCall call{c.rows, c.n, c.epsilon};
    ocl::Device& device = device_;
    return make_kernel([&device, call](const KernelIO& io) {
      if (call.rows == 0) return;
      const auto out = [&](std::size_t k) {
        return k < io.out.size() ? cl_out(io, k) : ocl::Mem{};
      };
      device.layer_norm(call, cl_out(io, 0), cl_in(io, 0), cl_in(io, 1),
                        io.in.size() > 2 ? cl_in(io, 2) : ocl::Mem{}, out(1), out(2));
    });
  }

  KernelResult bind_call(const Node& node, const GemmCall& g) const {
    if (Status s = reserve(device_, node, g.trans_a, g.trans_b, g.m, g.n, g.k, g.lda, g.ldb, g.ldc);
        !s) {
      return s.error();
    }
    const ocl::Strided c_layout = cl_layout(g.c_layout);
    const ocl::Activation activation = cl_activation(g.activation);
    ocl::Device& device = device_;
    return make_kernel([&device, g, c_layout, activation](const KernelIO& io) {
      const ocl::Mem c = cl_out(io, 0);
      if (g.m == 0 || g.n == 0) return;
      if (g.copy_c) {
        const ocl::ElementwiseCall copy{ocl::Elementwise::kCopy, ocl::DType::kInt32, c_layout};
        device.elementwise(copy, c, cl_in(io, 2));
      }
      if (g.k == 0) {
        // An empty product: C is beta * C, or zeros.
        if (!g.copy_c) {
          const float zero = 0.0f;
          device.fill(c, &zero, sizeof zero, g.batch * g.m * g.n);
        }
      } else if (g.batch == 1) {
        device.gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, cl_in(io, 0), g.lda, cl_in(io, 1),
                    g.ldb, g.beta, c, g.ldc);
      } else {
        device.gemm_batched(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, cl_in(io, 0), g.lda,
                            g.stride_a, cl_in(io, 1), g.ldb, g.stride_b, g.beta, c, g.ldc,
                            g.stride_c, g.batch);
      }
      if (g.bias || activation != ocl::Activation::kNone) {
        device.bias_activation(c, g.batch * g.m, g.n, g.bias ? cl_in(io, 2) : ocl::Mem{},
                               activation);
      }
    });
  }

  KernelResult bind_call(const Node& node, const GemmListCall& list) const {
    const int64_t lda = std::max<int64_t>(1, list.k), ldb = std::max<int64_t>(1, list.n);
    if (Status s = reserve(device_, node, false, false, list.m, list.n, list.k, lda, ldb, ldb);
        !s) {
      return s.error();
    }
    ocl::Device& device = device_;
    return make_kernel([&device, list, lda, ldb](const KernelIO& io) {
      if (list.m == 0 || list.n == 0) return;
      constexpr int64_t kFloat = sizeof(float);
      for (const auto& [a, b, c] : list.offsets) {
        const ocl::Mem out = cl_advance(cl_out(io, 0), c * kFloat);
        if (list.k == 0) {
          const float zero = 0.0f;
          device.fill(out, &zero, sizeof zero, list.m * list.n);
          continue;
        }
        device.gemm(false, false, list.m, list.n, list.k, 1.0f,
                    cl_advance(cl_in(io, 0), a * kFloat), lda, cl_advance(cl_in(io, 1), b * kFloat),
                    ldb, 0.0f, out, ldb);
      }
    });
  }

  KernelResult bind_call(const Node& node, const AttentionCall& call) const {
    return bind_cl_attention(device_, node, call);
  }

  ocl::Device& device_;
};

}  // namespace

std::unique_ptr<Binder> make_cl_binder(ocl::Device& device) {
  return std::make_unique<ClBinder>(device);
}

ocl::Mem cl_in(const KernelIO& io, std::size_t k) {
  const auto* m = static_cast<const ocl::Mem*>(io.in[k]);
  return m != nullptr ? *m : ocl::Mem{};
}

ocl::Mem cl_out(const KernelIO& io, std::size_t k) {
  const auto* m = static_cast<const ocl::Mem*>(io.out[k]);
  return m != nullptr ? *m : ocl::Mem{};
}

ocl::Mem cl_advance(ocl::Mem mem, int64_t bytes) {
  mem.offset = static_cast<std::size_t>(static_cast<int64_t>(mem.offset) + bytes);
  return mem;
}

}  // namespace coproc::runtime::detail
