// Softmax, layer normalisation, the GEMM epilogue and Gather against double-precision host
// loops, and Gather's report of an index out of range.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace coproc::kernels::opencl::test {
namespace {

class RowsTest : public OpenClTest {};

std::vector<float> noise(std::size_t n, uint32_t seed, float offset, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(offset, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST_F(RowsTest, shouldMatchStableSoftmaxForLargeValuesAlongAnyAxis) {
  struct Shape {
    int64_t outer, n, inner;
    float offset, scale;
  };
  // Offsets of +-1e4 overflow exp() unless the maximum is subtracted first.
  const Shape shapes[] = {{3, 1, 1, 0, 1},
                          {3, 7, 1, 1e4f, 3},
                          {2, 1000, 1, -1e4f, 5},
                          {3, 7, 5, 1e4f, 10},
                          {1, 33, 3, 0, 100}};
  for (const Shape& s : shapes) {
    SCOPED_TRACE(std::to_string(s.outer) + " x " + std::to_string(s.n) + " x " +
                 std::to_string(s.inner));
    const auto count = static_cast<std::size_t>(s.outer * s.n * s.inner);
    const auto x = noise(count, 21, s.offset, s.scale);
    const Tensor in = upload(x, 1);
    const Tensor out = upload(std::vector<float>(count, -1.0f), 2);
    device().softmax({s.outer, s.n, s.inner}, out.mem, in.mem);
    device().softmax({s.outer, s.n, s.inner}, in.mem, in.mem);  // in place
    const auto got = download<float>(out.mem, count);
    const auto in_place = download<float>(in.mem, count);
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t c = 0; c < s.inner; ++c) {
        const auto at = [&](int64_t j) {
          return static_cast<std::size_t>((o * s.n + j) * s.inner + c);
        };
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < s.n; ++j) max = std::max(max, double{x[at(j)]});
        for (int64_t j = 0; j < s.n; ++j) sum += std::exp(x[at(j)] - max);
        for (int64_t j = 0; j < s.n; ++j) {
          const double want = std::exp(x[at(j)] - max) / sum;
          ASSERT_TRUE(near(got[at(j)], want, 2e-5, 1e-9)) << o << ", " << j << ", " << c;
          ASSERT_EQ(in_place[at(j)], got[at(j)]);
        }
      }
    }
  }
}

TEST_F(RowsTest, shouldNormaliseRowsWithALargeOffsetAccurately) {
  for (const int64_t n : {1, 7, 1000}) {
    for (const bool full : {true, false}) {
      SCOPED_TRACE("n " + std::to_string(n) + (full ? " with bias, mean and deviation" : ""));
      const int64_t rows = 3;
      const auto count = static_cast<std::size_t>(rows * n);
      // Noise of 1 on 1e4: a one-pass E[x^2] - E[x]^2 in float would lose it all.
      const auto x = noise(count, 31, 1e4f, 1.0f);
      const auto scale = noise(static_cast<std::size_t>(n), 32, 1.0f, 0.5f);
      const auto bias = noise(static_cast<std::size_t>(n), 33, 0.0f, 1.0f);
      const Tensor tx = upload(x, 1), ts = upload(scale, 2), tb = upload(bias, 3);
      const Tensor ty = upload(std::vector<float>(count, -1.0f), 1);
      const Tensor stats = upload(std::vector<float>(2 * rows, -1.0f));
      const Mem mean{stats.mem.buffer, 0};
      const Mem inv{stats.mem.buffer, rows * sizeof(float)};
      const float epsilon = 1e-5f;
      device().layer_norm({rows, n, epsilon}, ty.mem, tx.mem, ts.mem, full ? tb.mem : Mem{},
                          full ? mean : Mem{}, full ? inv : Mem{});
      const auto y = download<float>(ty.mem, count);
      const auto got_stats = download<float>(stats.mem, 2 * rows);
      for (int64_t r = 0; r < rows; ++r) {
        double m = 0, var = 0;
        for (int64_t j = 0; j < n; ++j) m += x[r * n + j];
        m /= static_cast<double>(n);
        for (int64_t j = 0; j < n; ++j) var += (x[r * n + j] - m) * (x[r * n + j] - m);
        var /= static_cast<double>(n);
        const double inv_std = 1.0 / std::sqrt(var + epsilon);
        for (int64_t j = 0; j < n; ++j) {
          const double want = (x[r * n + j] - m) * inv_std * scale[j] + (full ? bias[j] : 0.0);
          ASSERT_TRUE(near(y[r * n + j], want, 1e-4, 1e-4)) << "row " << r << ", element " << j;
        }
        if (full) {
          EXPECT_TRUE(near(got_stats[r], m, 2e-7, 0)) << "mean of row " << r;
          EXPECT_TRUE(near(got_stats[rows + r], inv_std, 1e-4, 0)) << "deviation of row " << r;
        } else {
          EXPECT_EQ(got_stats[r], -1.0f) << "mean written though absent";
        }
      }
    }
  }
}

