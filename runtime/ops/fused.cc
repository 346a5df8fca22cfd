// Fused operators of ours, made from ONNX patterns by fuse_patterns (passes.h; the matching is in
// graph/fusion.cc, which writes the attributes read here). No model can name them: the loader
// refuses the "coproc." prefix.
//
//  coproc.Gelu(X) -> Y: exact (erf) GELU, elementwise.
//
//  coproc.MatMulBias(X, W, bias) -> Y, attribute `activation` ("" or "Relu", "Gelu", "Tanh",
//    "Sigmoid"): activation(MatMul(X, W) + bias) with numpy matmul semantics for an N-D X
//    against the 2-D weight W [K, N]; bias is [N]. With W packed at load (Node::packed) each block
//    of rows runs gemm_packed with the bias in its epilogue, then the activation over the block
//    while its rows are in cache.
//
//  coproc.Attention(Q, K, V, mask?) -> O, attributes `scale` (float, default 1) and `layout`:
//    O = Softmax(scale * Q K^T + mask, last axis) V, one (batch, head) block at a time.
//     - "bhsd" (default): Q [..., Sq, D], K given as K^T [..., D, Sk], V [..., Sk, Dv],
//       O [..., Sq, Dv], the batch dims (all but the last two) broadcasting as MatMul's do;
//     - "bshd": Q [B, Sq, H, D], K [B, Sk, H, D], V [B, Sk, H, Dv] and O [B, Sq, H, Dv]: the
//       tensors before the exporter's head transposes (Q, V: perm [0, 2, 1, 3]; K: [0, 2, 3, 1])
//       and after its merging one ([0, 2, 1, 3]); the kernel reads and writes them with strides,
//       so those transposes never run.
//    mask broadcasts to the scores [batch..., Sq, Sk]. Shapes the unfused chain would accept but
//    this kernel does not (an operand of rank < 2; a mask that widens the scores, e.g. [S, S]
//    against a single query row) are refused as kUnsupported: load with LoadOptions::fuse off.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "coproc/kernels/cpu.h"
#include "coproc/kernels/parallel.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

namespace cpu = kernels::cpu;

// The least work worth a share of the intra-op threads (a wake-up costs microseconds): as
// gemm_packed splits its rows.
constexpr int64_t kMinMultiplyAdds = int64_t{1} << 20;

Status require_float(const PlanContext& ctx, std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) {
    if (ctx.has_input(k) && ctx.input(k).dtype != DType::kFloat32) {
      return ctx.unsupported(fmt::format("input {} is {}; only float32 is supported", k,
                                         dtype_name(ctx.input(k).dtype)));
    }
  }
  return {};
}

// ---------------------------------------------------------------- coproc.Gelu

Status plan_gelu(PlanContext& ctx) {
  if (Status s = require_float(ctx, 1); !s) return s.error();
  ctx.output(0) = {DType::kFloat32, ctx.input(0).shape};
  const int64_t n = ctx.input(0).shape.elements();
  auto host = make_kernel(
      [n](const KernelIO& io) { cpu::gelu(io.input<float>(0), io.output<float>(0), n); });
  return choose_elementwise(ctx, std::move(host), ElementwiseOp::kGelu, DType::kFloat32,
                            ctx.input(0).shape);
}

// ---------------------------------------------------------------- coproc.MatMulBias

Result<cpu::Activation> activation_of(const PlanContext& ctx) {
  const Attribute* a = ctx.node.attribute("activation");
  const std::string name = a != nullptr ? a->s : "";
  if (name.empty()) return cpu::Activation::kNone;
  if (name == "Relu") return cpu::Activation::kRelu;
  if (name == "Gelu") return cpu::Activation::kGelu;
  if (name == "Tanh") return cpu::Activation::kTanh;
  if (name == "Sigmoid") return cpu::Activation::kSigmoid;
  return ctx.fail(fmt::format("unknown activation '{}'", name));
}

// The device-neutral activations number as the host's.
constexpr ActivationOp activation_op(cpu::Activation a) {
  switch (a) {
    case cpu::Activation::kRelu:
      return ActivationOp::kRelu;
    case cpu::Activation::kGelu:
      return ActivationOp::kGelu;
    case cpu::Activation::kTanh:
      return ActivationOp::kTanh;
    case cpu::Activation::kSigmoid:
      return ActivationOp::kSigmoid;
    case cpu::Activation::kNone:
      break;
  }
  return ActivationOp::kNone;
}

