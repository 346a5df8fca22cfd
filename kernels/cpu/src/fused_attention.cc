// One attention head: two GEMMs on OpenBLAS around one pass per score row that adds the mask and
// takes the softmax (compiled for AVX-512, AVX2 and SSE2, picked once at run time).
#include <algorithm>
#include <cassert>

#include "coproc/kernels/cpu.h"
#include "row_ops.h"
#include "vexp.h"

namespace coproc::kernels::cpu {
namespace {

using detail::row_max;
using detail::row_sum;
using detail::vexp;

// Partial results per row reduction (row_ops.h): 16 floats fill an AVX-512 register.
constexpr int64_t kLanes = 16;

// row[j] = softmax_j(row[j] + mask[j * mask_stride]) over cols entries (mask may be null).
[[gnu::always_inline]] inline void mask_softmax_row(float* row, int64_t cols, const float* mask,
                                                    int64_t mask_stride) {
  if (mask != nullptr) {
    if (mask_stride == 1) {
      for (int64_t j = 0; j < cols; ++j) row[j] += mask[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) row[j] += mask[j * mask_stride];
    }
  }
  const float max = row_max<kLanes>(row, cols);
  for (int64_t j = 0; j < cols; ++j) row[j] = vexp(row[j] - max);
  const float sum = row_sum<kLanes>(row, cols);
  const float inverse = 1.0f / sum;
  for (int64_t j = 0; j < cols; ++j) row[j] *= inverse;
}

[[gnu::always_inline]] inline void mask_softmax_loop(const AttentionHead& head, float* scores,
                                                     const float* mask) {
  for (int64_t i = 0; i < head.q_rows; ++i) {
    mask_softmax_row(scores + i * head.kv_rows, head.kv_rows,
                     mask != nullptr ? mask + i * head.mask_row_stride : nullptr,
                     head.mask_col_stride);
  }
}

// AVX-512 implies FMA, which GCC contracts into: that copy may differ from the others in the
// last bit.
[[gnu::target("avx512f")]] void mask_softmax_avx512(const AttentionHead& head, float* scores,
                                                    const float* mask) {
  mask_softmax_loop(head, scores, mask);
}
[[gnu::target("avx2")]] void mask_softmax_avx2(const AttentionHead& head, float* scores,
                                               const float* mask) {
  mask_softmax_loop(head, scores, mask);
}
void mask_softmax_sse2(const AttentionHead& head, float* scores, const float* mask) {
  mask_softmax_loop(head, scores, mask);
}

using MaskSoftmaxFn = void (*)(const AttentionHead&, float*, const float*);

MaskSoftmaxFn widest_mask_softmax() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") != 0) return mask_softmax_avx512;
  if (__builtin_cpu_supports("avx2") != 0) return mask_softmax_avx2;
  return mask_softmax_sse2;
}

}  // namespace

void attention_head(const AttentionHead& head, const float* q, const float* k, const float* v,
                    const float* mask, float* scores, float* out) {
  const int64_t rows = head.q_rows;
  const int64_t cols = head.kv_rows;
  assert(rows >= 0 && cols >= 0 && head.head_dim >= 0 && head.value_dim >= 0);
  assert(rows * cols == 0 || scores != nullptr);
  if (cols == 0) {  // no keys: every output row is an empty sum, as the unfused chain gives
    for (int64_t i = 0; i < rows; ++i) {
      std::fill(out + i * head.ldo, out + i * head.ldo + head.value_dim, 0.0f);
    }
    return;
  }
  // scores = scale * Q K^T: K^T as given is op(B) = B; K as given is op(B) = B^T.
  gemm(false, !head.k_transposed, rows, cols, head.head_dim, head.scale, q, head.ldq, k, head.ldk,
       0.0f, scores, cols);
  static const MaskSoftmaxFn mask_softmax = widest_mask_softmax();
  mask_softmax(head, scores, mask);
  gemm(false, false, rows, head.value_dim, cols, 1.0f, scores, cols, v, head.ldv, 0.0f, out,
       head.ldo);
}

}  // namespace coproc::kernels::cpu
