// The Device interface (device.h) on the CPU device: what open_device gives, placing a model and
// the sessions a placed model opens. The OpenCL device's side is cross_device_test's.
#include "coproc/runtime/device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "reference_data.h"

namespace coproc::runtime {
namespace {

using testing::load_cases;
using testing::model_path;

std::vector<float> run_mlp(Session& session, const testing::RefCase& c) {
  const Shape s = Shape::of(c.inputs[0].dims);
  auto plan = session.prepare({&s, 1});
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  if (!plan.ok()) return {};
  std::vector<float> out((*plan)->output_bytes(0) / sizeof(float));
  const void* in = c.inputs[0].data.data();
  void* o = out.data();
  EXPECT_TRUE(session.run(**plan, {&in, 1}, {&o, 1}).ok());
  return out;
}

TEST(CpuDeviceTest, shouldDescribeItselfAsTheHost) {
  auto device = open_device(DeviceKind::kCpu);
  ASSERT_TRUE(device.ok()) << device.error().message;
  const DeviceInfo& info = (*device)->info();
  EXPECT_EQ(info.kind, DeviceKind::kCpu);
  EXPECT_EQ(info.name, "cpu");
  EXPECT_GT(info.compute_units, 0u);
  EXPECT_GT(info.memory_bytes, 0u);
  EXPECT_STREQ(device_kind_name(DeviceKind::kCpu), "cpu");
  EXPECT_STREQ(device_kind_name(DeviceKind::kOpenCl), "opencl");
}

TEST(CpuDeviceTest, shouldSupportTheRuntimesOperatorsAndNoOthers) {
  auto device = open_device(DeviceKind::kCpu);
  ASSERT_TRUE(device.ok());
  for (const char* op : {"Add", "MatMul", "Gather", "coproc.Attention", "LayerNormalization"}) {
    EXPECT_TRUE((*device)->supports(op)) << op;
  }
  EXPECT_FALSE((*device)->supports("Conv"));
  EXPECT_FALSE((*device)->supports(""));
}

TEST(CpuDeviceTest, shouldRunAPlacedModelAsACpuSessionDoes) {
  auto model = Model::load(model_path("mlp.onnx"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto device = open_device(DeviceKind::kCpu);
  ASSERT_TRUE(device.ok());
  auto placed = (*device)->place(*model);
  ASSERT_TRUE(placed.ok()) << placed.error().message;
  EXPECT_EQ(&(*placed)->model(), model->get());
  EXPECT_EQ(&(*placed)->device(), device->get());
  const std::unique_ptr<Session> session = (*placed)->open_session();
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(&session->model(), model->get());
  EXPECT_EQ(session->input_staging(0), nullptr);  // the CPU reads any host memory
  CpuSession direct(*model);
  const auto cases = load_cases("mlp");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) EXPECT_EQ(run_mlp(*session, c), run_mlp(direct, c)) << c.id;
}

TEST(CpuDeviceTest, shouldKeepTheDeviceOpenWhileAPlacedModelHoldsIt) {
  auto model = Model::load(model_path("mlp.onnx"));
  ASSERT_TRUE(model.ok());
  std::shared_ptr<const PlacedModel> placed;
  {
    auto device = open_device(DeviceKind::kCpu);
    ASSERT_TRUE(device.ok());
    auto p = (*device)->place(*model);
    ASSERT_TRUE(p.ok());
    placed = *p;
  }
  EXPECT_EQ(placed->device().info().kind, DeviceKind::kCpu);
  EXPECT_NE(placed->open_session(SessionLimits{.max_plans = 1}), nullptr);
}

}  // namespace
}  // namespace coproc::runtime