Status plan_matmul_bias(PlanContext& ctx) {
  if (Status s = require_float(ctx, 3); !s) return s.error();
  const Shape& x = ctx.input(0).shape;
  const Shape& w = ctx.input(1).shape;
  const Shape& bias = ctx.input(2).shape;
  if (x.rank < 1 || w.rank != 2) {
    return ctx.fail(
        fmt::format("X {} must have rank >= 1 and W {} rank 2", x.to_string(), w.to_string()));
  }
  const int64_t k = w.dims[0];
  const int64_t n = w.dims[1];
  if (x.dims[static_cast<std::size_t>(x.rank - 1)] != k) {
    return ctx.fail(fmt::format("inner dims differ: {} x {}", x.to_string(), w.to_string()));
  }
  if (bias.rank != 1 || bias.dims[0] != n) {
    return ctx.fail(fmt::format("bias {} must be [{}]", bias.to_string(), n));
  }
  auto activation = activation_of(ctx);
  if (!activation) return activation.error();
  // numpy matmul of an N-D X with a matrix: X's rows times W, the last dim becoming N (a 1-D X
  // is one row, and the result is 1-D too).
  Shape out = x;
  out.dims[static_cast<std::size_t>(out.rank - 1)] = n;
  ctx.output(0) = {DType::kFloat32, out};

  struct Params {
    int64_t m, k, n;
    cpu::Activation activation;
    const cpu::PackedB* packed;
    const float* packed_bias;  // set when weight packing moved the bias into the PackedGemm
  };
  Params p{product(x, 0, x.rank - 1), k, n, activation.value(), nullptr, nullptr};
  GemmCall call;
  call.m = p.m;
  call.n = n;
  call.k = k;
  call.lda = std::max<int64_t>(1, k);
  call.ldb = call.ldc = std::max<int64_t>(1, n);
  call.bias = true;
  call.activation = activation_op(activation.value());
  if (ctx.node.packed >= 0) {
    const PackedGemm& g = ctx.graph.packed[static_cast<std::size_t>(ctx.node.packed)];
    p.packed = &g.b;
    if (!g.bias.empty()) p.packed_bias = g.bias.data();
  }
  auto host = make_kernel([p](const KernelIO& io) {
    const float* a = io.input<float>(0);
    const float* b = p.packed_bias != nullptr ? p.packed_bias : io.input<float>(2);
    float* y = io.output<float>(0);
    const int64_t lda = std::max<int64_t>(1, p.k);
    const int64_t ldy = std::max<int64_t>(1, p.n);
    if (p.packed != nullptr) {
      // Rows split over the intra-op threads in shares of at least kMinMultiplyAdds; each share
      // runs in blocks of kMaxBlockRows, the activation right after each block's GEMM while the
      // block is in cache. gemm_packed reads every panel of W once per kMaxBlockRows rows
      // whatever the call's row count, so the split costs no extra weight traffic. One share
      // (few rows) runs inline, leaving the pool to gemm_packed's own split.
      const int64_t grain =
          std::max<int64_t>(1, kMinMultiplyAdds / std::max<int64_t>(1, p.n * p.k));
      cpu::parallel_for(p.m, grain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; r += cpu::kMaxBlockRows) {
          const int64_t rows = std::min(cpu::kMaxBlockRows, end - r);
          cpu::gemm_packed(rows, a + r * lda, lda, *p.packed, y + r * ldy, ldy, 1.0f, 0.0f, b);
          cpu::activate(p.activation, y + r * ldy, rows * p.n);
        }
      });
      return;
    }
    // Unpacked (LoadOptions::pack_weights off): OpenBLAS repacks W on every call, so one call for
    // all rows, with the bias copied into every row first and accumulated onto (beta 1).
    for (int64_t r = 0; r < p.m; ++r) {
      std::memcpy(y + r * ldy, b, static_cast<std::size_t>(p.n) * sizeof(float));
    }
    cpu::gemm(false, false, p.m, p.n, p.k, 1.0f, a, lda, io.input<float>(1), ldy, 1.0f, y, ldy);
    cpu::activate(p.activation, y, p.m * p.n);
  });
  return ctx.choose(std::move(host), call);
}

// ---------------------------------------------------------------- coproc.Attention

