// Matrix products and Softmax: Gemm, MatMul (numpy matmul semantics: 1-D operands, batched N-D
// with broadcast batch dims) and Softmax (both opset meanings).
#include <fmt/format.h>

#include <algorithm>

#include "coproc/kernels/cpu.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

namespace cpu = kernels::cpu;

// Softmax changed meaning in opset 13: before, it flattened the input to 2-D at `axis`.
constexpr int64_t kSoftmaxAlongAxisOpset = 13;

Status require_float(const PlanContext& ctx, std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) {
    if (ctx.has_input(k) && ctx.input(k).dtype != DType::kFloat32) {
      return ctx.unsupported(fmt::format("input {} is {}; only float32 is supported", k,
                                         dtype_name(ctx.input(k).dtype)));
    }
  }
  return {};
}

// The node's B packed at load, or nullptr when its GEMM runs on OpenBLAS.
const PackedGemm* packed_of(const PlanContext& ctx) {
  return ctx.node.packed >= 0 ? &ctx.graph.packed[static_cast<std::size_t>(ctx.node.packed)]
                              : nullptr;
}

// The host's GEMM: packed at load (gemm_packed) or through OpenBLAS.
struct HostGemm {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0, n = 0, k = 0, lda = 1, ldb = 1;
  float alpha = 1.0f;
  float beta = 0.0f;
  bool copy_c = false;  // broadcast C into the output first; beta then scales it in the GEMM
  cpu::Broadcast c_layout;
  const cpu::PackedB* packed = nullptr;
  const float* bias = nullptr;

  void run(const float* a, const float* b, const float* c, float* out) const {
    if (copy_c) cpu::broadcast_copy(c, out, c_layout);
    const int64_t ldc = std::max<int64_t>(1, n);
    if (packed != nullptr) {
      cpu::gemm_packed(m, a, lda, *packed, out, ldc, alpha, beta, bias);
      return;
    }
    cpu::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, out, ldc);
  }
};

Status plan_gemm(PlanContext& ctx) {
  if (Status s = require_float(ctx, 3); !s) return s.error();
  const Shape& a = ctx.input(0).shape;
  const Shape& b = ctx.input(1).shape;
  if (a.rank != 2 || b.rank != 2) {
    return ctx.fail(fmt::format("A {} and B {} must be 2-D", a.to_string(), b.to_string()));
  }
  HostGemm g;
  g.trans_a = ctx.node.int_attr("transA", 0) != 0;
  g.trans_b = ctx.node.int_attr("transB", 0) != 0;
  g.m = g.trans_a ? a.dims[1] : a.dims[0];
  g.k = g.trans_a ? a.dims[0] : a.dims[1];
  g.n = g.trans_b ? b.dims[0] : b.dims[1];
  const int64_t kb = g.trans_b ? b.dims[1] : b.dims[0];
  if (kb != g.k) {
    return ctx.fail(
        fmt::format("inner dims differ: op(A) is [{}, {}], op(B) is [{}, {}]", g.m, g.k, kb, g.n));
  }
  g.lda = std::max<int64_t>(1, a.dims[1]);
  g.ldb = std::max<int64_t>(1, b.dims[1]);
  g.alpha = ctx.node.float_attr("alpha", 1.0f);
  const float beta = ctx.node.float_attr("beta", 1.0f);
  const PackedGemm* packed = packed_of(ctx);
  if (packed != nullptr) g.packed = &packed->b;
  const int64_t mn[2] = {g.m, g.n};
  const Shape out = Shape::of(mn);
  ctx.output(0) = {DType::kFloat32, out};
  // ONNX: with beta == 0 the product ignores C entirely (even NaN or inf in it).
  if (ctx.has_input(2) && beta != 0.0f) {
    const Shape& c = ctx.input(2).shape;
    if (!cpu::make_broadcast(c.view(), out.view(), &g.c_layout) ||
        !(Shape::of({g.c_layout.out_dims, static_cast<std::size_t>(g.c_layout.out_rank)}) == out)) {
      return ctx.fail(fmt::format("C {} does not broadcast to {}", c.to_string(), out.to_string()));
    }
    if (packed != nullptr && !packed->bias.empty()) {
      g.bias = packed->bias.data();  // beta * C, added by the GEMM's epilogue
    } else {
      g.copy_c = true;
      g.beta = beta;
    }
  }
  auto host = make_kernel([g](const KernelIO& io) {
    g.run(io.input<float>(0), io.input<float>(1), g.copy_c ? io.input<float>(2) : nullptr,
          io.output<float>(0));
  });
  return ctx.choose(std::move(host), [&] {
    GemmCall call;
    call.trans_a = g.trans_a;
    call.trans_b = g.trans_b;
    call.m = g.m;
    call.n = g.n;
    call.k = g.k;
    call.lda = g.lda;
    call.ldb = g.ldb;
    call.ldc = std::max<int64_t>(1, g.n);
    call.alpha = g.alpha;
    // C broadcast into the output, then scaled by beta in the GEMM (the packed bias is the
    // host's).
    call.copy_c = ctx.has_input(2) && beta != 0.0f;
    call.beta = call.copy_c ? beta : 0.0f;
    if (call.copy_c) {
      MultiBroadcast c_into_out;
      const Shape shapes[2] = {ctx.input(2).shape, out};
      make_multi_broadcast(shapes, &c_into_out);  // checked above
      call.c_layout.rank = out.rank;
      for (int32_t d = 0; d < out.rank; ++d) {
        call.c_layout.dims[at(d)] = out.dims[at(d)];
        call.c_layout.a[at(d)] = c_into_out.strides[0][at(d)];
        call.c_layout.out[at(d)] = c_into_out.strides[1][at(d)];
      }
    }
    return call;
  });
}

