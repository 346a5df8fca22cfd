// GEMM weights packed at load (LoadOptions::pack_weights) against the same model on OpenBLAS, on
// a model written here for the cases the reference models leave out: a packed B with a C that
// is copied into the output first (a scalar, a full [m, n]), a fused bias row scaled by beta, one
// weight packed for two nodes, and weights that other nodes and the graph outputs still read
// after their packing.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <numeric>
#include <string>
#include <vector>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "reference_data.h"

namespace coproc::runtime {
namespace {

using testing::relative_error;

constexpr double kTolerance = 1e-5;

std::vector<float> ramp(std::size_t n, float scale, float offset) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    // A deterministic spread of signs and magnitudes.
    v[i] = scale * (static_cast<float>((i * 7 + 3) % 11) - 5.0f) + offset;
  }
  return v;
}

void declare(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
             const std::string& name, std::initializer_list<int64_t> dims) {
  onnx::ValueInfoProto* info = list->Add();
  info->set_name(name);
  onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (const int64_t d : dims) type->mutable_shape()->add_dim()->set_dim_value(d);
}

void add_weight(onnx::GraphProto* graph, const std::string& name,
                std::initializer_list<int64_t> dims) {
  onnx::TensorProto* t = graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (const int64_t d : dims) t->add_dims(d);
  const auto count = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
  for (const float x : ramp(static_cast<std::size_t>(count), 0.3f, 0.1f)) t->add_float_data(x);
}

onnx::NodeProto* add_node(onnx::GraphProto* graph, const std::string& op,
                          std::initializer_list<std::string> inputs, const std::string& output) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name(op + "_" + output);
  for (const std::string& in : inputs) node->add_input(in);
  node->add_output(output);
  return node;
}

void set_float(onnx::NodeProto* node, const std::string& name, float value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
  a->set_f(value);
}

void set_int(onnx::NodeProto* node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INT);
  a->set_i(value);
}

// x [3, 6], x3 [2, 3, 6]; weights w_kn [6, 5], w_nk [5, 6], c_row [5], c_full [3, 5], c_scalar.
std::string write_model() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(13);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("packed_weights");
  add_weight(g, "w_kn", {6, 5});
  add_weight(g, "w_nk", {5, 6});
  add_weight(g, "c_row", {5});
  add_weight(g, "c_full", {3, 5});
  add_weight(g, "c_scalar", {});
  declare(g->mutable_input(), "x", {3, 6});
  declare(g->mutable_input(), "x3", {2, 3, 6});

  set_float(add_node(g, "Gemm", {"x", "w_kn", "c_scalar"}, "y_scalar_c"), "beta", 0.7f);
  onnx::NodeProto* full = add_node(g, "Gemm", {"x", "w_nk", "c_full"}, "y_full_c");
  set_int(full, "transB", 1);
  set_float(full, "alpha", 0.5f);
  set_float(full, "beta", -1.0f);
  set_float(add_node(g, "Gemm", {"x", "w_kn", "c_row"}, "y_row_c"), "beta", 0.5f);
  add_node(g, "MatMul", {"x3", "w_kn"}, "y_matmul");     // w_kn packed for a second node
  add_node(g, "Add", {"w_nk", "w_nk"}, "y_weight_sum");  // w_nk still read unpacked
  add_node(g, "Identity", {"c_row"}, "y_bias");          // c_row still a graph output
  declare(g->mutable_output(), "y_scalar_c", {3, 5});
  declare(g->mutable_output(), "y_full_c", {3, 5});
  declare(g->mutable_output(), "y_row_c", {3, 5});
  declare(g->mutable_output(), "y_matmul", {2, 3, 5});
  declare(g->mutable_output(), "y_weight_sum", {5, 6});
  declare(g->mutable_output(), "y_bias", {5});

  const std::string path =
      ::testing::TempDir() + "packed_weights_" + std::to_string(::getpid()) + ".onnx";
  std::ofstream file(path, std::ios::binary);
  EXPECT_TRUE(model.SerializeToOstream(&file));
  return path;
}

std::vector<std::vector<float>> run(const std::string& path, bool pack_weights) {
  auto model = Model::load(path, LoadOptions{.pack_weights = pack_weights});
  EXPECT_TRUE(model.ok()) << model.error().message;
  if (!model.ok()) return {};
  CpuSession session(*model);
  const Shape shapes[] = {Shape::of(std::vector<int64_t>{3, 6}),
                          Shape::of(std::vector<int64_t>{2, 3, 6})};
  auto plan = session.prepare(shapes);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  if (!plan.ok()) return {};
  const auto x = ramp(3 * 6, 0.2f, -0.05f);
  const auto x3 = ramp(2 * 3 * 6, -0.1f, 0.2f);
  const void* inputs[] = {x.data(), x3.data()};
  std::vector<std::vector<float>> results;
  std::vector<void*> outputs;
  for (std::size_t j = 0; j < (*plan)->num_outputs(); ++j) {
    results.emplace_back((*plan)->output_bytes(j) / sizeof(float),
                         std::numeric_limits<float>::quiet_NaN());
  }
  for (auto& r : results) outputs.push_back(r.data());
  const Status ran = session.run(**plan, inputs, outputs);
  EXPECT_TRUE(ran.ok()) << ran.error().message;
  return results;
}

TEST(PackedWeightsTest, shouldMatchOpenBlasForEveryWayAGemmReadsItsWeights) {
  const std::string path = write_model();
  const auto packed = run(path, true);
  const auto blas = run(path, false);
  std::remove(path.c_str());
  ASSERT_EQ(packed.size(), 6u);
  ASSERT_EQ(blas.size(), 6u);
  for (std::size_t j = 0; j < packed.size(); ++j) {
    EXPECT_LE(relative_error(packed[j], blas[j]), kTolerance) << "output " << j;
  }
}

TEST(PackedWeightsTest, shouldReportTheDeclaredWeightBytesWhetherPackedOrNot) {
  const std::string path = write_model();
  auto packed = Model::load(path, LoadOptions{.pack_weights = true});
  auto blas = Model::load(path, LoadOptions{.pack_weights = false});
  std::remove(path.c_str());
  ASSERT_TRUE(packed.ok() && blas.ok());
  EXPECT_EQ((*packed)->weight_bytes(), (6 * 5 + 5 * 6 + 5 + 3 * 5 + 1) * sizeof(float));
  EXPECT_EQ((*packed)->weight_bytes(), (*blas)->weight_bytes());
}

}  // namespace
}  // namespace coproc::runtime