// Operands of the attention kernel, in the order of the strides below.
// (Named one by one: clang 14 does not resolve `using enum` at namespace scope.)
constexpr std::size_t kQ = AttentionCall::kQ, kK = AttentionCall::kK, kV = AttentionCall::kV,
                      kMask = AttentionCall::kMask, kOut = AttentionCall::kOut,
                      kOperands = AttentionCall::kOperands;

// One operand's batch dims (the dims that index heads) and their strides in elements.
struct BatchDims {
  Shape dims;
  std::array<int64_t, kMaxRank> strides{};
};

// Dims [begin, end) of a dense row-major shape, with their strides.
BatchDims dense_batch(const Shape& s, int32_t begin, int32_t end) {
  BatchDims b;
  b.dims.rank = end - begin;
  int64_t stride = product(s, end, s.rank);
  for (int32_t d = end - 1; d >= begin; --d) {
    b.dims.dims[static_cast<std::size_t>(d - begin)] = s.dims[static_cast<std::size_t>(d)];
    b.strides[static_cast<std::size_t>(d - begin)] = stride;
    stride *= s.dims[static_cast<std::size_t>(d)];
  }
  return b;
}

// The heads to run: every index over `dims`, each operand's matrix at the sum of index times
// stride (0 where the operand broadcasts).
struct HeadLoop {
  Shape dims;
  std::array<std::array<int64_t, kMaxRank>, kOperands> strides{};

  // Right-aligns the operands' batch dims (numpy broadcasting); false when they do not
  // broadcast.
  bool broadcast(std::span<const BatchDims> operands) {
    dims.rank = 0;
    for (const BatchDims& b : operands) dims.rank = std::max(dims.rank, b.dims.rank);
    std::fill(dims.dims.begin(), dims.dims.end(), 1);
    for (std::size_t k = 0; k < operands.size(); ++k) {
      const BatchDims& b = operands[k];
      const int32_t shift = dims.rank - b.dims.rank;
      for (int32_t d = 0; d < b.dims.rank; ++d) {
        const auto od = static_cast<std::size_t>(d + shift);
        const int64_t v = b.dims.dims[static_cast<std::size_t>(d)];
        if (v == 1) continue;
        if (dims.dims[od] != 1 && dims.dims[od] != v) return false;
        dims.dims[od] = v;
        strides[k][od] = b.strides[static_cast<std::size_t>(d)];
      }
    }
    return true;
  }
};

class AttentionKernel final : public Kernel {
 public:
  // Heads run in up to `shares` groups at once (one per intra-op thread), each with its own
  // score buffer.
  AttentionKernel(const cpu::AttentionHead& head, const HeadLoop& loop, bool has_mask,
                  int64_t shares)
      : head_(head),
        loop_(loop),
        has_mask_(has_mask),
        shares_(shares),
        scores_(static_cast<std::size_t>(shares * head.q_rows * head.kv_rows)) {}

  Status run(const KernelIO& io) const override {
    const int64_t heads = loop_.dims.elements();
    if (heads == 0 || head_.q_rows == 0 || head_.value_dim == 0) return {};
    const float* q = io.input<float>(0);
    const float* k = io.input<float>(1);
    const float* v = io.input<float>(2);
    const float* mask = has_mask_ ? io.input<float>(3) : nullptr;
    float* out = io.output<float>(0);
    const int64_t head_scores = head_.q_rows * head_.kv_rows;
    // Share s takes heads [s * heads / shares, (s + 1) * heads / shares) and scores_ slot s, so
    // no two threads share a slot however parallel_for groups the shares.
    cpu::parallel_for(shares_, 1, [&](int64_t first_share, int64_t end_share) {
      for (int64_t s = first_share; s < end_share; ++s) {
        float* scores = scores_.data() + s * head_scores;
        for (int64_t h = s * heads / shares_; h < (s + 1) * heads / shares_; ++h) {
          const std::array<int64_t, kOperands> at = offsets(h);
          cpu::attention_head(head_, q + at[kQ], k + at[kK], v + at[kV],
                              mask != nullptr ? mask + at[kMask] : nullptr, scores, out + at[kOut]);
        }
      }
    });
    return {};
  }

 private:
  // Each operand's offset for head h (h indexes loop_.dims in row-major order).
  std::array<int64_t, kOperands> offsets(int64_t h) const {
    std::array<int64_t, kOperands> at{};
    for (int32_t d = loop_.dims.rank - 1; d >= 0; --d) {
      const auto ud = static_cast<std::size_t>(d);
      const int64_t i = h % loop_.dims.dims[ud];
      h /= loop_.dims.dims[ud];
      for (std::size_t k = 0; k < kOperands; ++k) at[k] += i * loop_.strides[k][ud];
    }
    return at;
  }

