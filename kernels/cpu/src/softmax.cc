// Numerically stable softmax: subtract the maximum, exponentiate, divide by the sum.
#include <algorithm>
#include <cassert>
#include <limits>

#include "coproc/kernels/cpu.h"
#include "row_ops.h"
#include "vexp.h"

namespace coproc::kernels::cpu {
namespace {

using detail::larger;
using detail::row_max;
using detail::row_sum;
using detail::vexp;

// Partial results per row reduction (row_ops.h).
constexpr int64_t kLanes = 8;

// y[i] = exp(x[i] - shift); returns the sum of the y[i].
float exp_and_sum(const float* x, float* y, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = vexp(x[i] - shift);
  return row_sum<kLanes>(y, n);
}

void scale(float* y, int64_t n, float factor) {
  for (int64_t i = 0; i < n; ++i) y[i] *= factor;
}

}  // namespace

void softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  assert(rows >= 0 && cols >= 0);
  assert(rows * cols == 0 || (x != nullptr && y != nullptr));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const float sum = exp_and_sum(xr, yr, cols, row_max<kLanes>(xr, cols));
    scale(yr, cols, 1.0f / sum);
  }
}

void softmax_strided(const float* x, float* y, int64_t outer, int64_t n, int64_t inner) {
  assert(outer >= 0 && n >= 0 && inner >= 0);
  assert(outer * n * inner == 0 || (x != nullptr && y != nullptr));
  if (inner == 1) return softmax(x, y, outer, n);
  // Columns are processed kChunk at a time so that their running maxima and sums fit on the
  // stack; every loop below runs along contiguous memory.
  constexpr int64_t kChunk = 64;
  float max[kChunk];
  float sum[kChunk];
  for (int64_t o = 0; o < outer; ++o) {
    const float* xo = x + o * n * inner;
    float* yo = y + o * n * inner;
    for (int64_t c0 = 0; c0 < inner; c0 += kChunk) {
      const int64_t w = std::min(kChunk, inner - c0);
      std::fill(max, max + w, -std::numeric_limits<float>::infinity());
      std::fill(sum, sum + w, 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const float* xj = xo + j * inner + c0;
        for (int64_t c = 0; c < w; ++c) max[c] = larger(max[c], xj[c]);
      }
      for (int64_t j = 0; j < n; ++j) {
        const float* xj = xo + j * inner + c0;
        float* yj = yo + j * inner + c0;
        for (int64_t c = 0; c < w; ++c) {
          yj[c] = vexp(xj[c] - max[c]);
          sum[c] += yj[c];
        }
      }
      for (int64_t c = 0; c < w; ++c) sum[c] = 1.0f / sum[c];
      for (int64_t j = 0; j < n; ++j) {
        float* yj = yo + j * inner + c0;
        for (int64_t c = 0; c < w; ++c) yj[c] *= sum[c];
      }
    }
  }
}

}  // namespace coproc::kernels::cpu
