// CPU kernels against naive double-precision reference loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "coproc/kernels/cpu.h"

namespace cpu = coproc::kernels::cpu;

namespace {

std::vector<float> random_floats(std::size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// max_i |got_i - want_i| / max(|want_i|, floor): elementwise relative error.
double max_relative_error(const std::vector<float>& got, const std::vector<double>& want,
                          double floor) {
  double worst = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]) / std::max(std::fabs(want[i]), floor);
    worst = std::isnan(err) ? INFINITY : std::max(worst, err);
  }
  return worst;
}

// ---------------------------------------------------------------- GEMM

struct GemmCase {
  bool trans_a;
  bool trans_b;
  int64_t m, n, k;
  float alpha, beta;
  int64_t pad;  // extra elements per row beyond the minimum leading dimension
};

std::vector<double> reference_gemm(const GemmCase& g, const std::vector<float>& a, int64_t lda,
                                   const std::vector<float>& b, int64_t ldb,
                                   const std::vector<float>& c, int64_t ldc) {
  std::vector<double> out(static_cast<std::size_t>(g.m * ldc));
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < g.k; ++p) {
        const double av = g.trans_a ? a[static_cast<std::size_t>(p * lda + i)]
                                    : a[static_cast<std::size_t>(i * lda + p)];
        const double bv = g.trans_b ? b[static_cast<std::size_t>(j * ldb + p)]
                                    : b[static_cast<std::size_t>(p * ldb + j)];
        sum += av * bv;
      }
      const auto at = static_cast<std::size_t>(i * ldc + j);
      out[at] = g.alpha * sum + (g.beta == 0.0f ? 0.0 : g.beta * c[at]);
    }
  }
  return out;
}

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, shouldMatchNaiveProductForEveryTransposeAndLeadingDimension) {
  const GemmCase g = GetParam();
  const int64_t lda = (g.trans_a ? g.m : g.k) + g.pad;
  const int64_t ldb = (g.trans_b ? g.k : g.n) + g.pad;
  const int64_t ldc = g.n + g.pad;
  const auto a = random_floats(static_cast<std::size_t>((g.trans_a ? g.k : g.m) * lda), 1);
  const auto b = random_floats(static_cast<std::size_t>((g.trans_b ? g.n : g.k) * ldb), 2);
  auto c = random_floats(static_cast<std::size_t>(g.m * ldc), 3);
  if (g.beta == 0.0f) std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
  const auto want = reference_gemm(g, a, lda, b, ldb, c, ldc);

  cpu::gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, a.data(), lda, b.data(), ldb, g.beta,
            c.data(), ldc);

  double worst = 0.0;
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      const auto at = static_cast<std::size_t>(i * ldc + j);
      // Products of K unit normals are O(sqrt(K)): judge against that scale.
      worst = std::max(worst, std::fabs(c[at] - want[at]) / std::sqrt(static_cast<double>(g.k)));
    }
  }
  EXPECT_LT(worst, 1e-5);
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      cases.push_back({ta, tb, 1, 33, 17, 1.0f, 0.0f, 0});   // GEMV path, C write-only
      cases.push_back({ta, tb, 1, 16, 256, 0.5f, 1.0f, 3});  // GEMV path with beta, padded
      cases.push_back({ta, tb, 3, 19, 40, 2.0f, 0.5f, 5});   // one GEMV per row, padded
      cases.push_back({ta, tb, 7, 5, 3, 1.0f, 0.0f, 0});
      cases.push_back({ta, tb, 13, 31, 29, -1.5f, 0.25f, 2});
      cases.push_back({ta, tb, 64, 48, 100, 1.0f, 1.0f, 0});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmTest, ::testing::ValuesIn(gemm_cases()));

TEST(GemmTest, shouldScaleCByBetaWhenKIsZero) {
  std::vector<float> c = {1.0f, 2.0f, 3.0f, 4.0f};
  const float unused = 0.0f;
  cpu::gemm(false, false, 2, 2, 0, 1.0f, &unused, 1, &unused, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
}

// ---------------------------------------------------------------- broadcasting binary ops

struct BinaryCase {
  std::vector<int64_t> a;
  std::vector<int64_t> b;
  cpu::Broadcast::Kind kind;  // the path make_broadcast should pick
};

int64_t count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (const int64_t d : dims) n *= d;
  return n;
}