  cpu::AttentionHead head_;
  HeadLoop loop_;
  bool has_mask_;
  int64_t shares_;
  // Score buffers, overwritten by every head of every run: bound at plan time so that a run
  // allocates nothing. A Plan, and so this kernel, is used by one Session, i.e. one thread at a
  // time (model.h), and within a run each share has its own slot: that is what makes the
  // mutable buffer safe.
  mutable std::vector<float> scores_;
};

// The device-neutral description of the heads' loop and one head.
AttentionCall attention_call(const cpu::AttentionHead& head, const HeadLoop& loop, bool has_mask) {
  AttentionCall call;
  call.q_rows = head.q_rows;
  call.kv_rows = head.kv_rows;
  call.head_dim = head.head_dim;
  call.value_dim = head.value_dim;
  call.ldq = head.ldq;
  call.ldk = head.ldk;
  call.ldv = head.ldv;
  call.ldo = head.ldo;
  call.k_transposed = head.k_transposed;
  call.scale = head.scale;
  call.has_mask = has_mask;
  call.mask_row_stride = head.mask_row_stride;
  call.mask_col_stride = head.mask_col_stride;
  call.head_dims = loop.dims;
  call.head_strides = loop.strides;
  return call;
}

Status plan_attention(PlanContext& ctx) {
  if (Status s = require_float(ctx, 4); !s) return s.error();
  const Shape& q = ctx.input(0).shape;
  const Shape& k = ctx.input(1).shape;
  const Shape& v = ctx.input(2).shape;
  const Attribute* layout_attr = ctx.node.attribute("layout");
  const std::string layout = layout_attr != nullptr ? layout_attr->s : "bhsd";
  const auto dim = [](const Shape& s, int32_t d) { return s.dims[static_cast<std::size_t>(d)]; };

  cpu::AttentionHead head;
  head.scale = ctx.node.float_attr("scale", 1.0f);
  BatchDims batch[kOperands];
  int64_t v_rows = 0, k_dim = 0;
  const bool bshd = layout == "bshd";
  if (bshd) {
    if (q.rank != 4 || k.rank != 4 || v.rank != 4) {
      return ctx.fail(fmt::format("Q {}, K {} and V {} must have rank 4", q.to_string(),
                                  k.to_string(), v.to_string()));
    }
    // [B, S, H, D] read as heads [B, H] of [S, D] matrices with row stride H * D.
    const auto heads_of = [&](const Shape& s) {
      BatchDims b;
      b.dims = Shape::of(std::array<int64_t, 2>{dim(s, 0), dim(s, 2)});
      b.strides = {dim(s, 1) * dim(s, 2) * dim(s, 3), dim(s, 3)};
      return b;
    };
    batch[kQ] = heads_of(q);
    batch[kK] = heads_of(k);
    batch[kV] = heads_of(v);
    head.q_rows = dim(q, 1);
    head.head_dim = dim(q, 3);
    head.kv_rows = dim(k, 1);
    k_dim = dim(k, 3);
    v_rows = dim(v, 1);
    head.value_dim = dim(v, 3);
    head.ldq = dim(q, 2) * dim(q, 3);
    head.ldk = dim(k, 2) * dim(k, 3);
    head.ldv = dim(v, 2) * dim(v, 3);
    head.k_transposed = false;
  } else if (layout == "bhsd") {
    if (q.rank < 2 || k.rank < 2 || v.rank < 2) {
      return ctx.unsupported(fmt::format("Q {}, K^T {} and V {} must have rank >= 2", q.to_string(),
                                         k.to_string(), v.to_string()));
    }
    batch[kQ] = dense_batch(q, 0, q.rank - 2);
    batch[kK] = dense_batch(k, 0, k.rank - 2);
    batch[kV] = dense_batch(v, 0, v.rank - 2);
    head.q_rows = dim(q, q.rank - 2);
    head.head_dim = dim(q, q.rank - 1);
    k_dim = dim(k, k.rank - 2);
    head.kv_rows = dim(k, k.rank - 1);
    v_rows = dim(v, v.rank - 2);
    head.value_dim = dim(v, v.rank - 1);
    head.ldq = head.head_dim;
    head.ldk = head.kv_rows;
    head.ldv = head.value_dim;
    head.k_transposed = true;
  } else {
    return ctx.fail(fmt::format("unknown layout '{}'", layout));
  }
  if (k_dim != head.head_dim || v_rows != head.kv_rows) {
    return ctx.fail(fmt::format("Q {}, K {} and V {} do not chain ({} layout)", q.to_string(),
                                k.to_string(), v.to_string(), layout));
  }

  // The mask, right-aligned against the scores [batch..., Sq, Sk].
  const bool has_mask = ctx.has_input(3);
  if (has_mask) {
    const Shape& m = ctx.input(3).shape;
    const int64_t rows = m.rank >= 2 ? dim(m, m.rank - 2) : 1;
    const int64_t cols = m.rank >= 1 ? dim(m, m.rank - 1) : 1;
    if ((rows != 1 && rows != head.q_rows) || (cols != 1 && cols != head.kv_rows)) {
      const std::string problem =
          fmt::format("mask {} against scores [{}, {}]", m.to_string(), head.q_rows, head.kv_rows);
      // A mask that broadcasts the scores up (a 1 in the scores against more in the mask) is
      // valid ONNX that this kernel does not do.
      if ((rows != 1 && head.q_rows == 1) || (cols != 1 && head.kv_rows == 1)) {
        return ctx.unsupported(problem + " widens them");
      }
      return ctx.fail(problem + " does not broadcast");
    }
    head.mask_col_stride = cols == 1 ? 0 : 1;
    head.mask_row_stride = rows == 1 ? 0 : cols;
    batch[kMask] = dense_batch(m, 0, std::max(0, m.rank - 2));
  }
  HeadLoop loop;
  if (!loop.broadcast(std::span<const BatchDims>(batch, kOut))) {
    return ctx.fail(fmt::format("batch dims of Q {}, K {}, V {} and the mask do not broadcast",
                                q.to_string(), k.to_string(), v.to_string()));
  }
  Shape out;
  if (bshd) {
    if (loop.dims.rank != 2) {
      return ctx.fail(fmt::format("the mask has more than 4 dims ({} layout)", layout));
    }
    const int64_t b = loop.dims.dims[0], h = loop.dims.dims[1];
    out = Shape::of(std::array<int64_t, 4>{b, head.q_rows, h, head.value_dim});
    loop.strides[kOut] = {head.q_rows * h * head.value_dim, head.value_dim};
    head.ldo = h * head.value_dim;
  } else {
    out = loop.dims;
    out.dims[static_cast<std::size_t>(out.rank++)] = head.q_rows;
    out.dims[static_cast<std::size_t>(out.rank++)] = head.value_dim;
    loop.strides[kOut] = dense_batch(out, 0, out.rank - 2).strides;
    head.ldo = head.value_dim;
  }
  if (bounded_elements(out.view()) < 0 ||
      bounded_elements(std::array<int64_t, 2>{head.q_rows, head.kv_rows}) < 0) {
    return ctx.fail(fmt::format("output {} or its scores are too large", out.to_string()));
  }
  ctx.output(0) = {DType::kFloat32, out};
  // BLAS wants leading dimensions of at least 1 even for empty matrices.
  for (int64_t* ld : {&head.ldq, &head.ldk, &head.ldv, &head.ldo}) *ld = std::max<int64_t>(1, *ld);
  // One share per intra-op thread, when the heads are worth one each (OpenBLAS takes a few
  // microseconds per call before any arithmetic).
  const int64_t heads = loop.dims.elements();
  const int64_t head_work =
      2 * head.q_rows * head.kv_rows * std::max(head.head_dim, head.value_dim);
  const int64_t per_share =
      std::max<int64_t>(1, kMinMultiplyAdds / std::max<int64_t>(1, head_work));
  const int64_t shares = std::clamp<int64_t>(heads / per_share, 1, cpu::intra_op_threads());
  return ctx.choose(std::make_unique<AttentionKernel>(head, loop, has_mask, shares),
                    [&] { return attention_call(head, loop, has_mask); });
}

constexpr OpDef kOps[] = {
    {"coproc.Gelu", plan_gelu, Aliasing::kElementwise},
    {"coproc.MatMulBias", plan_matmul_bias},
    {"coproc.Attention", plan_attention},
};

}  // namespace

std::span<const OpDef> fused_ops() { return kOps; }

}  // namespace coproc::runtime::detail
