// Tensor operators (ops/tensor.cc) on models written here, for what the ONNX conformance data
// leaves out: Gather's run-time index checks and negative indices, Cast between the dtypes the
// runtime computes on (truncation, NaN, bools that are neither 0 nor 1), Slice with negative
// steps on int64 and its opset 1 attribute form, zero-sized dims through every data-movement
// operator, and Transpose of int64.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "onnx_test_model.h"

// In the helpers' namespace (onnx_test_model.h), which the tests use throughout.
namespace coproc::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// The opset of the models here where a test names none: Squeeze and Unsqueeze take axes as an
// input from 13.
constexpr int64_t kOpset = 13;

std::vector<float> iota_f32(int n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<float>(i);
  return v;
}
std::vector<int64_t> iota_i64(int n) {
  std::vector<int64_t> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// ---------------------------------------------------------------- Gather

ModelBuilder gather_model(DType index_type, int64_t axis) {
  ModelBuilder b(kOpset);
  b.input("data", DType::kFloat32, {-1, -1}).input("indices", index_type, {-1});
  b.output("y", DType::kFloat32, {-1, -1});
  set_int(b.node("Gather", {"data", "indices"}, {"y"}), "axis", axis);
  return b;
}

TEST(GatherTest, shouldRefuseAnIndexOutOfRangeAtRunTimeNamingTheNode) {
  CpuSession session(load(gather_model(DType::kInt64, 0)));
  const Tensor data = f32({5, 3}, iota_f32(15));

  auto high = run(session, {data, i64({2}, {1, 5})});
  ASSERT_FALSE(high.ok());
  EXPECT_EQ(high.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(high.error().message, HasSubstr("node 'Gather_y' (Gather)"));
  EXPECT_THAT(high.error().message, HasSubstr("index 5 is out of range [-5, 5)"));

  auto low = run(session, {data, i64({2}, {0, -6})});
  ASSERT_FALSE(low.ok());
  EXPECT_THAT(low.error().message, HasSubstr("index -6 is out of range [-5, 5)"));

  auto huge = run(session, {data, i64({1}, {std::numeric_limits<int64_t>::min()})});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code, ErrorCode::kInvalidArgument);

  // The same plan still serves good indices.
  auto good = run(session, {data, i64({2}, {4, 0})});
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_THAT((*good)[0].values<float>(), ElementsAre(12, 13, 14, 0, 1, 2));
}

TEST(GatherTest, shouldRefuseAnInt32IndexOutOfRangeAlongAnInnerAxis) {
  auto out = run(load(gather_model(DType::kInt32, 1)), {f32({2, 3}, iota_f32(6)), i32({1}, {3})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(out.error().message, HasSubstr("index 3 is out of range [-3, 3)"));
}

TEST(GatherTest, shouldCountNegativeIndicesFromTheBackOfTheAxis) {
  auto rows =
      run(load(gather_model(DType::kInt64, 0)), {f32({4, 2}, iota_f32(8)), i64({3}, {-1, 0, -4})});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  EXPECT_EQ((*rows)[0].shape, shape({3, 2}));
  EXPECT_THAT((*rows)[0].values<float>(), ElementsAre(6, 7, 0, 1, 0, 1));

  auto columns =
      run(load(gather_model(DType::kInt32, -1)), {f32({2, 4}, iota_f32(8)), i32({3}, {-1, 1, -4})});
  ASSERT_TRUE(columns.ok()) << columns.error().message;
  EXPECT_EQ((*columns)[0].shape, shape({2, 3}));
  EXPECT_THAT((*columns)[0].values<float>(), ElementsAre(3, 1, 0, 7, 5, 4));
}

TEST(GatherTest, shouldDropTheAxisForAScalarIndexAndMoveInt64Rows) {
  ModelBuilder b(kOpset);
  b.input("data", DType::kInt64, {3, 2, 2}).weight("index", i64({}, {-2}));
  b.output("y", DType::kInt64, {2, 2});
  b.node("Gather", {"data", "index"}, {"y"});
  auto out = run(load(b), {i64({3, 2, 2}, iota_i64(12))});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({2, 2}));
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(4, 5, 6, 7));
}

TEST(GatherTest, shouldRefuseAConstantIndexOutOfRangeWhenPlanning) {
  ModelBuilder b(kOpset);
  b.input("data", DType::kFloat32, {-1, 2}).weight("indices", i64({2}, {0, 3}));
  b.output("y", DType::kFloat32, {2, 2});
  b.node("Gather", {"data", "indices"}, {"y"});
  CpuSession session(load(b));
  const Shape s = shape({3, 2});
  auto plan = session.prepare({&s, 1});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(plan.error().message, HasSubstr("node 'Gather_y' (Gather)"));
  EXPECT_THAT(plan.error().message, HasSubstr("index 3 is out of range [-3, 3)"));
}

// ---------------------------------------------------------------- Cast

ModelBuilder cast_model(DType from, DType to) {
  ModelBuilder b(kOpset);
  b.input("x", from, {-1}).output("y", to, {-1});
  set_int(b.node("Cast", {"x"}, {"y"}), "to", onnx_type(to));
  return b;
}

TEST(CastTest, shouldTruncateFloatsTowardZeroAndGiveTheMinimumForNaNAndOutOfRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = f32({9}, {2.7f, -2.7f, -0.5f, 0.0f, nan, inf, -inf, 3e9f, -2147483648.0f});
  constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
  auto to32 = run(load(cast_model(DType::kFloat32, DType::kInt32)), {x});
  ASSERT_TRUE(to32.ok()) << to32.error().message;
  EXPECT_THAT((*to32)[0].values<int32_t>(),
              ElementsAre(2, -2, 0, 0, kMin32, kMin32, kMin32, kMin32, kMin32));

  constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
  auto to64 = run(load(cast_model(DType::kFloat32, DType::kInt64)), {x});
  ASSERT_TRUE(to64.ok()) << to64.error().message;
  EXPECT_THAT((*to64)[0].values<int64_t>(),
              ElementsAre(2, -2, 0, 0, kMin64, kMin64, kMin64, 3000000000, -2147483648LL));
}

TEST(CastTest, shouldMakeAnythingNonzeroTrueAndWriteOnlyZeroOrOne) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto from_float = run(load(cast_model(DType::kFloat32, DType::kBool)),
                        {f32({5}, {0.0f, -0.0f, 0.25f, -3.0f, nan})});
  ASSERT_TRUE(from_float.ok()) << from_float.error().message;
  EXPECT_THAT((*from_float)[0].values<uint8_t>(), ElementsAre(0, 0, 1, 1, 1));

  auto from_int =
      run(load(cast_model(DType::kInt64, DType::kBool)), {i64({3}, {0, -1, int64_t{1} << 40})});
  ASSERT_TRUE(from_int.ok()) << from_int.error().message;
  EXPECT_THAT((*from_int)[0].values<uint8_t>(), ElementsAre(0, 1, 1));

  // A client may send any byte as a bool.
  const Tensor bytes = boolean({4}, {0, 1, 2, 255});
  auto to_bool = run(load(cast_model(DType::kBool, DType::kBool)), {bytes});
  ASSERT_TRUE(to_bool.ok()) << to_bool.error().message;
  EXPECT_THAT((*to_bool)[0].values<uint8_t>(), ElementsAre(0, 1, 1, 1));
  auto to_float = run(load(cast_model(DType::kBool, DType::kFloat32)), {bytes});
  ASSERT_TRUE(to_float.ok()) << to_float.error().message;
  EXPECT_THAT((*to_float)[0].values<float>(), ElementsAre(0, 1, 1, 1));
  auto to_int32 = run(load(cast_model(DType::kBool, DType::kInt32)), {bytes});
  ASSERT_TRUE(to_int32.ok()) << to_int32.error().message;
  EXPECT_THAT((*to_int32)[0].values<int32_t>(), ElementsAre(0, 1, 1, 1));
}