// Naive numpy broadcasting: index each operand by the output's multi-index.
std::vector<double> reference_binary(cpu::BinaryOp op, const std::vector<float>& a,
                                     std::vector<int64_t> ad, const std::vector<float>& b,
                                     std::vector<int64_t> bd, std::vector<int64_t>* out_dims) {
  const std::size_t rank = std::max(ad.size(), bd.size());
  ad.insert(ad.begin(), rank - ad.size(), 1);
  bd.insert(bd.begin(), rank - bd.size(), 1);
  out_dims->resize(rank);
  for (std::size_t d = 0; d < rank; ++d) (*out_dims)[d] = ad[d] == 1 ? bd[d] : ad[d];
  std::vector<double> out(static_cast<std::size_t>(count(*out_dims)));
  for (std::size_t flat = 0; flat < out.size(); ++flat) {
    std::size_t rest = flat;
    std::size_t ai = 0, bi = 0, as = 1, bs = 1;
    for (std::size_t d = rank; d-- > 0;) {
      const auto idx = rest % static_cast<std::size_t>((*out_dims)[d]);
      rest /= static_cast<std::size_t>((*out_dims)[d]);
      if (ad[d] != 1) ai += idx * as;
      if (bd[d] != 1) bi += idx * bs;
      as *= static_cast<std::size_t>(ad[d]);
      bs *= static_cast<std::size_t>(bd[d]);
    }
    const double x = a[ai], y = b[bi];
    switch (op) {
      case cpu::BinaryOp::kAdd:
        out[flat] = x + y;
        break;
      case cpu::BinaryOp::kSub:
        out[flat] = x - y;
        break;
      case cpu::BinaryOp::kMul:
        out[flat] = x * y;
        break;
      case cpu::BinaryOp::kDiv:
        out[flat] = x / y;
        break;
    }
  }
  return out;
}

class BinaryTest : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(BinaryTest, shouldMatchNaiveBroadcastingForEveryOpAndPickTheFastPath) {
  const BinaryCase& c = GetParam();
  cpu::Broadcast layout;
  ASSERT_TRUE(cpu::make_broadcast(c.a, c.b, &layout));
  EXPECT_EQ(layout.kind, c.kind);
  const auto a = random_floats(static_cast<std::size_t>(count(c.a)), 11);
  auto b = random_floats(static_cast<std::size_t>(count(c.b)), 12);
  for (float& x : b) x = x >= 0 ? x + 0.5f : x - 0.5f;  // away from zero for Div
  for (const auto op :
       {cpu::BinaryOp::kAdd, cpu::BinaryOp::kSub, cpu::BinaryOp::kMul, cpu::BinaryOp::kDiv}) {
    std::vector<int64_t> out_dims;
    const auto want = reference_binary(op, a, c.a, b, c.b, &out_dims);
    ASSERT_EQ(std::vector<int64_t>(layout.out_dims, layout.out_dims + layout.out_rank), out_dims);
    std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
    cpu::binary(op, a.data(), b.data(), got.data(), layout);
    EXPECT_LT(max_relative_error(got, want, 1e-6), 1e-6) << "op " << static_cast<int>(op);
  }
}

