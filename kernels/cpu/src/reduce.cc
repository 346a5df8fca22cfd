// Sums, sums of squares and maxima along rows and along columns.
//
// Float sums lose precision as they grow, so long ones are split: along a row, blocks of
// kBlock elements are summed in kLanes float partial sums (which vectorise; a single float
// accumulator would not, as the compiler may not reassociate it) and the block sums are added in
// double; along columns, each column accumulates in double. The error then depends on the block
// length, not on the reduction's.
#include <algorithm>
#include <cassert>
#include <limits>

#include "coproc/kernels/cpu.h"
#include "row_ops.h"

namespace coproc::kernels::cpu {
namespace {

constexpr int64_t kLanes = 8;
constexpr int64_t kBlock = 256;  // elements per float-accumulated block of a row
constexpr int64_t kChunk = 64;   // columns whose double accumulators live on the stack at once

// The sum's identity is -0.0, not +0.0: -0 + v == v for every v, -0 included, so a "sum" of one
// -0 (a reduction over dims of size 1) stays -0 as numpy's does.
constexpr float kSumIdentity = -0.0f;

// Maxima propagate NaN from either side, as numpy's do.
using detail::larger_or_nan;
using detail::row_max;

struct Identity {
  static float apply(float v) { return v; }
};
struct Square {
  static float apply(float v) { return v * v; }
};

template <class F>
double row_sum(const float* x, int64_t n) {
  double total = kSumIdentity;
  for (int64_t b = 0; b < n; b += kBlock) {
    const float* xb = x + b;
    const int64_t len = std::min(kBlock, n - b);
    float lanes[kLanes];
    std::fill(lanes, lanes + kLanes, kSumIdentity);
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int64_t l = 0; l < kLanes; ++l) lanes[l] += F::apply(xb[i + l]);
    }
    float sum = kSumIdentity;
    for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
    for (; i < len; ++i) sum += F::apply(xb[i]);
    total += sum;
  }
  return total;
}

template <class F>
void cols_sum(const float* x, int64_t n, int64_t cols, float* y) {
  double acc[kChunk];
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t w = std::min(kChunk, cols - c0);
    for (int64_t c = 0; c < w; ++c) acc[c] = y[c0 + c];
    for (int64_t j = 0; j < n; ++j) {
      const float* xj = x + j * cols + c0;
      for (int64_t c = 0; c < w; ++c) acc[c] += F::apply(xj[c]);
    }
    for (int64_t c = 0; c < w; ++c) y[c0 + c] = static_cast<float>(acc[c]);
  }
}

void cols_max(const float* x, int64_t n, int64_t cols, float* y) {
  for (int64_t j = 0; j < n; ++j) {
    const float* xj = x + j * cols;
    for (int64_t c = 0; c < cols; ++c) y[c] = larger_or_nan(y[c], xj[c]);
  }
}

}  // namespace

float reduce_identity(ReduceOp op) {
  return op == ReduceOp::kMax ? -std::numeric_limits<float>::infinity() : kSumIdentity;
}

void reduce_rows(ReduceOp op, const float* x, int64_t rows, int64_t n, float* y) {
  assert(rows >= 0 && n >= 0);
  assert(rows == 0 || y != nullptr);
  assert(rows * n == 0 || x != nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    switch (op) {
      case ReduceOp::kSum:
        y[r] = static_cast<float>(y[r] + row_sum<Identity>(xr, n));
        break;
      case ReduceOp::kSumSquare:
        y[r] = static_cast<float>(y[r] + row_sum<Square>(xr, n));
        break;
      case ReduceOp::kMax:
        y[r] = larger_or_nan(y[r], row_max<kLanes, larger_or_nan>(xr, n));
        break;
    }
  }
}

void reduce_cols(ReduceOp op, const float* x, int64_t n, int64_t cols, float* y) {
  assert(n >= 0 && cols >= 0);
  assert(cols == 0 || y != nullptr);
  assert(n * cols == 0 || x != nullptr);
  switch (op) {
    case ReduceOp::kSum:
      return cols_sum<Identity>(x, n, cols, y);
    case ReduceOp::kSumSquare:
      return cols_sum<Square>(x, n, cols, y);
    case ReduceOp::kMax:
      return cols_max(x, n, cols, y);
  }
}

}  // namespace coproc::kernels::cpu