TEST_F(RowsTest, shouldAddTheBiasThenActivate) {
  const int64_t rows = 5, cols = 33;
  const auto count = static_cast<std::size_t>(rows * cols);
  const auto y = test_floats(count, 41);
  const auto bias = test_floats(static_cast<std::size_t>(cols), 42, 1.0f, false);
  const Activation activations[] = {Activation::kNone, Activation::kRelu, Activation::kGelu,
                                    Activation::kTanh, Activation::kSigmoid};
  for (const Activation act : activations) {
    for (const bool with_bias : {true, false}) {
      SCOPED_TRACE("activation " + std::to_string(static_cast<int>(act)) +
                   (with_bias ? " with bias" : ""));
      const Tensor ty = upload(y, 1), tb = upload(bias, 2);
      device().bias_activation(ty.mem, rows, cols, with_bias ? tb.mem : Mem{}, act);
      const auto got = download<float>(ty.mem, count);
      for (std::size_t i = 0; i < count; ++i) {
        const double v = double{y[i]} + (with_bias ? bias[i % cols] : 0.0f);
        const double want = act == Activation::kRelu ? (v > 0 ? v : 0.0)
                            : act == Activation::kGelu
                                ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))
                            : act == Activation::kTanh    ? std::tanh(v)
                            : act == Activation::kSigmoid ? 1 / (1 + std::exp(-v))
                                                          : v;
        ASSERT_TRUE(near(got[i], want, 1e-5, 4e-6)) << "element " << i;
      }
    }
  }
}

class GatherTest : public OpenClTest {
 protected:
  // Gathers from data viewed as [outer, axis_dim, inner_bytes] and checks against a host copy.
  template <class I>
  void check(int64_t outer, int64_t axis_dim, int64_t inner_bytes, const std::vector<I>& indices) {
    SCOPED_TRACE(std::to_string(outer) + " x " + std::to_string(axis_dim) + " x " +
                 std::to_string(inner_bytes) + " bytes, " + std::to_string(sizeof(I) * 8) +
                 "-bit indices");
    const auto count = static_cast<int64_t>(indices.size());
    std::vector<uint8_t> data(static_cast<std::size_t>(outer * axis_dim * inner_bytes));
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 1);
    const auto out_bytes = static_cast<std::size_t>(outer * count * inner_bytes);
    const Tensor td = upload(data, 4), ti = upload(indices, 1);
    const Tensor to = upload(std::vector<uint8_t>(out_bytes + 1, 0xee), 8);
    GatherCall call{
        outer, axis_dim, count, inner_bytes, sizeof(I) == 8 ? DType::kInt64 : DType::kInt32, 5};
    device().gather(call, to.mem, td.mem, ti.mem);
    const auto got = download<uint8_t>(to.mem, out_bytes + 1);
    std::vector<uint8_t> want(out_bytes + 1, 0xee);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < count; ++j) {
        const int64_t k = indices[j] < 0 ? indices[j] + axis_dim : indices[j];
        for (int64_t e = 0; e < inner_bytes; ++e) {
          want[(o * count + j) * inner_bytes + e] = data[(o * axis_dim + k) * inner_bytes + e];
        }
      }
    }
    EXPECT_EQ(got, want);
  }
};

TEST_F(GatherTest, shouldGatherSlicesOfAnySizeWithNegativeIndices) {
  check<int64_t>(2, 5, 12, {-1, 0, 4, -5, 2, 2});  // 4-byte units (float32 rows of 3)
  check<int32_t>(2, 5, 12, {3, -2, 0});
  check<int64_t>(3, 4, 3, {1, -4, 3});           // bytes (bool rows of 3)
  check<int32_t>(1, 7, 768 * 4, {6, 0, -7, 3});  // an embedding lookup
  check<int64_t>(4, 9, 8, {8});
}

TEST_F(GatherTest, shouldReportTheFirstLaunchWithAnIndexOutOfRange) {
  const Tensor data = upload(std::vector<float>(10, 1.0f));
  const Tensor out = upload(std::vector<float>(10, 0.0f));
  const Tensor good = upload(std::vector<int64_t>{0, 4, -5});
  const Tensor high = upload(std::vector<int64_t>{1, 7});
  const Tensor low = upload(std::vector<int32_t>{-6});
  device().gather({2, 5, 2, 4, DType::kInt64, 1}, out.mem, data.mem, good.mem);
  device().gather({2, 5, 2, 4, DType::kInt64, 2}, out.mem, data.mem, high.mem);
  device().gather({1, 5, 1, 4, DType::kInt32, 3}, out.mem, data.mem, low.mem);
  Failure failure = device().finish();
  EXPECT_TRUE(failure.failed);
  EXPECT_TRUE(failure.bad_index);
  EXPECT_EQ(failure.tag, 2);
  EXPECT_EQ(failure.message, "index 7 is out of range [-5, 5)");

  // The record is cleared: the next launch's bad index is reported on its own.
  device().gather({1, 5, 1, 4, DType::kInt32, 3}, out.mem, data.mem, low.mem);
  failure = device().finish();
  EXPECT_TRUE(failure.bad_index);
  EXPECT_EQ(failure.tag, 3);
  EXPECT_EQ(failure.message, "index -6 is out of range [-5, 5)");
  // An empty slice moves nothing but still checks its indices, as the CPU device does.
  device().gather({2, 5, 2, 0, DType::kInt64, 4}, out.mem, data.mem, high.mem);
  EXPECT_EQ(device().finish().tag, 4);

  device().gather({2, 5, 3, 4, DType::kInt64, 1}, out.mem, data.mem, good.mem);
  EXPECT_FALSE(device().finish().failed);
}

}  // namespace
}  // namespace coproc::kernels::opencl::test
