#include "runtime/onnx_loader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "runtime/onnx_tensor.h"

namespace coproc::runtime::detail {
namespace {

// Softmax changed meaning in opset 13: before, it flattened the input to 2-D at `axis`.
constexpr int64_t kSoftmaxAlongAxisOpset = 13;

const std::unordered_map<std::string_view, OpKind>& operator_table() {
  static const std::unordered_map<std::string_view, OpKind> table = {
      {"Gemm", OpKind::kGemm},       {"MatMul", OpKind::kMatMul},     {"Add", OpKind::kAdd},
      {"Sub", OpKind::kSub},         {"Mul", OpKind::kMul},           {"Div", OpKind::kDiv},
      {"Relu", OpKind::kRelu},       {"Sigmoid", OpKind::kSigmoid},   {"Tanh", OpKind::kTanh},
      {"Softmax", OpKind::kSoftmax}, {"Identity", OpKind::kIdentity}, {"Flatten", OpKind::kFlatten},
      {"Reshape", OpKind::kReshape},
  };
  return table;
}

bool is_onnx_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

std::string node_label(const onnx::NodeProto& node, int index) {
  return fmt::format("node '{}' ({})",
                     node.name().empty() ? fmt::format("#{}", index) : node.name(), node.op_type());
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, std::string_view name) {
  for (const onnx::AttributeProto& attr : node.attribute()) {
    if (attr.name() == name) return &attr;
  }
  return nullptr;
}

float float_attribute(const onnx::NodeProto& node, std::string_view name, float fallback) {
  const onnx::AttributeProto* attr = find_attribute(node, name);
  return attr != nullptr ? attr->f() : fallback;
}

int64_t int_attribute(const onnx::NodeProto& node, std::string_view name, int64_t fallback) {
  const onnx::AttributeProto* attr = find_attribute(node, name);
  return attr != nullptr ? attr->i() : fallback;
}

class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  Result<LoadedModel> run() {
    if (Status s = parse(); !s) return s.error();
    if (Status s = check(); !s) return s.error();
    if (Status s = refuse_unsupported_operators(); !s) return s.error();
    if (Status s = infer_shapes(); !s) return s.error();
    graph_ = std::make_unique<Graph>();
    if (Status s = add_initializers(); !s) return s.error();
    if (Status s = add_inputs(); !s) return s.error();
    if (Status s = add_nodes(); !s) return s.error();
    if (Status s = add_outputs(); !s) return s.error();
    return LoadedModel{std::move(graph_), std::move(input_specs_), std::move(output_specs_)};
  }

 private:
  Error fail(ErrorCode code, const std::string& problem) const {
    return make_error(code, fmt::format("model '{}': {}", path_, problem));
  }

  Status parse() {
    std::ifstream file(path_, std::ios::binary);
    if (!file)
      return fail(ErrorCode::kNotFound, fmt::format("cannot open: {}", std::strerror(errno)));
    const std::string bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    if (file.bad()) return fail(ErrorCode::kNotFound, "read error");
    if (bytes.empty()) return fail(ErrorCode::kBadModel, "the file is empty");
    if (!model_.ParseFromString(bytes)) {
      return fail(ErrorCode::kBadModel,
                  fmt::format("not an ONNX model: {} bytes do not parse as an onnx.ModelProto "
                              "(truncated or not protobuf)",
                              bytes.size()));
    }
    return {};
  }

  Status check() {
    try {
      onnx::checker::check_model(model_);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kBadModel, fmt::format("fails the ONNX checker: {}", e.what()));
    }
    for (const onnx::OperatorSetIdProto& opset : model_.opset_import()) {
      if (is_onnx_domain(opset.domain())) opset_ = opset.version();
    }
    return {};
  }

  // Before shape inference, so that a model with operators we do not run is refused as
  // unsupported rather than for whatever inference makes of them.
  Status refuse_unsupported_operators() const {
    std::vector<std::string> unsupported;
    std::unordered_set<std::string> seen;
    for (const onnx::NodeProto& node : model_.graph().node()) {
      const bool ours =
          is_onnx_domain(node.domain()) &&
          (node.op_type() == "Constant" || operator_table().count(node.op_type()) != 0);
      if (ours) continue;
      std::string name = is_onnx_domain(node.domain())
                             ? node.op_type()
                             : fmt::format("{}.{}", node.domain(), node.op_type());
      if (seen.insert(name).second) unsupported.push_back(std::move(name));
    }
    if (unsupported.empty()) return {};
    return fail(ErrorCode::kUnsupported,
                fmt::format("unsupported operators: {}", fmt::join(unsupported, ", ")));
  }

