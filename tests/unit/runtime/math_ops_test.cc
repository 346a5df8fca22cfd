// Math operators (ops/elementwise.cc, ops/reduce.cc) on models written here, for what the ONNX
// conformance data leaves out: Erf accuracy over a sweep, LayerNormalization on rows with a large
// offset and with a Scale that broadcasts over rows, integer arithmetic that divides by zero or
// overflows, bools that are neither 0 nor 1, ArgMax ties and NaN, reductions over empty sets and
// with noop_with_empty_axes, Pow's integer corners, and the plan-time refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "coproc/runtime/model.h"
#include "onnx_test_model.h"

// In the helpers' namespace (onnx_test_model.h), which the tests use throughout.
namespace coproc::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The opset of the models here where a test names none (LayerNormalization needs 17).
constexpr int64_t kOpset = 17;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A model of one node with inputs x0, x1, ... and output y.
ModelBuilder one_node(const std::string& op, const std::vector<DType>& input_types,
                      DType output_type, int64_t opset = kOpset) {
  ModelBuilder b(opset);
  std::vector<std::string> names;
  for (std::size_t k = 0; k < input_types.size(); ++k) {
    // Appended, not "x" + ...: GCC 12 warns falsely (-Wrestrict) on that concatenation at -O3.
    std::string name = "x";
    name += std::to_string(k);
    b.input(name, input_types[k], {-1});
    names.push_back(std::move(name));
  }
  b.output("y", output_type, {-1});
  b.node(op, names, {"y"});
  return b;
}

// ---------------------------------------------------------------- Erf

TEST(ErfOpTest, shouldMatchStdErfWithinOneAndAHalfUlpOverASweep) {
  auto model = load(one_node("Erf", {DType::kFloat32}, DType::kFloat32));
  std::vector<float> x;
  for (int i = -600'000; i <= 600'000; ++i) x.push_back(static_cast<float>(i) * 1e-5f);
  for (float v = 1e-30f; v < 1.0f; v *= 1.1f) x.push_back(v);
  auto out = run(model, {f32({static_cast<int64_t>(x.size())}, x)});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const auto y = (*out)[0].values<float>();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = std::erf(static_cast<double>(x[i]));
    if (want != 0.0) worst = std::max(worst, std::fabs(y[i] - want) / std::fabs(want));
  }
  EXPECT_LE(worst, 1.05e-7);
}

// ---------------------------------------------------------------- integer arithmetic

TEST(IntegerArithmeticTest, shouldDivideByZeroWithoutCrashingAndTruncateTowardZero) {
  for (const DType dtype : {DType::kInt64, DType::kInt32}) {
    auto model = load(one_node("Div", {dtype, dtype}, dtype));
    const int64_t min64 = std::numeric_limits<int64_t>::min();
    const int32_t min32 = std::numeric_limits<int32_t>::min();
    const bool wide = dtype == DType::kInt64;
    const Tensor a = wide ? i64({5}, {7, -7, 5, min64, 0}) : i32({5}, {7, -7, 5, min32, 0});
    const Tensor b = wide ? i64({5}, {2, 2, 0, -1, 0}) : i32({5}, {2, 2, 0, -1, 0});
    auto out = run(model, {a, b});
    ASSERT_TRUE(out.ok()) << out.error().message;
    if (wide) {
      EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(3, -3, 0, min64, 0));
    } else {
      EXPECT_THAT((*out)[0].values<int32_t>(), ElementsAre(3, -3, 0, min32, 0));
    }
  }
}

TEST(IntegerArithmeticTest, shouldWrapAroundOnOverflowWithBroadcasting) {
  const int64_t max64 = std::numeric_limits<int64_t>::max();
  const int64_t min64 = std::numeric_limits<int64_t>::min();
  auto add = run(load(one_node("Add", {DType::kInt64, DType::kInt64}, DType::kInt64)),
                 {i64({2}, {max64, 1}), i64({1}, {1})});
  ASSERT_TRUE(add.ok()) << add.error().message;
  EXPECT_THAT((*add)[0].values<int64_t>(), ElementsAre(min64, 2));
  auto mul = run(load(one_node("Mul", {DType::kInt32, DType::kInt32}, DType::kInt32)),
                 {i32({1}, {65536}), i32({2}, {65536, -3})});
  ASSERT_TRUE(mul.ok()) << mul.error().message;
  EXPECT_THAT((*mul)[0].values<int32_t>(), ElementsAre(0, -196608));
  auto neg =
      run(load(one_node("Neg", {DType::kInt64}, DType::kInt64)), {i64({3}, {min64, 5, -max64})});
  ASSERT_TRUE(neg.ok()) << neg.error().message;
  EXPECT_THAT((*neg)[0].values<int64_t>(), ElementsAre(min64, -5, max64));
}

