#include "onnx_test_model.h"

#include <onnx/shape_inference/implementation.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "device/cpu/cpu_session.h"

namespace coproc::runtime::testing {
namespace {

void declare(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
             const std::string& name, DType dtype, const std::vector<int64_t>& dims) {
  onnx::ValueInfoProto* info = list->Add();
  info->set_name(name);
  onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx_type(dtype));
  onnx::TensorShapeProto* shape = type->mutable_shape();  // a scalar still has a (rank-0) shape
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] >= 0) {
      shape->add_dim()->set_dim_value(dims[d]);
    } else {
      shape->add_dim()->set_dim_param(name + "_" + std::to_string(d));
    }
  }
}

}  // namespace

Tensor f32(const std::vector<int64_t>& dims, const std::vector<float>& values) {
  return tensor(DType::kFloat32, dims, values);
}
Tensor i64(const std::vector<int64_t>& dims, const std::vector<int64_t>& values) {
  return tensor(DType::kInt64, dims, values);
}
Tensor i32(const std::vector<int64_t>& dims, const std::vector<int32_t>& values) {
  return tensor(DType::kInt32, dims, values);
}
Tensor boolean(const std::vector<int64_t>& dims, const std::vector<uint8_t>& values) {
  return tensor(DType::kBool, dims, values);
}

Shape shape(const std::vector<int64_t>& dims) { return Shape::of(dims); }

onnx::TensorProto_DataType onnx_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return onnx::TensorProto_DataType_FLOAT;
    case DType::kInt64:
      return onnx::TensorProto_DataType_INT64;
    case DType::kInt32:
      return onnx::TensorProto_DataType_INT32;
    default:
      return onnx::TensorProto_DataType_BOOL;
  }
}

ModelBuilder::ModelBuilder(int64_t opset) {
  model_.set_ir_version(8);
  model_.add_opset_import()->set_version(opset);
  model_.mutable_graph()->set_name("test_model");
}

ModelBuilder& ModelBuilder::input(const std::string& name, DType dtype,
                                  const std::vector<int64_t>& dims) {
  declare(model_.mutable_graph()->mutable_input(), name, dtype, dims);
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name, DType dtype,
                                   const std::vector<int64_t>& dims) {
  declare(model_.mutable_graph()->mutable_output(), name, dtype, dims);
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name, DType dtype) {
  onnx::ValueInfoProto* info = model_.mutable_graph()->add_output();
  info->set_name(name);
  info->mutable_type()->mutable_tensor_type()->set_elem_type(onnx_type(dtype));
  return *this;
}

ModelBuilder& ModelBuilder::weight(const std::string& name, const Tensor& t) {
  onnx::TensorProto* w = model_.mutable_graph()->add_initializer();
  w->set_name(name);
  w->set_data_type(onnx_type(t.dtype));
  for (const int64_t d : t.shape.view()) w->add_dims(d);
  w->set_raw_data(std::string(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size()));
  return *this;
}

onnx::NodeProto& ModelBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs) {
  onnx::NodeProto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + outputs[0]);
  for (const std::string& in : inputs) n->add_input(in);
  for (const std::string& out : outputs) n->add_output(out);
  return *n;
}

void ModelBuilder::save(const std::string& path) const {
  onnx::ModelProto model = model_;
  // Outputs declared without a shape get the one ONNX infers: the checker wants one.
  const auto& outputs = model.graph().output();
  if (std::any_of(outputs.begin(), outputs.end(), [](const onnx::ValueInfoProto& o) {
        return !o.type().tensor_type().has_shape();
      })) {
    try {
      onnx::shape_inference::InferShapes(model);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "shape inference of the test model: " << e.what();
    }
  }
  std::ofstream file(path, std::ios::binary);
  EXPECT_TRUE(model.SerializeToOstream(&file)) << path;
}

Result<std::shared_ptr<const Model>> ModelBuilder::load(const LoadOptions& options) const {
  static int count = 0;
  const std::string path = ::testing::TempDir() + "onnx_test_model_" + std::to_string(::getpid()) +
                           "_" + std::to_string(count++) + ".onnx";
  save(path);
  auto model = Model::load(path, options);
  std::remove(path.c_str());
  return model;
}

void set_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INT);
  a->set_i(value);
}

void set_float(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
  a->set_f(value);
}

void set_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INTS);
  for (const int64_t v : values) a->add_ints(v);
}

std::shared_ptr<const Model> load(const ModelBuilder& builder) {
  auto model = builder.load();
  EXPECT_TRUE(model.ok()) << model.error().message;
  return model.ok() ? *model : nullptr;
}

Result<std::vector<Tensor>> run(const std::shared_ptr<const Model>& model,
                                const std::vector<Tensor>& inputs) {
  if (model == nullptr) return make_error(ErrorCode::kInternal, "no model");
  CpuSession session(model);
  return run(session, inputs);
}

}  // namespace coproc::runtime::testing
