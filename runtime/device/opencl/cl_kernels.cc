#include "device/opencl/cl_kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace coproc::runtime::detail {

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

void cl_dense_strides(const Shape& shape, int rank, int64_t* strides) {
  const int shift = rank - shape.rank;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const int sd = d - shift;
    if (sd < 0) {
      strides[d] = 0;
      continue;
    }
    strides[d] = stride;
    stride *= shape.dims[at(sd)];
  }
}

Result<std::unique_ptr<Kernel>> cl_elementwise(const PlanContext& ctx, ocl::Elementwise op,
                                               DType value_dtype, const Shape& out) {
  std::vector<Shape> shapes;
  for (std::size_t k = 0; k < ctx.in.size(); ++k) shapes.push_back(ctx.input(k).shape);
  shapes.push_back(out);  // so that the output's own strides come out dense
  MultiBroadcast b;
  if (shapes.size() > 4 || !make_multi_broadcast(shapes, &b) || !(b.out == out)) {
    return ctx.fail("internal: operands do not broadcast to the output");
  }
  ocl::ElementwiseCall call;
  call.op = op;
  call.dtype = cl_dtype(value_dtype);
  call.layout.rank = out.rank;
  int64_t* const operand_strides[3] = {call.layout.a, call.layout.b, call.layout.c};
  for (int d = 0; d < out.rank; ++d) {
    call.layout.dims[d] = out.dims[at(d)];
    call.layout.out[d] = b.strides.back()[at(d)];
    for (std::size_t k = 0; k + 1 < shapes.size(); ++k) operand_strides[k][d] = b.strides[k][at(d)];
  }
  const std::size_t operands = ctx.in.size();
  ocl::Device& device = *ctx.cl;
  return make_kernel([&device, call, operands](const KernelIO& io) {
    if (call.layout.elements() == 0) return;
    device.elementwise(call, cl_out(io, 0), cl_in(io, 0), operands > 1 ? cl_in(io, 1) : ocl::Mem{},
                       operands > 2 ? cl_in(io, 2) : ocl::Mem{});
  });
}

std::unique_ptr<Kernel> cl_cast(ocl::Device& device, DType from, DType to, int64_t elements) {
  const ocl::CastCall call{cl_dtype(from), cl_dtype(to), elements};
  return make_kernel([&device, call](const KernelIO& io) {
    if (call.elements > 0) device.cast(call, cl_out(io, 0), cl_in(io, 0));
  });
}

std::unique_ptr<Kernel> cl_copies(ocl::Device& device, DType dtype, std::vector<ClCopy> copies) {
  // Copies move bits: a float copy through registers could quiet a signalling NaN, so 4-byte
  // elements move as int32.
  const ocl::DType bits = dtype == DType::kFloat32 ? ocl::DType::kInt32 : cl_dtype(dtype);
  const auto size = static_cast<int64_t>(dtype_bytes(dtype));
  return make_kernel([&device, bits, size, copies = std::move(copies)](const KernelIO& io) {
    for (const ClCopy& c : copies) {
      if (c.layout.elements() == 0) continue;
      ocl::ElementwiseCall call{ocl::Elementwise::kCopy, bits, c.layout};
      device.elementwise(call, cl_advance(cl_out(io, 0), c.dst_offset * size),
                         cl_advance(cl_in(io, c.input), c.src_offset * size));
    }
  });
}

std::unique_ptr<Kernel> cl_fill(ocl::Device& device, DType dtype, const void* value,
                                int64_t elements) {
  uint64_t pattern = 0;
  const std::size_t size = dtype_bytes(dtype);
  std::memcpy(&pattern, value, size);
  return make_kernel([&device, pattern, size, elements](const KernelIO& io) {
    if (elements > 0) device.fill(cl_out(io, 0), &pattern, size, elements);
  });
}

std::unique_ptr<Kernel> cl_gather(ocl::Device& device, const ocl::GatherCall& call) {
  return make_kernel([&device, call](const KernelIO& io) {
    if (call.indices > 0) device.gather(call, cl_out(io, 0), cl_in(io, 0), cl_in(io, 1));
  });
}

std::unique_ptr<Kernel> cl_reduce(ocl::Device& device, const ocl::ReduceCall& call) {
  return make_kernel([&device, call](const KernelIO& io) {
    device.reduce(call, cl_out(io, 0), cl_in(io, 0));
  });
}

std::unique_ptr<Kernel> cl_softmax(ocl::Device& device, const ocl::SoftmaxCall& call) {
  return make_kernel([&device, call](const KernelIO& io) {
    if (call.outer * call.n * call.inner > 0) device.softmax(call, cl_out(io, 0), cl_in(io, 0));
  });
}

std::unique_ptr<Kernel> cl_layer_norm(ocl::Device& device, const ocl::LayerNormCall& call) {
  return make_kernel([&device, call](const KernelIO& io) {
    if (call.rows == 0) return;
    const auto out = [&](std::size_t k) { return k < io.out.size() ? cl_out(io, k) : ocl::Mem{}; };
    device.layer_norm(call, cl_out(io, 0), cl_in(io, 0), cl_in(io, 1),
                      io.in.size() > 2 ? cl_in(io, 2) : ocl::Mem{}, out(1), out(2));
  });
}

namespace {

// Compiles CLBlast's kernels for one GEMM shape and sizes the device's temporary buffer, so that
// a run allocates and compiles nothing.
Status reserve(const PlanContext& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
               int64_t lda, int64_t ldb, int64_t ldc) {
  if (m == 0 || n == 0 || k == 0) return {};
  std::string error;
  if (!ctx.cl->reserve_gemm(trans_a, trans_b, m, n, k, lda, ldb, ldc, &error)) {
    return ctx.unsupported(fmt::format("the OpenCL GEMM [{} x {}] x [{} x {}] fails: {}", m, k, k,
                                       n, error));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Kernel>> cl_gemm(const PlanContext& ctx, const ClGemm& g) {
  if (Status s = reserve(ctx, g.trans_a, g.trans_b, g.m, g.n, g.k, g.lda, g.ldb, g.ldc); !s) {
    return s.error();
  }
  ocl::Device& device = *ctx.cl;
  return make_kernel([&device, g](const KernelIO& io) {
    const ocl::Mem c = cl_out(io, 0);
    if (g.m == 0 || g.n == 0) return;
    if (g.copy_c) {
      ocl::ElementwiseCall copy{ocl::Elementwise::kCopy, ocl::DType::kInt32, g.c_layout};
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
    if (g.bias || g.activation != ocl::Activation::kNone) {
      device.bias_activation(c, g.batch * g.m, g.n, g.bias ? cl_in(io, 2) : ocl::Mem{},
                             g.activation);
    }
  });
}

Result<std::unique_ptr<Kernel>> cl_gemm_list(const PlanContext& ctx, const ClGemmList& list) {
  const int64_t lda = std::max<int64_t>(1, list.k), ldb = std::max<int64_t>(1, list.n);
  if (Status s = reserve(ctx, false, false, list.m, list.n, list.k, lda, ldb, ldb); !s) {
    return s.error();
  }
  ocl::Device& device = *ctx.cl;
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

}  // namespace coproc::runtime::detail