// ---------------------------------------------------------------- Pow

TEST(PowTest, shouldComputeIntegerPowersExactlyAndTruncateNegativeOnes) {
  auto model = load(one_node("Pow", {DType::kInt64, DType::kInt64}, DType::kInt64));
  auto out = run(model, {i64({6}, {3, -2, 2, 1, -1, 0}), i64({6}, {39, 5, -1, -7, -3, -2})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  // 3^39 fits int64 exactly (a double would round it); 2^-1 truncates to 0, 0^-2 is 0 too.
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(4052555153018976267, -32, 0, 1, -1, 0));
}

TEST(PowTest, shouldSaturateAnIntegerBaseToAFloatPowerAndMapNaNToZero) {
  auto model = load(one_node("Pow", {DType::kInt32, DType::kFloat32}, DType::kInt32));
  auto out = run(model, {i32({4}, {10, -10, 4, -8}), f32({4}, {20.0f, 21.0f, 0.5f, 0.5f})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_THAT((*out)[0].values<int32_t>(), ElementsAre(std::numeric_limits<int32_t>::max(),
                                                       std::numeric_limits<int32_t>::min(), 2, 0));
}

TEST(PowTest, shouldSquareAndCubeAFloatTensorByAScalarExponent) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {-1}).input("e", DType::kFloat32, {});
  b.output("y", DType::kFloat32, {-1});
  b.node("Pow", {"x", "e"}, {"y"});
  auto model = load(b);
  const Tensor x = f32({4}, {-3.0f, 0.5f, -0.0f, kInf});
  for (const float e : {2.0f, 3.0f, 0.5f}) {
    auto out = run(model, {x, f32({}, {e})});
    ASSERT_TRUE(out.ok()) << out.error().message;
    const auto y = (*out)[0].values<float>();
    for (std::size_t i = 0; i < y.size(); ++i) {
      const float base = x.values<float>()[i];
      const float want = std::pow(base, e);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i])) << base << "^" << e;
        continue;
      }
      EXPECT_FLOAT_EQ(y[i], want) << base << "^" << e;
      EXPECT_EQ(std::signbit(y[i]), std::signbit(want)) << base << "^" << e;
    }
  }
}

// ---------------------------------------------------------------- bools, Equal, Where