  Status infer_shapes() {
    // Strict: node-level inference errors (incompatible shapes, bad attributes) refuse the model.
    const onnx::ShapeInferenceOptions options(/*check_type_val=*/true, /*strict_mode_val=*/1,
                                              /*data_prop_val=*/false);
    try {
      onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(), options);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kBadModel, fmt::format("fails ONNX shape inference: {}", e.what()));
    }
    const onnx::GraphProto& g = model_.graph();
    for (const auto* infos : {&g.input(), &g.value_info(), &g.output()}) {
      for (const onnx::ValueInfoProto& info : *infos) {
        if (info.type().tensor_type().has_shape()) {
          static_ranks_[info.name()] = info.type().tensor_type().shape().dim_size();
        }
      }
    }
    return {};
  }

  int32_t add_value(const std::string& name, Value::Kind kind, int32_t index) {
    const auto id = static_cast<int32_t>(graph_->values.size());
    graph_->values.push_back(Value{name, kind, index});
    value_ids_[name] = id;
    return id;
  }

  // A float constant becomes a weight value; an int64 one is kept aside for Reshape.
  void add_constant(const std::string& name, Constant c) {
    if (c.dtype == DType::kInt64) {
      int_constants_[name] = std::move(c.ints);
      return;
    }
    graph_->weight_bytes += c.floats.size() * sizeof(float);
    const auto index = static_cast<int32_t>(graph_->weights.size());
    graph_->weights.push_back(Weight{c.shape, std::move(c.floats)});
    add_value(name, Value::Kind::kWeight, index);
  }

  Status add_initializers() {
    for (const onnx::TensorProto& tensor : model_.graph().initializer()) {
      auto c = read_tensor(tensor, fmt::format("initializer '{}'", tensor.name()));
      if (!c) return fail(c.error().code, c.error().message);
      add_constant(tensor.name(), std::move(c).value());
    }
    return {};
  }

  Result<TensorSpec> spec_of(const onnx::ValueInfoProto& info, const char* role,
                             std::vector<std::string>* symbols) const {
    const onnx::TypeProto& type = info.type();
    if (!type.has_tensor_type()) {
      return fail(ErrorCode::kUnsupported,
                  fmt::format("{} '{}' is not a tensor", role, info.name()));
    }
    TensorSpec spec{info.name(), dtype_from_onnx(type.tensor_type().elem_type()), {}};
    if (spec.dtype != DType::kFloat32) {
      return fail(
          ErrorCode::kUnsupported,
          fmt::format("{} '{}' has element type {}; only float32 is supported", role, info.name(),
                      onnx::TensorProto_DataType_Name(type.tensor_type().elem_type())));
    }
    if (!type.tensor_type().has_shape()) {
      return fail(ErrorCode::kUnsupported, fmt::format("{} '{}' has no shape", role, info.name()));
    }
    const onnx::TensorShapeProto& shape = type.tensor_type().shape();
    if (shape.dim_size() > kMaxRank) {
      return fail(ErrorCode::kUnsupported, fmt::format("{} '{}' has rank {}, more than {}", role,
                                                       info.name(), shape.dim_size(), kMaxRank));
    }
    for (const onnx::TensorShapeProto_Dimension& dim : shape.dim()) {
      spec.dims.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
      if (symbols != nullptr) symbols->push_back(dim.has_dim_param() ? dim.dim_param() : "");
    }
    return spec;
  }

  Status add_inputs() {
    for (const onnx::ValueInfoProto& info : model_.graph().input()) {
      if (value_ids_.count(info.name()) != 0 || int_constants_.count(info.name()) != 0) {
        continue;  // an initializer listed as an input (IR < 4 style): a weight
      }
      GraphInput input;
      auto spec = spec_of(info, "input", &input.symbols);
      if (!spec) return spec.error();
      input.dims = spec->dims;
      input.value =
          add_value(info.name(), Value::Kind::kInput, static_cast<int32_t>(graph_->inputs.size()));
      graph_->inputs.push_back(std::move(input));
      input_specs_.push_back(std::move(spec).value());
    }
    return {};
  }

  // The value id of a float tensor a node reads; -1 for an omitted optional input.
  Result<int32_t> input_value(const onnx::NodeProto& node, int index, const std::string& label) {
    const std::string& name = node.input(index);
    if (name.empty()) return -1;
    if (int_constants_.count(name) != 0) {
      return fail(ErrorCode::kUnsupported,
                  fmt::format("{}: input '{}' is an int64 tensor; only float32 is computed on",
                              label, name));
    }
    const auto it = value_ids_.find(name);
    if (it == value_ids_.end()) {
      return fail(ErrorCode::kBadModel,
                  fmt::format("{}: input '{}' is never produced", label, name));
    }
    return it->second;
  }

  Status add_node(const onnx::NodeProto& proto, int index) {
    const std::string label = node_label(proto, index);
    if (proto.op_type() == "Constant") {
      auto c = read_constant_node(proto, label);
      if (!c) return fail(c.error().code, c.error().message);
      add_constant(proto.output(0), std::move(c).value());
      return {};
    }
    Node node;
    node.op = operator_table().at(proto.op_type());
    node.name = proto.name().empty() ? fmt::format("#{}", index) : proto.name();
    if (proto.output_size() != 1) {
      return fail(ErrorCode::kUnsupported,
                  fmt::format("{}: {} outputs, only one is supported", label, proto.output_size()));
    }
    // Reshape reads its second input, the target shape, at load time.
    const int float_inputs = node.op == OpKind::kReshape ? 1 : proto.input_size();
    for (int i = 0; i < float_inputs; ++i) {
      auto id = input_value(proto, i, label);
      if (!id) return id.error();
      node.inputs.push_back(id.value());
    }
    switch (node.op) {
      case OpKind::kGemm:
        node.alpha = float_attribute(proto, "alpha", 1.0f);
        node.beta = float_attribute(proto, "beta", 1.0f);
        node.trans_a = int_attribute(proto, "transA", 0) != 0;
        node.trans_b = int_attribute(proto, "transB", 0) != 0;
        break;
      case OpKind::kMatMul:
        if (Status s = check_matmul_ranks(proto, label); !s) return s;
        break;
      case OpKind::kSoftmax:
        node.softmax_as_2d = opset_ < kSoftmaxAlongAxisOpset;
        node.axis = int_attribute(proto, "axis", node.softmax_as_2d ? 1 : -1);
        break;
      case OpKind::kFlatten:
        node.axis = int_attribute(proto, "axis", 1);
        break;
      case OpKind::kReshape: {
        const auto it = int_constants_.find(proto.input(1));
        if (it == int_constants_.end()) {
          return fail(ErrorCode::kUnsupported,
                      fmt::format("{}: the shape '{}' must be a constant int64 tensor (an "
                                  "initializer or a Constant node)",
                                  label, proto.input(1)));
        }
        node.shape = it->second;
        node.allowzero = int_attribute(proto, "allowzero", 0) != 0;
        break;
      }
      default:
        break;
    }
    const auto node_index = static_cast<int32_t>(graph_->nodes.size());
    node.output = add_value(proto.output(0), Value::Kind::kComputed, node_index);
    graph_->nodes.push_back(std::move(node));
    return {};
  }

  // MatMul runs as one GEMM: an N-D left operand times a 2-D right one. Refused here when
  // shape inference knows the ranks; otherwise the planner refuses it per shapes.
  Status check_matmul_ranks(const onnx::NodeProto& proto, const std::string& label) const {
    const auto lhs = static_ranks_.find(proto.input(0));
    const auto rhs = static_ranks_.find(proto.input(1));
    if (lhs == static_ranks_.end() || rhs == static_ranks_.end()) return {};
    if (lhs->second >= 2 && rhs->second == 2) return {};
    return fail(ErrorCode::kUnsupported,
                fmt::format("{}: only N-D x 2-D (N >= 2) is supported, not {}-D x {}-D", label,
                            lhs->second, rhs->second));
  }

  Status add_nodes() {
    const auto& nodes = model_.graph().node();
    for (int i = 0; i < nodes.size(); ++i) {
      if (Status s = add_node(nodes.Get(i), i); !s) return s;
    }
    return {};
  }

  Status add_outputs() {
    for (const onnx::ValueInfoProto& info : model_.graph().output()) {
      const auto it = value_ids_.find(info.name());
      if (it == value_ids_.end()) {
        return fail(ErrorCode::kUnsupported,
                    fmt::format("output '{}' is not a float32 tensor we compute", info.name()));
      }
      auto spec = spec_of(info, "output", nullptr);
      if (!spec) return spec.error();
      graph_->outputs.push_back(it->second);
      output_specs_.push_back(std::move(spec).value());
    }
    return {};
  }

  std::string path_;
  onnx::ModelProto model_;
  int64_t opset_ = 0;
  std::unordered_map<std::string, int> static_ranks_;
  std::unique_ptr<Graph> graph_;
  std::unordered_map<std::string, int32_t> value_ids_;
  std::unordered_map<std::string, std::vector<int64_t>> int_constants_;
  std::vector<TensorSpec> input_specs_;
  std::vector<TensorSpec> output_specs_;
};

}  // namespace

Result<LoadedModel> load_onnx(const std::string& path) { return Loader(path).run(); }

}  // namespace coproc::runtime::detail
