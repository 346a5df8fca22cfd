// coproc.Attention on the OpenCL device (its DeviceCall: AttentionCall, ops/device_call.h).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "device/opencl/cl_kernels.h"

namespace coproc::runtime::detail {
namespace {

// (Named one by one: clang 14 does not resolve `using enum` at namespace scope.)
constexpr std::size_t kQ = AttentionCall::kQ, kK = AttentionCall::kK, kV = AttentionCall::kV,
                      kMask = AttentionCall::kMask, kOut = AttentionCall::kOut,
                      kOperands = AttentionCall::kOperands;

// coproc.Attention on the OpenCL device: per group of heads, scores = scale * Q K^T as one
// batched GEMM, the mask added in place, Softmax over each row, then O = P V as another batched
// GEMM. The heads' loop dims are merged where every operand's strides allow, the innermost
// becomes the GEMMs' batch and the others (none, for the usual layouts) loop here.
class ClAttentionKernel final : public Kernel {
 public:
  ClAttentionKernel(ocl::Device& device, const AttentionCall& head, ocl::Buffer scores)
      : device_(device), head_(head), scores_(std::move(scores)) {
    const Shape& loop_dims = head.head_dims;
    // Merge dim d into d + 1 when, for every operand, stepping d is stepping d + 1 dims[d + 1]
    // times (a broadcast operand has 0 for both).
    Shape dims;
    std::array<std::array<int64_t, kMaxRank>, kOperands> strides{};
    for (int32_t d = 0; d < loop_dims.rank; ++d) {
      const int64_t n = loop_dims.dims[at(d)];
      const int32_t last = dims.rank - 1;
      bool merge = last >= 0;
      for (std::size_t k = 0; merge && k < kOperands; ++k) {
        merge = strides[k][at(last)] == head.head_strides[k][at(d)] * n;
      }
      if (merge) {
        dims.dims[at(last)] *= n;
        for (std::size_t k = 0; k < kOperands; ++k)
          strides[k][at(last)] = head.head_strides[k][at(d)];
        continue;
      }
      dims.dims[at(dims.rank)] = n;
      for (std::size_t k = 0; k < kOperands; ++k)
        strides[k][at(dims.rank)] = head.head_strides[k][at(d)];
      ++dims.rank;
    }
    if (dims.rank == 0) dims = Shape::of(std::array<int64_t, 1>{1});
    const int32_t inner = dims.rank - 1;
    batch_ = dims.dims[at(inner)];
    for (std::size_t k = 0; k < kOperands; ++k) batch_stride_[k] = strides[k][at(inner)];
    // Every combination of the outer dims: each operand's offset.
    const int64_t groups = product(dims, 0, inner);
    for (int64_t g = 0; g < groups; ++g) {
      std::array<int64_t, kOperands> at_group{};
      int64_t rest = g;
      for (int32_t d = inner - 1; d >= 0; --d) {
        const int64_t i = rest % dims.dims[at(d)];
        rest /= dims.dims[at(d)];
        for (std::size_t k = 0; k < kOperands; ++k) at_group[k] += i * strides[k][at(d)];
      }
      groups_.push_back(at_group);
    }
  }