TEST(WhereTest, shouldTreatEveryNonzeroConditionByteAsTrueAndWriteOnlyZeroOrOne) {
  auto model = load(one_node("Where", {DType::kBool, DType::kBool, DType::kBool}, DType::kBool));
  // Condition bytes 2 and 255 are true; X's byte 7 is true and comes out as 1.
  auto out = run(model, {boolean({4}, {2, 0, 255, 0}), boolean({4}, {7, 7, 0, 0}),
                         boolean({4}, {0, 9, 1, 0})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_THAT((*out)[0].values<uint8_t>(), ElementsAre(1, 1, 0, 0));
}

TEST(WhereTest, shouldBroadcastAllThreeOperands) {
  ModelBuilder b(kOpset);
  b.input("c", DType::kBool, {2, 1}).input("x", DType::kInt64, {3}).input("y", DType::kInt64, {});
  b.output("z", DType::kInt64, {2, 3});
  b.node("Where", {"c", "x", "y"}, {"z"});
  auto out = run(load(b), {boolean({2, 1}, {3, 0}), i64({3}, {1, 2, 3}), i64({}, {-1})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(1, 2, 3, -1, -1, -1));
}

TEST(EqualTest, shouldCompareBoolsByTruthAndFloatsByIeee) {
  auto bools = run(load(one_node("Equal", {DType::kBool, DType::kBool}, DType::kBool)),
                   {boolean({3}, {2, 0, 1}), boolean({3}, {1, 0, 0})});
  ASSERT_TRUE(bools.ok()) << bools.error().message;
  EXPECT_THAT((*bools)[0].values<uint8_t>(), ElementsAre(1, 1, 0));
  auto floats = run(load(one_node("Equal", {DType::kFloat32, DType::kFloat32}, DType::kBool)),
                    {f32({3}, {kNaN, -0.0f, 1.0f}), f32({3}, {kNaN, 0.0f, 1.5f})});
  ASSERT_TRUE(floats.ok()) << floats.error().message;
  EXPECT_THAT((*floats)[0].values<uint8_t>(), ElementsAre(0, 1, 0));
}

// ---------------------------------------------------------------- ArgMax

ModelBuilder argmax_model(int64_t axis, int64_t keepdims, int64_t select_last) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {2, 4});
  b.output("y", DType::kInt64,
           keepdims != 0 ? std::vector<int64_t>{2, 1} : std::vector<int64_t>{2});
  auto& n = b.node("ArgMax", {"x"}, {"y"});
  set_int(n, "axis", axis);
  set_int(n, "keepdims", keepdims);
  set_int(n, "select_last_index", select_last);
  return b;
}

TEST(ArgMaxTest, shouldPickTheFirstOrLastOfTiedMaxima) {
  const Tensor x = f32({2, 4}, {1.0f, 5.0f, 5.0f, 2.0f, 7.0f, 7.0f, 7.0f, 7.0f});
  auto first = run(load(argmax_model(1, 1, 0)), {x});
  auto last = run(load(argmax_model(-1, 0, 1)), {x});
  ASSERT_TRUE(first.ok() && last.ok());
  EXPECT_EQ((*first)[0].shape, shape({2, 1}));
  EXPECT_THAT((*first)[0].values<int64_t>(), ElementsAre(1, 0));
  EXPECT_EQ((*last)[0].shape, shape({2}));
  EXPECT_THAT((*last)[0].values<int64_t>(), ElementsAre(2, 3));
}

TEST(ArgMaxTest, shouldTreatNaNAsTheMaximumLikeNumpy) {
  const Tensor x = f32({2, 4}, {1.0f, kNaN, 9.0f, kNaN, -kInf, -kInf, -kInf, -kInf});
  auto first = run(load(argmax_model(1, 0, 0)), {x});
  auto last = run(load(argmax_model(1, 0, 1)), {x});
  ASSERT_TRUE(first.ok() && last.ok());
  EXPECT_THAT((*first)[0].values<int64_t>(), ElementsAre(1, 0));
  EXPECT_THAT((*last)[0].values<int64_t>(), ElementsAre(3, 3));
}

TEST(ArgMaxTest, shouldRefuseAnEmptyAxisWhenPlanning) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kInt64, {-1, 3});
  b.output("y", DType::kInt64, {1, 3});
  b.node("ArgMax", {"x"}, {"y"});
  auto out = run(load(b), {i64({0, 3}, {})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(out.error().message, HasSubstr("empty axis"));
}

// ---------------------------------------------------------------- reductions

// ReduceSum (opset 13: axes as input 1) over x [2, 3], to an output of rank out_rank.
ModelBuilder reduce_sum_model(bool with_axes, int64_t keepdims, int64_t noop, int out_rank) {
  ModelBuilder b(13);
  b.input("x", DType::kFloat32, {2, 3});
  if (with_axes) b.input("axes", DType::kInt64, {-1});
  b.output("y", DType::kFloat32, std::vector<int64_t>(static_cast<std::size_t>(out_rank), -1));
  auto& n = b.node(
      "ReduceSum",
      with_axes ? std::vector<std::string>{"x", "axes"} : std::vector<std::string>{"x"}, {"y"});
  set_int(n, "keepdims", keepdims);
  set_int(n, "noop_with_empty_axes", noop);
  return b;
}

TEST(ReduceOpTest, shouldReduceEverythingOrNothingWhenNoAxesAreGiven) {
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, -0.0f});
  auto all = run(load(reduce_sum_model(false, 1, 0, 2)), {x});
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ((*all)[0].shape, shape({1, 1}));
  EXPECT_THAT((*all)[0].values<float>(), ElementsAre(15.0f));
  auto none = run(load(reduce_sum_model(false, 1, 1, 2)), {x});
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ((*none)[0].shape, shape({2, 3}));
  const auto same = (*none)[0].values<float>();
  EXPECT_THAT(same, ElementsAre(1, 2, 3, 4, 5, 0));
  EXPECT_TRUE(std::signbit(same[5]));  // the input's -0, not a sum starting from +0
}

TEST(ReduceOpTest, shouldRefuseRepeatedOrOutOfRangeAxesWhenPlanning) {
  auto model = load(reduce_sum_model(true, 0, 0, 1));
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  for (const auto& axes : {std::vector<int64_t>{1, -1}, std::vector<int64_t>{2}}) {
    auto out = run(model, {x, i64({static_cast<int64_t>(axes.size())}, axes)});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument) << out.error().message;
  }
  auto ok = run(model, {x, i64({1}, {-2})});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ((*ok)[0].shape, shape({3}));
  EXPECT_THAT((*ok)[0].values<float>(), ElementsAre(5, 7, 9));
}

