// Layer normalisation of rows. Precision: a row with a large offset (values 1e4 + noise of 1)
// loses everything in a one-pass E[x^2] - E[x]^2 in float, and still a little when the mean is
// rounded to float and subtracted in float. So the mean and the variance are two passes in double
// (each row is in L1 by then), and the float pass that writes y subtracts the mean as two floats,
// hi + lo: x - hi is exact for the x near the mean (Sterbenz), so the centred values keep their
// precision.
#include <cassert>
#include <cmath>

#include "coproc/kernels/cpu.h"

namespace coproc::kernels::cpu {
namespace {

// Independent double accumulators: the compiler vectorises partial sums it need not reassociate.
constexpr int64_t kLanes = 4;

double row_sum(const float* x, int64_t n) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += x[i + l];
  }
  double sum = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; i < n; ++i) sum += x[i];
  return sum;
}

double row_squared_deviation(const float* x, int64_t n, double mean) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const double d = x[i + l] - mean;
      lanes[l] += d * d;
    }
  }
  double sum = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; i < n; ++i) {
    const double d = x[i] - mean;
    sum += d * d;
  }
  return sum;
}

// y = (x - (hi + lo)) * s [* scale] [+ bias], one loop per combination so that each vectorises.
void normalise_row(const float* x, float* y, int64_t n, float hi, float lo, float s,
                   const float* scale, const float* bias) {
  if (scale != nullptr && bias != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = ((x[i] - hi) - lo) * s * scale[i] + bias[i];
  } else if (scale != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = ((x[i] - hi) - lo) * s * scale[i];
  } else if (bias != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = ((x[i] - hi) - lo) * s + bias[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = ((x[i] - hi) - lo) * s;
  }
}

}  // namespace

void layer_norm(const float* x, int64_t rows, int64_t n, const float* scale, const float* bias,
                float epsilon, float* y, float* mean, float* inv_std_dev) {
  assert(rows >= 0 && n >= 0);
  assert(rows * n == 0 || (x != nullptr && y != nullptr));
  const auto count = static_cast<double>(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    // n == 0 gives 0 / 0: a NaN mean and deviation, and an empty row to write.
    const double m = row_sum(xr, n) / count;
    const double variance = row_squared_deviation(xr, n, m) / count;
    const double inv = 1.0 / std::sqrt(variance + static_cast<double>(epsilon));
    if (mean != nullptr) mean[r] = static_cast<float>(m);
    if (inv_std_dev != nullptr) inv_std_dev[r] = static_cast<float>(inv);
    const auto hi = static_cast<float>(m);
    const auto lo = static_cast<float>(m - static_cast<double>(hi));
    normalise_row(xr, y + r * n, n, hi, lo, static_cast<float>(inv), scale, bias);
  }
}

}  // namespace coproc::kernels::cpu