TEST(CastTest, shouldWrapWhenNarrowingIntegersAndRoundWhenWidening) {
  auto narrow = run(load(cast_model(DType::kInt64, DType::kInt32)),
                    {i64({3}, {(int64_t{1} << 32) + 5, -1, int64_t{1} << 31})});
  ASSERT_TRUE(narrow.ok()) << narrow.error().message;
  EXPECT_THAT((*narrow)[0].values<int32_t>(),
              ElementsAre(5, -1, std::numeric_limits<int32_t>::min()));

  auto widen = run(load(cast_model(DType::kInt32, DType::kInt64)), {i32({2}, {-7, 1 << 30})});
  ASSERT_TRUE(widen.ok()) << widen.error().message;
  EXPECT_THAT((*widen)[0].values<int64_t>(), ElementsAre(-7, 1 << 30));

  auto to_float = run(load(cast_model(DType::kInt64, DType::kFloat32)),
                      {i64({2}, {-3, (int64_t{1} << 24) + 1})});
  ASSERT_TRUE(to_float.ok()) << to_float.error().message;
  EXPECT_THAT((*to_float)[0].values<float>(), ElementsAre(-3.0f, 16777216.0f));
}

TEST(CastTest, shouldConvertInPlaceThroughAChainOfSameSizedCasts) {
  // float -> int32 -> float: the second Cast may write over the first's output.
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {-1}).output("y", DType::kFloat32, {-1});
  set_int(b.node("Cast", {"x"}, {"t"}), "to", onnx::TensorProto_DataType_INT32);
  set_int(b.node("Cast", {"t"}, {"y"}), "to", onnx::TensorProto_DataType_FLOAT);
  auto out = run(load(b), {f32({4}, {1.9f, -1.9f, 100.5f, -0.1f})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_THAT((*out)[0].values<float>(), ElementsAre(1, -1, 100, 0));
}

// ---------------------------------------------------------------- Slice

TEST(SliceTest, shouldWalkInt64BackwardsWithNegativeStepsAndClampTheBounds) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kInt64, {2, 5});
  b.weight("starts", i64({2}, {-1, 100}));
  b.weight("ends", i64({2}, {std::numeric_limits<int64_t>::min(), -100}));
  b.weight("axes", i64({2}, {0, -1}));
  b.weight("steps", i64({2}, {-1, -2}));
  b.output("y", DType::kInt64, {2, 3});
  b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"});
  auto out = run(load(b), {i64({2, 5}, iota_i64(10))});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({2, 3}));
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(9, 7, 5, 4, 2, 0));
}

