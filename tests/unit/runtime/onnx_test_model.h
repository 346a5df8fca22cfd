// ONNX models written in a test with the protobuf API, loaded and run once on the runtime: for
// operator behaviour the ONNX conformance data leaves out (math_ops_test.cc, tensor_ops_test.cc,
// and fusion_test.cc's ModelWriter).
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coproc/runtime/model.h"

namespace coproc::runtime::testing {

// A dense tensor the test owns: an input to feed, a weight, or an output read back.
struct Tensor {
  DType dtype = DType::kInvalid;
  Shape shape;
  std::vector<std::byte> bytes;

  template <class T>
  std::vector<T> values() const {
    std::vector<T> v(bytes.size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
    return v;
  }
};

// A tensor of `dims` holding `values` (a failed expectation when their counts differ).
template <class T>
Tensor tensor(DType dtype, const std::vector<int64_t>& dims, const std::vector<T>& values) {
  Tensor t{dtype, Shape::of(dims), {}};
  EXPECT_EQ(static_cast<std::size_t>(t.shape.elements()), values.size());
  t.bytes.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}
Tensor f32(const std::vector<int64_t>& dims, const std::vector<float>& values);
Tensor i64(const std::vector<int64_t>& dims, const std::vector<int64_t>& values);
Tensor i32(const std::vector<int64_t>& dims, const std::vector<int32_t>& values);
Tensor boolean(const std::vector<int64_t>& dims, const std::vector<uint8_t>& values);

Shape shape(const std::vector<int64_t>& dims);

// The ONNX element type of a dtype the runtime computes on (bool for any other).
onnx::TensorProto_DataType onnx_type(DType dtype);

// Writes a one-graph ONNX model and loads it. Dims of -1 are dynamic (a dim_param of their own).
class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset);

  ModelBuilder& input(const std::string& name, DType dtype, const std::vector<int64_t>& dims);
  ModelBuilder& output(const std::string& name, DType dtype, const std::vector<int64_t>& dims);
  // An output whose shape ONNX shape inference fills in.
  ModelBuilder& output(const std::string& name, DType dtype);
  // An initializer, stored as raw_data.
  ModelBuilder& weight(const std::string& name, const Tensor& t);
  // A node named "<op>_<first output>", for set_int() and the like to add attributes to.
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs);

  // Writes the model to `path` (a failed expectation when it cannot).
  void save(const std::string& path) const;
  // Writes the model to a temporary file, loads it and removes the file.
  Result<std::shared_ptr<const Model>> load(const LoadOptions& options = {}) const;

 private:
  onnx::ModelProto model_;
};

void set_int(onnx::NodeProto& node, const std::string& name, int64_t value);
void set_float(onnx::NodeProto& node, const std::string& name, float value);
void set_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values);

// The builder's model, or nullptr after a failed expectation naming the load error.
std::shared_ptr<const Model> load(const ModelBuilder& builder);

// Plans and runs the model once on `inputs` (their values given to prepare() too, for inputs
// that set shapes or axes); returns the outputs. Output buffers start as 0xAB garbage. SessionT:
// Session, or the OpenCL device's ClSession. rows: through run_rows (a batch of independent
// rows, which the device may run as two halves).
template <class SessionT>
requires requires(SessionT& s) { s.model(); }
Result<std::vector<Tensor>> run(SessionT& session, const std::vector<Tensor>& inputs,
                                bool rows = false) {
  std::vector<Shape> shapes;
  std::vector<const void*> in;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape);
    in.push_back(t.bytes.data());
  }
  auto plan = session.prepare(shapes, in);
  if (!plan.ok()) return plan.error();
  std::vector<Tensor> outputs;
  std::vector<void*> out;
  for (std::size_t j = 0; j < (*plan)->num_outputs(); ++j) {
    outputs.push_back({session.model().outputs()[j].dtype, (*plan)->output_shape(j),
                       std::vector<std::byte>((*plan)->output_bytes(j), std::byte{0xAB})});
  }
  for (Tensor& t : outputs) out.push_back(t.bytes.data());
  if (Status s = rows ? session.run_rows(**plan, in, out) : session.run(**plan, in, out); !s) {
    return s.error();
  }
  return outputs;
}
// The same on a session of its own; a kInternal error for a null model.
Result<std::vector<Tensor>> run(const std::shared_ptr<const Model>& model,
                                const std::vector<Tensor>& inputs);

}  // namespace coproc::runtime::testing