  Status run(const KernelIO& io) const override {
    if (batch_ == 0 || head_.q_rows == 0 || head_.value_dim == 0) return {};
    constexpr int64_t kFloat = sizeof(float);
    const int64_t sq = head_.q_rows, sk = head_.kv_rows;
    const ocl::Mem scores = scores_.at();
    for (const auto& off : groups_) {
      const auto operand = [&](std::size_t k) {
        return cl_advance(k == kOut ? cl_out(io, 0) : cl_in(io, k), off[k] * kFloat);
      };
      if (sk > 0 && head_.head_dim > 0) {
        device_.gemm_batched(false, !head_.k_transposed, sq, sk, head_.head_dim, head_.scale,
                             operand(kQ), head_.ldq, batch_stride_[kQ], operand(kK), head_.ldk,
                             batch_stride_[kK], 0.0f, scores, sk, sq * sk, batch_);
      } else if (sk > 0) {
        const float zero = 0.0f;
        device_.fill(scores, &zero, sizeof zero, batch_ * sq * sk);
      }
      if (head_.has_mask && sk > 0) {
        ocl::ElementwiseCall add{ocl::Elementwise::kAdd, ocl::DType::kFloat32, {}};
        add.layout.rank = 3;
        const int64_t dims[3] = {batch_, sq, sk};
        const int64_t dense[3] = {sq * sk, sk, 1};
        const int64_t mask[3] = {batch_stride_[kMask], head_.mask_row_stride,
                                 head_.mask_col_stride};
        for (int d = 0; d < 3; ++d) {
          add.layout.dims[d] = dims[d];
          add.layout.out[d] = add.layout.a[d] = dense[d];
          add.layout.b[d] = mask[d];
        }
        device_.elementwise(add, scores, scores, operand(kMask));
      }
      if (sk > 0) device_.softmax(ocl::SoftmaxCall{batch_ * sq, sk, 1}, scores, scores);
      if (sk == 0) {
        // No keys: every row of O is an empty sum.
        const float zero = 0.0f;
        for (int64_t b = 0; b < batch_; ++b) {
          for (int64_t r = 0; r < sq; ++r) {
            device_.fill(
                cl_advance(operand(kOut), (b * batch_stride_[kOut] + r * head_.ldo) * kFloat),
                &zero, sizeof zero, head_.value_dim);
          }
        }
        continue;
      }
      device_.gemm_batched(false, false, sq, head_.value_dim, sk, 1.0f, scores, sk, sq * sk,
                           operand(kV), head_.ldv, batch_stride_[kV], 0.0f, operand(kOut),
                           head_.ldo, batch_stride_[kOut], batch_);
    }
    return {};
  }

 private:
  ocl::Device& device_;
  AttentionCall head_;
  ocl::Buffer scores_;  // batch_ heads' scores, reused by every group and every run
  int64_t batch_ = 0;
  std::array<int64_t, kOperands> batch_stride_{};
  std::vector<std::array<int64_t, kOperands>> groups_;
};

}  // namespace

Result<std::unique_ptr<Kernel>> bind_cl_attention(ocl::Device& device, const Node& node,
                                                  const AttentionCall& head) {
  // The largest batch a group can have is every head.
  const int64_t heads = std::max<int64_t>(1, head.head_dims.elements());
  const auto bytes =
      static_cast<std::size_t>(std::max<int64_t>(1, heads * head.q_rows * head.kv_rows)) *
      sizeof(float);
  std::string error;
  ocl::Buffer scores = device.alloc(bytes, &error);
  if (scores.get() == nullptr) {
    return node_error(node,
                      fmt::format("cannot allocate {} bytes of attention scores: {}", bytes, error),
                      ErrorCode::kResourceExhausted);
  }
  // Q K^T into the scores, then P V into the output (the same shapes for every group).
  const bool qk = head.q_rows > 0 && head.kv_rows > 0 && head.head_dim > 0;
  if (qk && !device.reserve_gemm(false, !head.k_transposed, head.q_rows, head.kv_rows,
                                 head.head_dim, head.ldq, head.ldk, head.kv_rows, &error)) {
    return node_error(node, fmt::format("the OpenCL GEMM Q K^T fails: {}", error),
                      ErrorCode::kUnsupported);
  }
  const bool pv = head.q_rows > 0 && head.value_dim > 0 && head.kv_rows > 0;
  if (pv && !device.reserve_gemm(false, false, head.q_rows, head.value_dim, head.kv_rows,
                                 head.kv_rows, head.ldv, head.ldo, &error)) {
    return node_error(node, fmt::format("the OpenCL GEMM P V fails: {}", error),
                      ErrorCode::kUnsupported);
  }
  return std::unique_ptr<Kernel>(
      std::make_unique<ClAttentionKernel>(device, head, std::move(scores)));
}

}  // namespace coproc::runtime::detail