TEST(SliceTest, shouldTakeOneElementForAStepLongerThanTheDim) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kInt64, {6}).input("steps", DType::kInt64, {1});
  b.weight("starts", i64({1}, {-1})).weight("ends", i64({1}, {-7})).weight("axes", i64({1}, {0}));
  b.output("y", DType::kInt64, {-1});
  b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"});
  auto out = run(load(b), {i64({6}, iota_i64(6)), i64({1}, {std::numeric_limits<int64_t>::min()})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(5));
}

TEST(SliceTest, shouldRefuseAZeroStepNamingTheNode) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kInt64, {6}).input("steps", DType::kInt64, {1});
  b.weight("starts", i64({1}, {0})).weight("ends", i64({1}, {6})).weight("axes", i64({1}, {0}));
  b.output("y", DType::kInt64, {-1});
  b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"});
  auto out = run(load(b), {i64({6}, iota_i64(6)), i64({1}, {0})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(out.error().message, HasSubstr("node 'Slice_y' (Slice)"));
}

TEST(SliceTest, shouldReadStartsEndsAndAxesAttributesBeforeOpset10) {
  ModelBuilder b(9);
  b.input("x", DType::kFloat32, {3, 4}).output("y", DType::kFloat32, {2, 2});
  onnx::NodeProto& n = b.node("Slice", {"x"}, {"y"});
  set_ints(n, "starts", {1, -3});
  set_ints(n, "ends", {1000, 3});
  set_ints(n, "axes", {0, 1});
  auto out = run(load(b), {f32({3, 4}, iota_f32(12))});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({2, 2}));
  EXPECT_THAT((*out)[0].values<float>(), ElementsAre(5, 6, 9, 10));
}

// ---------------------------------------------------------------- Transpose

TEST(TransposeTest, shouldPermuteInt64) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kInt64, {2, 3, 4}).output("y", DType::kInt64, {3, 4, 2});
  set_ints(b.node("Transpose", {"x"}, {"y"}), "perm", {1, 2, 0});
  auto out = run(load(b), {i64({2, 3, 4}, iota_i64(24))});
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::vector<int64_t> expected;
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t k = 0; k < 4; ++k) {
      for (int64_t i = 0; i < 2; ++i) expected.push_back(i * 12 + j * 4 + k);
    }
  }
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAreArray(expected));
}

TEST(TransposeTest, shouldSwapTheMiddleDimsOfAttentionHeadsBothWays) {
  // [B, S, H, D] -> [B, H, S, D] and back: contiguous runs of D.
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {2, 3, 4, 5}).output("y", DType::kFloat32, {2, 3, 4, 5});
  set_ints(b.node("Transpose", {"x"}, {"t"}), "perm", {0, 2, 1, 3});
  set_ints(b.node("Transpose", {"t"}, {"y"}), "perm", {0, 2, 1, 3});
  const Tensor x = f32({2, 3, 4, 5}, iota_f32(120));
  auto out = run(load(b), {x});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].values<float>(), x.values<float>());
}

