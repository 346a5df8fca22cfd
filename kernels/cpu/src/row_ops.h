// The maximum and the sum of a contiguous row of floats, as reduce.cc, softmax.cc and
// fused_attention.cc take them. Each keeps kLanes independent partial results: the compiler may
// not reassociate a single float accumulator (it would under -ffast-math), but it vectorises the
// partial sums, and the partial maxima (which GCC 12 leaves scalar) at least run as independent
// dependency chains. kLanes is the caller's.
//
// The loops are always inlined: fused_attention.cc calls them from copies of its row loop
// compiled for AVX-512 and AVX2, and an out-of-line call would run the SSE2 code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace coproc::kernels::cpu::detail {

// max(a, b) by value, unlike std::max, which returns a reference and keeps GCC from vectorising
// a loop using it. A NaN b is passed over.
inline float larger(float a, float b) { return b > a ? b : a; }

// larger() that propagates NaN from either side, as numpy's maximum does.
inline float larger_or_nan(float a, float b) { return b > a || b != b ? b : a; }

// The maximum of x[0, n) by kLarger; -inf when n is 0.
template <int64_t kLanes, float (*kLarger)(float, float) = larger>
[[gnu::always_inline]] inline float row_max(const float* x, int64_t n) {
  float lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] = kLarger(lanes[l], x[i + l]);
  }
  float m = lanes[0];
  for (int64_t l = 1; l < kLanes; ++l) m = kLarger(m, lanes[l]);
  for (; i < n; ++i) m = kLarger(m, x[i]);
  return m;
}

// The sum of x[0, n); 0 when n is 0.
template <int64_t kLanes>
[[gnu::always_inline]] inline float row_sum(const float* x, int64_t n) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += x[i + l];
  }
  float sum = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; i < n; ++i) sum += x[i];
  return sum;
}

}  // namespace coproc::kernels::cpu::detail