TEST(ReduceOpTest, shouldGiveTheIdentityForAReductionOverNoValues) {
  for (const std::string op : {"ReduceSum", "ReduceMax", "ReduceMean"}) {
    const bool sum = op == "ReduceSum";
    ModelBuilder b(sum ? 13 : 17);
    b.input("x", DType::kFloat32, {-1, 2});
    b.output("y", DType::kFloat32, {2});
    auto& n = b.node(op, {"x"}, {"y"});
    set_int(n, "keepdims", 0);
    if (sum) {
      b.weight("axes", i64({1}, {0}));  // opset 13: the axes are a (constant) input
      n.add_input("axes");
    } else {
      set_ints(n, "axes", {0});
    }
    auto out = run(load(b), {f32({0, 2}, {})});
    ASSERT_TRUE(out.ok()) << op << ": " << out.error().message;
    const auto y = (*out)[0].values<float>();
    ASSERT_EQ(y.size(), 2u);
    if (op == "ReduceMean") {
      EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]));
    } else {
      const float want = sum ? 0.0f : -kInf;
      EXPECT_THAT(y, ElementsAre(want, want)) << op;
      EXPECT_FALSE(std::signbit(y[0]) && sum);
    }
  }
}

TEST(ReduceOpTest, shouldReduceNonAdjacentAxesOfInt64AndFloat) {
  // x [2, 3, 2] reduced over axes 0 and 2: an odometer over axis 0 around row reductions.
  std::vector<int64_t> xi(12);
  std::vector<float> xf(12);
  for (int i = 0; i < 12; ++i) {
    xi[static_cast<std::size_t>(i)] = i * i;
    xf[static_cast<std::size_t>(i)] = static_cast<float>(i * i);
  }
  for (const DType dtype : {DType::kInt64, DType::kFloat32}) {
    for (const char* op : {"ReduceMax", "ReduceSumSquare"}) {
      ModelBuilder b(kOpset);
      b.input("x", dtype, {2, 3, 2});
      b.output("y", dtype, {1, 3, 1});
      set_ints(b.node(op, {"x"}, {"y"}), "axes", {0, -1});
      const Tensor x = dtype == DType::kInt64 ? i64({2, 3, 2}, xi) : f32({2, 3, 2}, xf);
      auto out = run(load(b), {x});
      ASSERT_TRUE(out.ok()) << op << ": " << out.error().message;
      // Column c of the middle axis holds elements 2c, 2c + 1, 6 + 2c, 7 + 2c.
      std::vector<int64_t> want;
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t e[4] = {2 * c, 2 * c + 1, 6 + 2 * c, 7 + 2 * c};
        int64_t r = 0;
        for (const int64_t k : e) {
          r = op == std::string("ReduceMax") ? std::max(r, k * k) : r + k * k * k * k;
        }
        want.push_back(r);
      }
      if (dtype == DType::kInt64) {
        EXPECT_EQ((*out)[0].values<int64_t>(), want) << op;
      } else {
        const auto got = (*out)[0].values<float>();
        for (std::size_t c = 0; c < 3; ++c) {
          EXPECT_FLOAT_EQ(got[c], static_cast<float>(want[c])) << op;
        }
      }
    }
  }
}

TEST(ReduceOpTest, shouldAverageOverTheSequenceAxisOfAnEncoderOutput) {
  // Mean pooling's shape: [batch, seq, hidden] over seq, a column reduction per batch.
  const int64_t batch = 3, seq = 7, hidden = 130;
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {batch, seq, hidden});
  b.output("y", DType::kFloat32, {batch, hidden});
  auto& n = b.node("ReduceMean", {"x"}, {"y"});
  set_ints(n, "axes", {1});
  set_int(n, "keepdims", 0);
  std::vector<float> x(static_cast<std::size_t>(batch * seq * hidden));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
  auto out = run(load(b), {f32({batch, seq, hidden}, x)});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const auto y = (*out)[0].values<float>();
  for (int64_t o = 0; o < batch; ++o) {
    for (int64_t h = 0; h < hidden; ++h) {
      double want = 0.0;
      for (int64_t s = 0; s < seq; ++s) {
        want += x[static_cast<std::size_t>((o * seq + s) * hidden + h)];
      }
      EXPECT_NEAR(y[static_cast<std::size_t>(o * hidden + h)], want / seq, 1e-6);
    }
  }
}

// ---------------------------------------------------------------- LayerNormalization

struct LayerNormRef {
  std::vector<double> y, mean, inv_std_dev;
};

