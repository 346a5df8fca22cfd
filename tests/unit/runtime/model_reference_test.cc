// Every good test model against ONNX Runtime's outputs for the same inputs
// (tools/make_test_models.py), with GEMM weights packed at load and without (OpenBLAS). Pass:
// relative_error() <= kTolerance for every output.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "reference_data.h"

namespace coproc::runtime {
namespace {

using testing::load_cases;
using testing::model_path;
using testing::relative_error;

constexpr double kTolerance = 1e-5;

class ReferenceTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(ReferenceTest, shouldMatchOnnxRuntimeForEveryReferenceCase) {
  const auto& [stem, pack_weights] = GetParam();
  const auto cases = load_cases(stem);
  ASSERT_FALSE(cases.empty()) << "no reference cases for " << stem;
  auto model = Model::load(model_path(stem + ".onnx"), LoadOptions{.pack_weights = pack_weights});
  ASSERT_TRUE(model.ok()) << model.error().message;
  CpuSession session(*model);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.id);
    std::vector<Shape> shapes;
    std::vector<const void*> inputs;
    for (const auto& in : c.inputs) {
      shapes.push_back(Shape::of(in.dims));
      inputs.push_back(in.data.data());
    }
    auto plan = session.prepare(shapes);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    ASSERT_EQ((*plan)->num_outputs(), c.outputs.size());
    std::vector<std::vector<float>> results;
    std::vector<void*> outputs;
    for (std::size_t j = 0; j < c.outputs.size(); ++j) {
      EXPECT_EQ((*plan)->output_shape(j), Shape::of(c.outputs[j].dims)) << c.outputs[j].name;
      // NaN-filled: an output the plan forgets to write fails the comparison.
      results.emplace_back(c.outputs[j].data.size(), std::numeric_limits<float>::quiet_NaN());
    }
    for (auto& r : results) outputs.push_back(r.data());
    const Status ran = session.run(**plan, inputs, outputs);
    ASSERT_TRUE(ran.ok()) << ran.error().message;
    for (std::size_t j = 0; j < c.outputs.size(); ++j) {
      EXPECT_LE(relative_error(results[j], c.outputs[j].data), kTolerance) << c.outputs[j].name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, ReferenceTest,
    ::testing::Combine(::testing::Values("noop", "mlp", "op_binary", "op_unary", "op_softmax11",
                                         "op_softmax13", "op_flatten", "op_reshape",
                                         "op_reshape_allowzero", "op_gemm", "op_matmul",
                                         "op_constant"),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<ReferenceTest::ParamType>& model) {
      return std::get<0>(model.param) + (std::get<1>(model.param) ? "_packed" : "_openblas");
    });

}  // namespace
}  // namespace coproc::runtime
