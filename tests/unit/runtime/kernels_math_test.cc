// CPU math kernels (erf, exp, sqrt, neg, reciprocal), reductions and layer normalisation against
// double-precision references, with the inputs that break naive versions: a dense sweep for
// erf, the ends of exp's range, long sums, NaN in a max, rows with a large offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "coproc/kernels/cpu.h"

namespace cpu = coproc::kernels::cpu;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// |got - want| / |want| where want is a normal float (relative error means nothing for zeros
// and subnormals, whose ulp is fixed).
double relative_error(float got, double want) {
  if (std::fabs(want) < std::numeric_limits<float>::min()) return 0.0;
  return std::fabs(got - want) / std::fabs(want);
}

std::vector<float> normal_floats(std::size_t n, uint32_t seed, float mean, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// ---------------------------------------------------------------- erf

// The documented bound (cpu.h): 1.05e-7 wherever erf(x) is a normal float. Measured over every
// float when the coefficients were fitted; here, a sweep dense enough to cross both regions and
// the clamp many times, plus tiny and huge magnitudes.
constexpr double kErfTolerance = 1.05e-7;

TEST(ErfTest, shouldStayWithinTheDocumentedRelativeErrorOverADenseSweep) {
  std::vector<float> x;
  for (int i = -2'000'000; i <= 2'000'000; ++i) x.push_back(static_cast<float>(i) * 2.5e-6f);
  for (float v = 1e-38f; v < 1e-2f; v *= 1.01f) {
    x.push_back(v);
    x.push_back(-v);
  }
  for (float v = 4.5f; v < 1e30f; v *= 1.5f) x.push_back(-v);
  std::vector<float> y(x.size());
  cpu::erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  float worst_x = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double err = relative_error(y[i], std::erf(static_cast<double>(x[i])));
    if (err > worst) {
      worst = err;
      worst_x = x[i];
    }
  }
  EXPECT_LE(worst, kErfTolerance) << "at x = " << worst_x;
}

TEST(ErfTest, shouldBeOddAndSaturateAndPropagateNaN) {
  const std::vector<float> x = {0.0f, -0.0f, kInf, -kInf, 10.0f, -10.0f, kNaN, 0.3f, -0.3f};
  std::vector<float> y(x.size());
  cpu::erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(std::signbit(y[1]));
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], -1.0f);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], -1.0f);
  EXPECT_TRUE(std::isnan(y[6]));
  EXPECT_EQ(y[7], -y[8]);
}

TEST(ErfTest, shouldComputeInPlaceAndAtEveryLengthOfTheVectorTail) {
  for (int64_t n = 0; n < 20; ++n) {
    std::vector<float> x(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<std::size_t>(i)] = 0.37f * static_cast<float>(i - 7);
    }
    std::vector<float> want(x.size());
    cpu::erf(x.data(), want.data(), n);
    cpu::erf(x.data(), x.data(), n);
    EXPECT_EQ(x, want);
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_LE(relative_error(want[i], std::erf(0.37 * (static_cast<double>(i) - 7))),
                kErfTolerance);
    }
  }
}

// ---------------------------------------------------------------- exp, sqrt, neg, reciprocal

TEST(ExpTest, shouldStayWithinFewUlpOverTheNormalRange) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.00731f) x.push_back(v);
  std::vector<float> y(x.size());
  cpu::exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, relative_error(y[i], std::exp(static_cast<double>(x[i]))));
  }
  EXPECT_LT(worst, 3e-7);
}

TEST(ExpTest, shouldOverflowToInfinityAndUnderflowThroughSubnormalsToZero) {
  const std::vector<float> x = {88.5f, 88.8f, 100.0f, kInf, -90.0f, -100.0f, -104.0f, -kInf, kNaN};
  std::vector<float> y(x.size());
  cpu::exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_LT(relative_error(y[0], std::exp(88.5)), 1e-6);
  EXPECT_EQ(y[1], kInf);
  EXPECT_EQ(y[2], kInf);
  EXPECT_EQ(y[3], kInf);
  EXPECT_LT(relative_error(y[4], std::exp(-90.0)), 1e-6);
  // Subnormal: e^-100 = 3.7e-44 is a few multiples of the smallest subnormal (1.4e-45).
  EXPECT_NEAR(y[5], std::exp(-100.0), 1.5e-45);
  EXPECT_EQ(y[6], 0.0f);
  EXPECT_EQ(y[7], 0.0f);
  EXPECT_TRUE(std::isnan(y[8]));
}

