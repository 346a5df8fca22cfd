// Model::load: what is refused, and how it is reported.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "reference_data.h"

namespace coproc::runtime {
namespace {

using ::testing::HasSubstr;
using testing::model_path;

TEST(ModelLoadTest, shouldRefuseGarbageFileAsBadModelNamingTheFileAndTheProblem) {
  const std::string path = model_path("bad_garbage.onnx");
  auto model = Model::load(path);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, ErrorCode::kBadModel);
  EXPECT_THAT(model.error().message, HasSubstr(path));
  EXPECT_THAT(model.error().message, HasSubstr("onnx.ModelProto"));
}

TEST(ModelLoadTest, shouldRefuseTruncatedFileAsBadModelNamingTheFile) {
  const std::string path = model_path("bad_truncated.onnx");
  auto model = Model::load(path);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, ErrorCode::kBadModel);
  EXPECT_THAT(model.error().message, HasSubstr(path));
}

TEST(ModelLoadTest, shouldRefuseMissingFileAsNotFound) {
  auto model = Model::load(model_path("no_such_model.onnx"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(model.error().message, HasSubstr("no_such_model.onnx"));
}

TEST(ModelLoadTest, shouldRefuseModelWithUnsupportedOperatorNamingIt) {
  auto model = Model::load(model_path("bad_unsupported.onnx"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, ErrorCode::kUnsupported);
  EXPECT_THAT(model.error().message, HasSubstr("unsupported operators: Cos, LSTM"));
}

TEST(ModelLoadTest, shouldRefuseModelThatFailsTheCheckerWithTheCheckersMessage) {
  auto model = Model::load(model_path("bad_checker.onnx"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, ErrorCode::kBadModel);
  EXPECT_THAT(model.error().message, HasSubstr("ONNX checker"));
  EXPECT_THAT(model.error().message, HasSubstr("topologically sorted"));
}

TEST(ModelLoadTest, shouldDescribeInputsOutputsAndWeightsOfTheMlp) {
  auto model = Model::load(model_path("mlp.onnx"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const Model& m = **model;
  ASSERT_EQ(m.inputs().size(), 1u);
  EXPECT_EQ(m.inputs()[0].name, "x");
  EXPECT_EQ(m.inputs()[0].dtype, DType::kFloat32);
  EXPECT_EQ(m.inputs()[0].dims, (std::vector<int64_t>{-1, 256}));
  ASSERT_EQ(m.outputs().size(), 1u);
  EXPECT_EQ(m.outputs()[0].name, "y");
  EXPECT_EQ(m.outputs()[0].dims, (std::vector<int64_t>{-1, 16}));
  const std::size_t floats = 256 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 16 + 16;
  EXPECT_EQ(m.weight_bytes(), floats * sizeof(float));
  EXPECT_EQ(m.path(), model_path("mlp.onnx"));
}

TEST(ModelLoadTest, shouldReadConstantNodesAsWeights) {
  auto model = Model::load(model_path("op_constant.onnx"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  // c_vec (4 floats), c_half (1) and the Reshape's int64 shape (2 values).
  EXPECT_EQ((*model)->weight_bytes(), 5 * sizeof(float) + 2 * sizeof(int64_t));
}

TEST(DTypeTest, shouldNameDTypesWithTheirSizes) {
  EXPECT_EQ(dtype_bytes(DType::kFloat32), 4u);
  EXPECT_EQ(dtype_bytes(DType::kInt64), 8u);
  EXPECT_STREQ(dtype_name(DType::kFloat32), "float32");
  EXPECT_EQ(Shape::of(std::vector<int64_t>{8, 256}).to_string(), "[8, 256]");
  EXPECT_EQ(Shape{}.elements(), 1);
}

// Model files fuzz_model found crashing or exhausting the loader (tests/fuzz/regressions/model):
// each is refused with a message, in this build too, not only under the fuzzer's sanitizers.
struct FuzzRegression {
  const char* file;
  ErrorCode code;
  const char* message_part;
};

class FuzzRegressionModels : public ::testing::TestWithParam<FuzzRegression> {};

TEST_P(FuzzRegressionModels, shouldBeRefusedWithAMessageNamingTheProblem) {
  const FuzzRegression& r = GetParam();
  auto model = Model::load(std::string(COPROC_FUZZ_REGRESSIONS_DIR) + "/model/" + r.file);
  Error error;
  if (model.ok()) {
    // Some are refused only when a plan is made for their declared shapes.
    CpuSession session(*model);
    std::vector<Shape> shapes;
    for (const TensorSpec& in : (*model)->inputs()) {
      std::vector<int64_t> dims;
      for (const int64_t d : in.dims) dims.push_back(d < 0 ? 1 : d);
      shapes.push_back(Shape::of(dims));
    }
    auto plan = session.prepare(shapes);
    ASSERT_FALSE(plan.ok()) << r.file << " was accepted";
    error = plan.error();
  } else {
    error = model.error();
  }
  EXPECT_EQ(error.code, r.code) << error.message;
  EXPECT_THAT(error.message, HasSubstr(r.message_part));
}

INSTANTIATE_TEST_SUITE_P(
    Fuzz, FuzzRegressionModels,
    ::testing::Values(FuzzRegression{"gemm6_rank1_input", ErrorCode::kBadModel,
                                     "Gemm input 0 must be 2-D"},
                      FuzzRegression{"layer_norm_axis_below_minus_rank", ErrorCode::kBadModel,
                                     "axis -5 is out of range for rank 4"},
                      FuzzRegression{"raw_data_size_mismatch", ErrorCode::kBadModel,
                                     "holds 5 bytes of raw_data, its dims need 16"},
                      FuzzRegression{"reshape_opset1_shape_attribute", ErrorCode::kUnsupported,
                                     "Reshape-1 (the shape as an attribute"},
                      FuzzRegression{"shape_operand_with_huge_dim", ErrorCode::kBadModel,
                                     "the shape operand has 1099511627776 elements"},
                      FuzzRegression{"typed_data_shorter_than_dims", ErrorCode::kBadModel,
                                     "holds 3 values, its dims need 2147483647"}),
    [](const auto& test) { return std::string(test.param.file); });

}  // namespace
}  // namespace coproc::runtime