using Kind = cpu::Broadcast::Kind;
INSTANTIATE_TEST_SUITE_P(
    Shapes, BinaryTest,
    ::testing::Values(
        BinaryCase{{7, 5}, {7, 5}, Kind::kSame}, BinaryCase{{3, 1, 5}, {3, 1, 5}, Kind::kSame},
        BinaryCase{{}, {4, 3}, Kind::kScalarA}, BinaryCase{{9, 3}, {1}, Kind::kScalarB},
        BinaryCase{{1, 1}, {2, 3, 5}, Kind::kScalarA}, BinaryCase{{13}, {11, 13}, Kind::kRowA},
        BinaryCase{{11, 13}, {13}, Kind::kRowB},
        BinaryCase{{2, 3, 17}, {1, 17}, Kind::kRowB},  // merges to [6, 17]
        BinaryCase{{5, 1}, {5, 7}, Kind::kStrided},    // column broadcast
        BinaryCase{{5, 1}, {1, 7}, Kind::kStrided},    // outer product
        BinaryCase{{2, 3, 1, 7}, {3, 1, 1}, Kind::kStrided},
        BinaryCase{{4, 1, 3, 1, 5}, {1, 6, 1, 2, 5}, Kind::kStrided},
        BinaryCase{{2, 1, 3, 1, 2, 1, 3, 2}, {1, 3, 1, 2, 1, 3, 1, 2}, Kind::kStrided},  // rank 8
        BinaryCase{{0, 3}, {3}, Kind::kSame}));  // empty output

TEST(BinaryTest, shouldRefuseShapesThatDoNotBroadcast) {
  cpu::Broadcast layout;
  EXPECT_FALSE(cpu::make_broadcast(std::vector<int64_t>{3, 4}, std::vector<int64_t>{5}, &layout));
  EXPECT_FALSE(
      cpu::make_broadcast(std::vector<int64_t>{2, 3}, std::vector<int64_t>{3, 3}, &layout));
}

TEST(BinaryTest, shouldComputeInPlaceOverTheFullShapeOperand) {
  const std::vector<int64_t> ad = {4, 6};
  const std::vector<int64_t> bd = {6};
  auto a = random_floats(24, 21);
  const auto b = random_floats(6, 22);
  std::vector<int64_t> out_dims;
  const auto want = reference_binary(cpu::BinaryOp::kMul, a, ad, b, bd, &out_dims);
  ASSERT_TRUE(cpu::binary(cpu::BinaryOp::kMul, a.data(), ad, b.data(), bd, a.data()));
  EXPECT_LT(max_relative_error(a, want, 1e-6), 1e-6);
}

TEST(BroadcastCopyTest, shouldExpandSourceToTheDestinationShape) {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{5}, {3, 5}},    {{3, 1}, {3, 5}}, {{}, {2, 2}},
      {{1, 5}, {4, 5}}, {{4, 5}, {4, 5}}, {{2, 1, 3}, {2, 4, 3}}};
  for (const auto& [src_dims, dst_dims] : cases) {
    cpu::Broadcast layout;
    ASSERT_TRUE(cpu::make_broadcast(src_dims, dst_dims, &layout));
    const auto src = random_floats(static_cast<std::size_t>(count(src_dims)), 31);
    const std::vector<float> zeros(static_cast<std::size_t>(count(dst_dims)), 0.0f);
    std::vector<int64_t> out_dims;
    const auto want =
        reference_binary(cpu::BinaryOp::kAdd, src, src_dims, zeros, dst_dims, &out_dims);
    std::vector<float> got(zeros.size(), -1.0f);
    cpu::broadcast_copy(src.data(), got.data(), layout);
    EXPECT_EQ(max_relative_error(got, want, 1e-30), 0.0) << "dst rank " << dst_dims.size();
  }
}

// ---------------------------------------------------------------- unary ops

// Inputs spanning zero, both saturated tails and the Cephes tanh switch point at |x| = 0.625.
std::vector<float> unary_inputs() {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(static_cast<float>(i) * 0.01f);  // [-40, 40]
  for (const float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 0.6249999f, 0.625f, -0.625f, 87.0f,
                        -87.0f, 100.0f, -100.0f, 1e10f, -1e10f}) {
    x.push_back(v);
  }
  x.push_back(11.0f);  // n = 8191 + 14 + 1: an odd tail for the vector loop
  return x;
}

TEST(UnaryTest, shouldComputeReluExactly) {
  const auto x = unary_inputs();
  std::vector<float> y(x.size());
  cpu::relu(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], std::max(x[i], 0.0f)) << x[i];
}