// A MatMul over batches of matrices for a device: one batched GEMM when each operand is either one
// matrix for all or one per output batch; otherwise one GEMM per output matrix.
DeviceCall batched_call(const MultiBroadcast& bb, const Shape& a_batch, const Shape& b_batch,
                        int64_t m, int64_t n, int64_t k) {
  const int64_t out_batches = bb.out.elements();
  const auto stride = [&](const Shape& batch, int64_t matrix) -> int64_t {
    if (batch.elements() == 1) return 0;
    return batch.elements() == out_batches ? matrix : -1;
  };
  const int64_t stride_a = stride(a_batch, m * k), stride_b = stride(b_batch, k * n);
  if (stride_a >= 0 && stride_b >= 0) {
    GemmCall call;
    call.m = m;
    call.n = n;
    call.k = k;
    call.lda = std::max<int64_t>(1, k);
    call.ldb = call.ldc = std::max<int64_t>(1, n);
    call.batch = out_batches;
    call.stride_a = stride_a;
    call.stride_b = stride_b;
    call.stride_c = m * n;
    return call;
  }
  GemmListCall list{m, n, k, {}};
  for_each_broadcast(bb, [&](int64_t i, const std::array<int64_t, 4>& off) {
    list.offsets.push_back({off[0] * m * k, off[1] * k * n, i * m * n});
  });
  return list;
}