// Every permutation of a rank-4 tensor whose dims are not multiples of the kernel's tiles, in a
// 4-byte and a 1-byte dtype, against the definition out[i] = x[perm applied to i].
TEST(TransposeTest, shouldMatchTheDefinitionForEveryPermutationOfRankFour) {
  const std::vector<int64_t> dims = {3, 17, 2, 19};
  const int n = 3 * 17 * 2 * 19;
  std::vector<int32_t> values(static_cast<std::size_t>(n));
  std::vector<uint8_t> bytes(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    values[static_cast<std::size_t>(i)] = i;
    bytes[static_cast<std::size_t>(i)] = static_cast<uint8_t>(i % 251);
  }
  std::vector<int64_t> perm = {0, 1, 2, 3};
  do {
    std::vector<int64_t> out_dims;
    for (const int64_t p : perm) out_dims.push_back(dims[static_cast<std::size_t>(p)]);
    // The source index of every output element, in output order.
    std::vector<int64_t> source;
    const int64_t in_strides[4] = {17 * 2 * 19, 2 * 19, 19, 1};
    std::array<int64_t, 4> idx{};
    for (idx[0] = 0; idx[0] < out_dims[0]; ++idx[0]) {
      for (idx[1] = 0; idx[1] < out_dims[1]; ++idx[1]) {
        for (idx[2] = 0; idx[2] < out_dims[2]; ++idx[2]) {
          for (idx[3] = 0; idx[3] < out_dims[3]; ++idx[3]) {
            int64_t offset = 0;
            for (std::size_t d = 0; d < 4; ++d) offset += idx[d] * in_strides[perm[d]];
            source.push_back(offset);
          }
        }
      }
    }
    for (const DType dtype : {DType::kInt32, DType::kBool}) {
      ModelBuilder b(kOpset);
      b.input("x", dtype, dims).output("y", dtype, out_dims);
      set_ints(b.node("Transpose", {"x"}, {"y"}), "perm", perm);
      const Tensor x = dtype == DType::kInt32 ? i32(dims, values) : boolean(dims, bytes);
      auto out = run(load(b), {x});
      ASSERT_TRUE(out.ok()) << out.error().message;
      ASSERT_EQ((*out)[0].shape, shape(out_dims));
      const bool wide = dtype == DType::kInt32;
      const std::vector<int32_t> got32 = wide ? (*out)[0].values<int32_t>() : values;
      const std::vector<uint8_t> got8 = wide ? bytes : (*out)[0].values<uint8_t>();
      for (std::size_t i = 0; i < source.size(); ++i) {
        const auto from = static_cast<std::size_t>(source[i]);
        const bool same = wide ? got32[i] == values[from] : got8[i] == bytes[from];
        ASSERT_TRUE(same) << dtype_name(dtype) << " perm " << ::testing::PrintToString(perm)
                          << " element " << i;
      }
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
}

// ---------------------------------------------------------------- zero-sized dims

TEST(ZeroSizeTest, shouldConcatAroundAnEmptyInput) {
  ModelBuilder b(kOpset);
  b.input("a", DType::kInt32, {2, -1}).input("b", DType::kInt32, {2, -1});
  b.output("y", DType::kInt32, {2, -1});
  set_int(b.node("Concat", {"a", "b", "a"}, {"y"}), "axis", 1);
  auto out = run(load(b), {i32({2, 0}, {}), i32({2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({2, 2}));
  EXPECT_THAT((*out)[0].values<int32_t>(), ElementsAre(1, 2, 3, 4));
}

TEST(ZeroSizeTest, shouldMoveNothingThroughEveryDataMovementOperator) {
  // x [0, 3] through Transpose, Slice, Gather (of no rows), Expand and Unsqueeze.
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {-1, 3}).input("idx", DType::kInt64, {-1});
  b.weight("starts", i64({1}, {1})).weight("ends", i64({1}, {3})).weight("axes", i64({1}, {1}));
  b.weight("shape", i64({3}, {2, 1, 3})).weight("ax0", i64({1}, {0}));
  b.output("t", DType::kFloat32, {3, -1});
  b.output("s", DType::kFloat32, {-1, 2});
  b.output("g", DType::kFloat32, {-1, 3});
  b.output("e", DType::kFloat32, {2, -1, 3});
  b.output("u", DType::kFloat32, {1, -1, 3});
  b.node("Transpose", {"x"}, {"t"});
  b.node("Slice", {"x", "starts", "ends", "axes"}, {"s"});
  b.node("Gather", {"x", "idx"}, {"g"});
  b.node("Expand", {"x", "shape"}, {"e"});
  b.node("Unsqueeze", {"x", "ax0"}, {"u"});
  auto out = run(load(b), {f32({0, 3}, {}), i64({0}, {})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({3, 0}));
  EXPECT_EQ((*out)[1].shape, shape({0, 2}));
  EXPECT_EQ((*out)[2].shape, shape({0, 3}));
  EXPECT_EQ((*out)[3].shape, shape({2, 0, 3}));
  EXPECT_EQ((*out)[4].shape, shape({1, 0, 3}));
}

TEST(ZeroSizeTest, shouldGatherNoIndicesFromAnyTable) {
  auto out = run(load(gather_model(DType::kInt64, 0)), {f32({4, 2}, iota_f32(8)), i64({0}, {})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({0, 2}));
}

// ---------------------------------------------------------------- Expand, Squeeze, Unsqueeze

TEST(ExpandTest, shouldBroadcastBothWaysWithTheShape) {
  // [3, 1] with [2, 1, 4] -> [2, 3, 4]: the shape's 1 keeps the input's 3.
  ModelBuilder b(kOpset);
  b.input("x", DType::kInt64, {3, 1}).weight("shape", i64({3}, {2, 1, 4}));
  b.output("y", DType::kInt64, {2, 3, 4});
  b.node("Expand", {"x", "shape"}, {"y"});
  auto out = run(load(b), {i64({3, 1}, {7, 8, 9})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({2, 3, 4}));
  std::vector<int64_t> expected;
  for (int r = 0; r < 2; ++r) {
    for (const int64_t v : {7, 8, 9}) expected.insert(expected.end(), 4, v);
  }
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAreArray(expected));
}

TEST(SqueezeTest, shouldTakeAxesAsAttributesBeforeOpset13AndRemoveEveryOneWithoutAxes) {
  ModelBuilder b(11);
  b.input("x", DType::kBool, {1, 2, 1}).output("u", DType::kBool, {1, 2, 1, 1});
  b.output("s", DType::kBool, {2, 1}).output("all", DType::kBool, {2});
  set_ints(b.node("Unsqueeze", {"x"}, {"u"}), "axes", {-1});
  set_ints(b.node("Squeeze", {"x"}, {"s"}), "axes", {0});
  b.node("Squeeze", {"x"}, {"all"});
  auto out = run(load(b), {boolean({1, 2, 1}, {1, 0})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({1, 2, 1, 1}));
  EXPECT_EQ((*out)[1].shape, shape({2, 1}));
  EXPECT_EQ((*out)[2].shape, shape({2}));
  EXPECT_THAT((*out)[2].values<uint8_t>(), ElementsAre(1, 0));
}

TEST(SqueezeTest, shouldRefuseSqueezingADimThatIsNotOne) {
  ModelBuilder b(kOpset);
  b.input("x", DType::kFloat32, {2, 3}).input("axes", DType::kInt64, {1});
  b.output("y", DType::kFloat32, {-1});
  b.node("Squeeze", {"x", "axes"}, {"y"});
  auto out = run(load(b), {f32({2, 3}, iota_f32(6)), i64({1}, {1})});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(out.error().message, HasSubstr("cannot squeeze axis 1 of [2, 3]"));
}

// ---------------------------------------------------------------- ConstantOfShape, Shape

TEST(ConstantOfShapeTest, shouldFillFloatZerosWithoutAValue) {
  ModelBuilder b(kOpset);
  b.input("shape", DType::kInt64, {2}).output("y", DType::kFloat32, {-1, -1});
  b.node("ConstantOfShape", {"shape"}, {"y"});
  auto out = run(load(b), {i64({2}, {2, 3})});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ((*out)[0].shape, shape({2, 3}));
  EXPECT_THAT((*out)[0].values<float>(), ElementsAre(0, 0, 0, 0, 0, 0));
}

TEST(ShapeTest, shouldClampStartAndEnd) {
  ModelBuilder b(15);
  b.input("x", DType::kFloat32, {2, 3, 4, 5}).output("y", DType::kInt64, {-1});
  onnx::NodeProto& n = b.node("Shape", {"x"}, {"y"});
  set_int(n, "start", -3);
  set_int(n, "end", 100);
  auto out = run(load(b), {f32({2, 3, 4, 5}, iota_f32(120))});
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_THAT((*out)[0].values<int64_t>(), ElementsAre(3, 4, 5));
}

}  // namespace
}  // namespace coproc::runtime::testing