// x [rows, n] normalised per row in double; scale and bias indexed by y's flat index.
LayerNormRef reference_layer_norm(const std::vector<float>& x, int64_t rows, int64_t n,
                                  const std::vector<float>& scale, const std::vector<float>& bias,
                                  double epsilon) {
  LayerNormRef r;
  for (int64_t row = 0; row < rows; ++row) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += x[static_cast<std::size_t>(row * n + i)];
    const double mean = sum / static_cast<double>(n);
    double sq = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = x[static_cast<std::size_t>(row * n + i)] - mean;
      sq += d * d;
    }
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(n) + epsilon);
    r.mean.push_back(mean);
    r.inv_std_dev.push_back(inv);
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(row * n + i);
      r.y.push_back((x[k] - mean) * inv * scale[k % scale.size()] + bias[k % bias.size()]);
    }
  }
  return r;
}

TEST(LayerNormalizationTest, shouldKeepPrecisionForRowsWithALargeOffsetAndReturnTheStatistics) {
  // BERT's hidden size, rows of noise (std 1) around 1e4: a float one-pass variance cancels
  // catastrophically here.
  const int64_t rows = 8, n = 384;
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {2, 4, n}).input("w", DType::kFloat32, {n});
  b.input("b", DType::kFloat32, {n});
  b.output("y", DType::kFloat32, {2, 4, n}).output("mean", DType::kFloat32, {2, 4, 1});
  b.output("inv", DType::kFloat32, {2, 4, 1});
  set_float(b.node("LayerNormalization", {"x", "w", "b"}, {"y", "mean", "inv"}), "epsilon", 1e-12f);
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * n)), w(n), bias(n);
  for (float& v : x) v = 1e4f + noise(rng);
  for (float& v : w) v = 1.0f + 0.1f * noise(rng);
  for (float& v : bias) v = 0.1f * noise(rng);
  auto out = run(load(b), {f32({2, 4, n}, x), f32({n}, w), f32({n}, bias)});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const LayerNormRef want = reference_layer_norm(x, rows, n, w, bias, 1e-12);
  const auto y = (*out)[0].values<float>();
  for (std::size_t k = 0; k < y.size(); ++k) EXPECT_NEAR(y[k], want.y[k], 2e-6) << k;
  EXPECT_EQ((*out)[1].shape, shape({2, 4, 1}));
  const auto mean = (*out)[1].values<float>();
  const auto inv = (*out)[2].values<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    EXPECT_NEAR(mean[ur], want.mean[ur], 1e-3);  // half an ulp of 1e4 is 5e-4
    EXPECT_NEAR(inv[ur], want.inv_std_dev[ur], 1e-6 * want.inv_std_dev[ur]);
  }
}

TEST(LayerNormalizationTest, shouldBroadcastAScaleThatVariesAcrossRows) {
  // Scale [2, 3] = X's shape with axis -1: each row has its own scale (not fused into the
  // kernel); B [3] is per normalised element.
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {2, 3}).input("w", DType::kFloat32, {2, 3});
  b.input("b", DType::kFloat32, {3});
  b.output("y", DType::kFloat32, {2, 3});
  b.node("LayerNormalization", {"x", "w", "b"}, {"y"});
  const std::vector<float> x = {1, 2, 4, -1, 0, 3}, w = {1, 2, 3, -1, -2, -3},
                           bias = {0.5f, 0, -0.5f};
  auto out = run(load(b), {f32({2, 3}, x), f32({2, 3}, w), f32({3}, bias)});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const LayerNormRef want = reference_layer_norm(x, 2, 3, w, bias, 1e-5);
  const auto y = (*out)[0].values<float>();
  for (std::size_t k = 0; k < y.size(); ++k) EXPECT_NEAR(y[k], want.y[k], 1e-6) << k;
}

TEST(LayerNormalizationTest, shouldRefuseAStashTypeOtherThanFloat32AndAScaleThatDoesNotFit) {
  ModelBuilder stash(kOpset);
  stash.input("x", DType::kFloat32, {2, 3}).input("w", DType::kFloat32, {3});
  stash.output("y", DType::kFloat32, {2, 3});
  set_int(stash.node("LayerNormalization", {"x", "w"}, {"y"}), "stash_type", 11);
  auto refused = run(load(stash), {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({3}, {1, 1, 1})});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnsupported);
  EXPECT_THAT(refused.error().message, HasSubstr("stash_type"));

  ModelBuilder wide(kOpset);
  wide.input("x", DType::kFloat32, {2, -1}).input("w", DType::kFloat32, {-1});
  wide.output("y", DType::kFloat32, {2, -1});
  wide.node("LayerNormalization", {"x", "w"}, {"y"});
  auto bad = run(load(wide), {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2}, {1, 1})});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message, HasSubstr("does not broadcast"));
}

}  // namespace
}  // namespace coproc::runtime::testing
