// One attention head: two GEMMs on OpenBLAS around a scale, mask and softmax pass over the head's
// score matrix.
#include <algorithm>
#include <cassert>

#include "coproc/kernels/cpu.h"

namespace coproc::kernels::cpu {

void attention_head(const AttentionHead& head, const float* q, const float* k, const float* v,
                    const float* mask, float* scores, float* out) {
  const int64_t rows = head.q_rows;
  const int64_t cols = head.kv_rows;
  assert(rows >= 0 && cols >= 0 && head.head_dim >= 0 && head.value_dim >= 0);
  assert(rows * cols == 0 || scores != nullptr);
  if (cols == 0) {  // no keys: every output row is an empty sum, as the unfused chain gives
    for (int64_t i = 0; i < rows; ++i)
      std::fill(out + i * head.ldo, out + i * head.ldo + head.value_dim, 0.0f);
    return;
  }
  // scores = Q K^T: K^T as given is op(B) = B; K as given is op(B) = B^T.
  gemm(false, !head.k_transposed, rows, cols, head.head_dim, head.scale, q, head.ldq, k, head.ldk,
       0.0f, scores, cols);
  if (mask != nullptr) {
    for (int64_t i = 0; i < rows; ++i) {
      float* row = scores + i * cols;
      const float* m = mask + i * head.mask_row_stride;
      if (head.mask_col_stride == 1) {
        for (int64_t j = 0; j < cols; ++j) row[j] += m[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) row[j] += m[j * head.mask_col_stride];
      }
    }
  }
  softmax(scores, scores, rows, cols);
  gemm(false, false, rows, head.value_dim, cols, 1.0f, scores, cols, v, head.ldv, 0.0f, out,
       head.ldo);
}

}  // namespace coproc::kernels::cpu