// numpy matmul: a 1-D lhs is a row [1, K] (that dim dropped from the result), a 1-D rhs a column
// [K, 1] (dropped too); batch dims (all but the last two) broadcast. A rhs that is one matrix
// (2-D, or batch dims all 1) runs as a single GEMM over all the lhs's rows.
Status plan_matmul(PlanContext& ctx) {
  if (Status s = require_float(ctx, 2); !s) return s.error();
  Shape a = ctx.input(0).shape;
  Shape b = ctx.input(1).shape;
  if (a.rank == 0 || b.rank == 0) return ctx.fail("operands must have rank >= 1");
  const bool a_vec = a.rank == 1;
  const bool b_vec = b.rank == 1;
  if (a_vec) a = Shape::of(std::array<int64_t, 2>{1, a.dims[0]});
  if (b_vec) b = Shape::of(std::array<int64_t, 2>{b.dims[0], 1});
  const int64_t m = a.dims[static_cast<std::size_t>(a.rank - 2)];
  const int64_t k = a.dims[static_cast<std::size_t>(a.rank - 1)];
  const int64_t kb = b.dims[static_cast<std::size_t>(b.rank - 2)];
  const int64_t n = b.dims[static_cast<std::size_t>(b.rank - 1)];
  if (k != kb) {
    return ctx.fail(fmt::format("inner dims differ: {} x {}", ctx.input(0).shape.to_string(),
                                ctx.input(1).shape.to_string()));
  }
  // Batch dims, broadcast.
  Shape a_batch = Shape::of({a.dims.data(), static_cast<std::size_t>(a.rank - 2)});
  Shape b_batch = Shape::of({b.dims.data(), static_cast<std::size_t>(b.rank - 2)});
  const Shape batches[2] = {a_batch, b_batch};
  MultiBroadcast bb;
  if (!make_multi_broadcast(batches, &bb)) {
    return ctx.fail(fmt::format("batch dims of {} and {} do not broadcast",
                                ctx.input(0).shape.to_string(), ctx.input(1).shape.to_string()));
  }
  Shape out = bb.out;
  if (!a_vec) out.dims[static_cast<std::size_t>(out.rank++)] = m;
  if (!b_vec) out.dims[static_cast<std::size_t>(out.rank++)] = n;
  ctx.output(0) = {DType::kFloat32, out};

  const PackedGemm* packed = packed_of(ctx);
  const bool single_rhs = b_batch.elements() == 1;
  if (single_rhs) {
    // All lhs rows times one [K, N] matrix: one GEMM (the lhs's batch dims need no broadcast
    // since the rhs has none that are not 1).
    HostGemm g;
    g.m = a_batch.elements() * m;
    g.n = n;
    g.k = k;
    g.lda = std::max<int64_t>(1, k);
    g.ldb = std::max<int64_t>(1, n);
    if (packed != nullptr) g.packed = &packed->b;
    // An lhs batch of 1s broadcast against more rhs batches cannot happen here (rhs has 1).
    if (bb.out.elements() != a_batch.elements()) return ctx.fail("internal: batch mismatch");
    GemmCall call;
    call.m = g.m;
    call.n = n;
    call.k = k;
    call.lda = g.lda;
    call.ldb = call.ldc = g.ldb;
    return ctx.choose(make_kernel([g](const KernelIO& io) {
                        g.run(io.input<float>(0), io.input<float>(1), nullptr, io.output<float>(0));
                      }),
                      call);
  }
  // One GEMM per output batch, each operand's matrix found by its broadcast strides.
  struct Batched {
    MultiBroadcast bb;
    int64_t m, n, k, a_mat, b_mat;
  };
  Batched p{bb, m, n, k, m * k, k * n};
  return ctx.choose(make_kernel([p](const KernelIO& io) {
                      const float* lhs = io.input<float>(0);
                      const float* rhs = io.input<float>(1);
                      float* result = io.output<float>(0);
                      for_each_broadcast(p.bb, [&](int64_t i, const std::array<int64_t, 4>& off) {
                        cpu::gemm(false, false, p.m, p.n, p.k, 1.0f, lhs + off[0] * p.a_mat,
                                  std::max<int64_t>(1, p.k), rhs + off[1] * p.b_mat,
                                  std::max<int64_t>(1, p.n), 0.0f, result + i * p.m * p.n,
                                  std::max<int64_t>(1, p.n));
                      });
                    }),
                    [&] { return batched_call(bb, a_batch, b_batch, m, n, k); });
}

Status plan_softmax(PlanContext& ctx) {
  if (Status s = require_float(ctx, 1); !s) return s.error();
  const Shape& x = ctx.input(0).shape;
  const bool as_2d = ctx.node.opset < kSoftmaxAlongAxisOpset;
  auto axis = ctx.axis(ctx.node.int_attr("axis", as_2d ? 1 : -1), x.rank);
  if (!axis) return axis.error();
  const int32_t a = axis.value();
  int64_t outer = product(x, 0, a);
  int64_t n = x.dims[static_cast<std::size_t>(a)];
  int64_t inner = product(x, a + 1, x.rank);
  if (as_2d) {  // opset < 13: rows of the input flattened to 2-D at axis
    n *= inner;
    inner = 1;
  }
  ctx.output(0) = {DType::kFloat32, x};
  return ctx.choose(make_kernel([outer, n, inner](const KernelIO& io) {
                      cpu::softmax_strided(io.input<float>(0), io.output<float>(0), outer, n,
                                           inner);
                    }),
                    SoftmaxCall{outer, n, inner});
}

constexpr OpDef kOps[] = {
    {"Gemm", plan_gemm},
    {"MatMul", plan_matmul},
    {"Softmax", plan_softmax, Aliasing::kElementwise},
};

}  // namespace

std::span<const OpDef> linalg_ops() { return kOps; }

}  // namespace coproc::runtime::detail