TEST(UnaryTest, shouldComputeSigmoidWithinFewUlpWithoutOverflow) {
  const auto x = unary_inputs();
  std::vector<double> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) want[i] = 1.0 / (1.0 + std::exp(-double{x[i]}));
  std::vector<float> y(x.size());
  cpu::sigmoid(x.data(), y.data(), static_cast<int64_t>(x.size()));
  // Relative to each element down to 1e-30: below x = -87 the kernel clamps exp's argument and
  // returns about 1.6e-38 instead of the (denormal or zero) exact value.
  EXPECT_LT(max_relative_error(y, want, 1e-30), 1e-6);
}

TEST(UnaryTest, shouldComputeTanhWithinFewUlpIncludingNearZero) {
  const auto x = unary_inputs();
  std::vector<double> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) want[i] = std::tanh(double{x[i]});
  std::vector<float> y(x.size());
  cpu::tanh(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_LT(max_relative_error(y, want, 1e-37), 1e-6);
}

TEST(UnaryTest, shouldComputeInPlace) {
  auto x = unary_inputs();
  const auto original = x;
  cpu::sigmoid(x.data(), x.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  cpu::sigmoid(original.data(), y.data(), static_cast<int64_t>(y.size()));
  EXPECT_EQ(x, y);
}

TEST(UnaryTest, shouldPropagateNaN) {
  const float x[2] = {std::numeric_limits<float>::quiet_NaN(), 1.0f};
  float y[2];
  cpu::sigmoid(x, y, 2);
  EXPECT_TRUE(std::isnan(y[0]));
  cpu::tanh(x, y, 2);
  EXPECT_TRUE(std::isnan(y[0]));
}

// ---------------------------------------------------------------- softmax

std::vector<double> reference_softmax(const std::vector<float>& x, int64_t outer, int64_t n,
                                      int64_t inner) {
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const auto at = [&](int64_t j) { return static_cast<std::size_t>((o * n + j) * inner + i); };
      double m = -INFINITY;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, double{x[at(j)]});
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(x[at(j)] - m);
      for (int64_t j = 0; j < n; ++j) y[at(j)] = std::exp(x[at(j)] - m) / sum;
    }
  }
  return y;
}

// The float32 sum of up to 1000 exponentials carries a relative error of a few 1e-6.
constexpr double kSoftmaxTolerance = 1e-5;

TEST(SoftmaxTest, shouldMatchReferenceOverRowsIncludingLargeLogits) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 16}, {2, 1000}}) {
    auto x = random_floats(static_cast<std::size_t>(rows * cols), 41, 10.0f);
    x[0] += 1000.0f;  // would overflow exp without subtracting the maximum
    const auto want = reference_softmax(x, rows, cols, 1);
    std::vector<float> y(x.size());
    cpu::softmax(x.data(), y.data(), rows, cols);
    EXPECT_LT(max_relative_error(y, want, 1e-30), kSoftmaxTolerance) << rows << "x" << cols;
  }
}

TEST(SoftmaxTest, shouldMatchReferenceAlongAMiddleAxis) {
  for (const auto& [outer, n, inner] :
       {std::tuple<int64_t, int64_t, int64_t>{2, 3, 5}, {1, 4, 64}, {3, 5, 70}, {2, 2, 129}}) {
    const auto x = random_floats(static_cast<std::size_t>(outer * n * inner), 42, 4.0f);
    const auto want = reference_softmax(x, outer, n, inner);
    std::vector<float> y(x.size());
    cpu::softmax_strided(x.data(), y.data(), outer, n, inner);
    EXPECT_LT(max_relative_error(y, want, 1e-30), kSoftmaxTolerance)
        << outer << "x" << n << "x" << inner;
    auto in_place = x;
    cpu::softmax_strided(in_place.data(), in_place.data(), outer, n, inner);
    EXPECT_EQ(in_place, y);
  }
}

TEST(ThreadsTest, shouldSetTheOpenBlasThreadCount) {
  const int before = cpu::threads();
  cpu::set_threads(1);
  EXPECT_EQ(cpu::threads(), 1);
  cpu::set_threads(before);
  EXPECT_GE(cpu::default_threads(), 1);
}

}  // namespace