TEST(ElementwiseMathTest, shouldComputeSqrtNegAndReciprocalAsIeeeDoes) {
  const std::vector<float> x = {4.0f, 2.0f, 0.0f, -0.0f, -1.0f, kInf, 1e-40f};
  std::vector<float> s(x.size()), n(x.size()), r(x.size());
  const auto count = static_cast<int64_t>(x.size());
  cpu::sqrt(x.data(), s.data(), count);
  cpu::neg(x.data(), n.data(), count);
  cpu::reciprocal(x.data(), r.data(), count);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float want_s = std::sqrt(x[i]);
    if (std::isnan(want_s)) {
      EXPECT_TRUE(std::isnan(s[i])) << x[i];
    } else {
      EXPECT_EQ(s[i], want_s) << x[i];
      EXPECT_EQ(std::signbit(s[i]), std::signbit(want_s)) << x[i];
    }
    EXPECT_EQ(n[i], -x[i]);
    EXPECT_EQ(std::signbit(n[i]), !std::signbit(x[i]));
    EXPECT_EQ(r[i], 1.0f / x[i]) << x[i];
  }
}

// ---------------------------------------------------------------- reductions

TEST(ReduceKernelTest, shouldSumRowsAndColumnsLikeADoubleReference) {
  const int64_t rows = 37, n = 1000;
  const auto x = normal_floats(static_cast<std::size_t>(rows * n), 7, 0.5f, 2.0f);
  for (const cpu::ReduceOp op :
       {cpu::ReduceOp::kSum, cpu::ReduceOp::kSumSquare, cpu::ReduceOp::kMax}) {
    std::vector<float> by_row(rows, cpu::reduce_identity(op));
    std::vector<float> by_col(n, cpu::reduce_identity(op));
    cpu::reduce_rows(op, x.data(), rows, n, by_row.data());
    cpu::reduce_cols(op, x.data(), rows, n, by_col.data());
    const auto f = [&](float v) { return op == cpu::ReduceOp::kSumSquare ? double{v} * v : v; };
    const auto combine = [&](double acc, double v) {
      return op == cpu::ReduceOp::kMax ? std::max(acc, v) : acc + v;
    };
    const double start = op == cpu::ReduceOp::kMax ? -INFINITY : 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      double want = start;
      for (int64_t j = 0; j < n; ++j) {
        want = combine(want, f(x[static_cast<std::size_t>(r * n + j)]));
      }
      EXPECT_LT(relative_error(by_row[static_cast<std::size_t>(r)], want), 1e-6) << "row " << r;
    }
    for (int64_t c = 0; c < n; ++c) {
      double want = start;
      for (int64_t j = 0; j < rows; ++j) {
        want = combine(want, f(x[static_cast<std::size_t>(j * n + c)]));
      }
      EXPECT_LT(relative_error(by_col[static_cast<std::size_t>(c)], want), 1e-6) << "col " << c;
    }
  }
}

TEST(ReduceKernelTest, shouldKeepALongSumAccurate) {
  // 2^22 copies of 0.1f: a single float accumulator would stall at 2^21 (adding 0.1 to 2^21
  // rounds away); blocks summed in double stay exact to float rounding.
  const int64_t n = int64_t{1} << 22;
  const std::vector<float> x(static_cast<std::size_t>(n), 0.1f);
  float row = cpu::reduce_identity(cpu::ReduceOp::kSum);
  cpu::reduce_rows(cpu::ReduceOp::kSum, x.data(), 1, n, &row);
  EXPECT_LT(relative_error(row, 0.1f * static_cast<double>(n)), 1e-6);
  float col = cpu::reduce_identity(cpu::ReduceOp::kSum);
  cpu::reduce_cols(cpu::ReduceOp::kSum, x.data(), n, 1, &col);
  EXPECT_LT(relative_error(col, 0.1f * static_cast<double>(n)), 1e-6);
}

TEST(ReduceKernelTest, shouldPropagateNaNThroughMaxFromAnyPosition) {
  for (std::size_t at = 0; at < 19; ++at) {
    std::vector<float> x(19, 1.0f);
    x[at] = kNaN;
    float row = cpu::reduce_identity(cpu::ReduceOp::kMax);
    cpu::reduce_rows(cpu::ReduceOp::kMax, x.data(), 1, 19, &row);
    EXPECT_TRUE(std::isnan(row)) << at;
    float col = cpu::reduce_identity(cpu::ReduceOp::kMax);
    cpu::reduce_cols(cpu::ReduceOp::kMax, x.data(), 19, 1, &col);
    EXPECT_TRUE(std::isnan(col)) << at;
  }
}

TEST(ReduceKernelTest, shouldKeepNegativeZeroWhenSummingOneValue) {
  const float x = -0.0f;
  float y = cpu::reduce_identity(cpu::ReduceOp::kSum);
  cpu::reduce_rows(cpu::ReduceOp::kSum, &x, 1, 1, &y);
  EXPECT_TRUE(std::signbit(y));
}

// ---------------------------------------------------------------- layer_norm

struct RowStats {
  double mean;
  double inv_std_dev;
};

RowStats reference_stats(const float* x, int64_t n, double epsilon) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  return {mean, 1.0 / std::sqrt(sq / static_cast<double>(n) + epsilon)};
}

// Rows of noise with standard deviation 1 around `offset`, against the same rows normalised in
// double. With offset 1e4 a float one-pass variance (E[x^2] - E[x]^2) is garbage, and a mean
// rounded to float (an error up to half an ulp of 1e4, 5e-4) shifts every output by that much.
void check_layer_norm(float offset, double tolerance) {
  const int64_t rows = 16, n = 384;
  const float epsilon = 1e-12f;
  const auto x = normal_floats(static_cast<std::size_t>(rows * n), 11, offset, 1.0f);
  const auto scale = normal_floats(static_cast<std::size_t>(n), 12, 1.0f, 0.2f);
  const auto bias = normal_floats(static_cast<std::size_t>(n), 13, 0.0f, 0.2f);
  std::vector<float> y(x.size()), mean(rows), inv(rows);
  cpu::layer_norm(x.data(), rows, n, scale.data(), bias.data(), epsilon, y.data(), mean.data(),
                  inv.data());
  double worst = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * n;
    const RowStats s = reference_stats(xr, n, epsilon);
    EXPECT_LT(relative_error(mean[static_cast<std::size_t>(r)], s.mean), 1e-7);
    EXPECT_LT(relative_error(inv[static_cast<std::size_t>(r)], s.inv_std_dev), 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      const double want = (xr[i] - s.mean) * s.inv_std_dev * scale[static_cast<std::size_t>(i)] +
                          bias[static_cast<std::size_t>(i)];
      // Outputs are O(1): compare absolutely, relative to the unit scale of the normalised row.
      worst = std::max(worst, std::fabs(y[static_cast<std::size_t>(r * n + i)] - want));
    }
  }
  EXPECT_LT(worst, tolerance) << "offset " << offset;
}

TEST(LayerNormTest, shouldMatchADoubleReference) { check_layer_norm(0.0f, 1e-6); }

TEST(LayerNormTest, shouldKeepPrecisionForRowsWithALargeOffset) {
  check_layer_norm(1e4f, 2e-6);
  check_layer_norm(-3e5f, 2e-6);
}

TEST(LayerNormTest, shouldNormaliseInPlaceWithoutScaleOrBias) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f, 10.0f, 10.0f, 10.0f, 10.0f};
  std::vector<float> y = x;
  cpu::layer_norm(y.data(), 2, 4, nullptr, nullptr, 0.0f, y.data(), nullptr, nullptr);
  const double inv = 1.0 / std::sqrt(1.25);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(y[static_cast<std::size_t>(i)], (i + 1 - 2.5) * inv, 1e-6);
  }
  // A constant row with epsilon 0 divides 0 by 0.
  for (int i = 4; i < 8; ++i) EXPECT_TRUE(std::isnan(y[static_cast<std::size_t>(i)]));
}

}  // namespace
