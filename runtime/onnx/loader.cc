#include "onnx/loader.h"

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

#include "onnx/guards.h"
#include "onnx/tensor.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {
namespace {

bool is_onnx_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

std::string node_label(const onnx::NodeProto& node, int index) {
  return fmt::format("node '{}' ({})",
                     node.name().empty() ? fmt::format("#{}", index) : node.name(), node.op_type());
}

Result<Attribute> read_attribute(const onnx::AttributeProto& proto, const std::string& label) {
  Attribute a;
  a.name = proto.name();
  switch (proto.type()) {
    case onnx::AttributeProto_AttributeType_INT:
      a.kind = Attribute::Kind::kInt;
      a.i = proto.i();
      break;
    case onnx::AttributeProto_AttributeType_FLOAT:
      a.kind = Attribute::Kind::kFloat;
      a.f = proto.f();
      break;
    case onnx::AttributeProto_AttributeType_INTS:
      a.kind = Attribute::Kind::kInts;
      a.ints.assign(proto.ints().begin(), proto.ints().end());
      break;
    case onnx::AttributeProto_AttributeType_FLOATS:
      a.kind = Attribute::Kind::kFloats;
      a.floats.assign(proto.floats().begin(), proto.floats().end());
      break;
    case onnx::AttributeProto_AttributeType_STRING:
      a.kind = Attribute::Kind::kString;
      a.s = proto.s();
      break;
    case onnx::AttributeProto_AttributeType_TENSOR: {
      auto t = read_tensor(proto.t(), fmt::format("{}: attribute '{}'", label, proto.name()));
      if (!t) return t.error();
      a.kind = Attribute::Kind::kTensor;
      a.t = std::move(t).value();
      break;
    }
    default:
      a.kind = Attribute::Kind::kOther;
      break;
  }
  return a;
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
      // Fused operators of ours live in no ONNX domain a model can name.
      const bool ours = is_onnx_domain(node.domain()) &&
                        (node.op_type() == "Constant" || (find_op(node.op_type()) != nullptr &&
                                                          node.op_type().rfind("coproc.", 0) != 0));
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
    // ONNX's inference reads stored tensors and some shapes without checking them
    // (onnx_guards.h): those are checked first, or guarded.
    if (std::string problem = check_stored_tensors(model_); !problem.empty()) {
      return fail(ErrorCode::kBadModel, problem);
    }
    // Strict: node-level inference errors (incompatible shapes, bad attributes) refuse the model.
    const onnx::ShapeInferenceOptions options(/*check_type_val=*/true, /*strict_mode_val=*/1,
                                              /*data_prop_val=*/false);
    try {
      onnx::shape_inference::InferShapes(model_, guarded_schemas(), options);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kBadModel, fmt::format("fails ONNX shape inference: {}", e.what()));
    }
    const onnx::GraphProto& g = model_.graph();
    for (const auto* infos : {&g.input(), &g.value_info(), &g.output()}) {
      for (const onnx::ValueInfoProto& info : *infos) {
        static_types_[info.name()] = dtype_from_onnx(info.type().tensor_type().elem_type());
      }
    }
    return {};
  }

  void bind(const std::string& name, int32_t id) { value_ids_[name] = id; }

  void add_constant(const std::string& name, HostTensor t) {
    graph_->weight_bytes += t.bytes.size();
    bind(name, graph_->add_weight(name, std::move(t)));
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
    if (!computable(spec.dtype)) {
      return fail(ErrorCode::kUnsupported,
                  fmt::format("{} '{}' has element type {}; float32, int64, int32 and bool are "
                              "supported",
                              role, info.name(),
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
      if (value_ids_.count(info.name()) != 0) {
        continue;  // an initializer listed as an input (IR < 4 style): a weight
      }
      GraphInput input;
      auto spec = spec_of(info, "input", &input.symbols);
      if (!spec) return spec.error();
      input.dims = spec->dims;
      input.value = graph_->add_value(info.name(), spec->dtype);
      graph_->values.back().kind = Value::Kind::kInput;
      graph_->values.back().index = static_cast<int32_t>(graph_->inputs.size());
      bind(info.name(), input.value);
      graph_->inputs.push_back(std::move(input));
      input_specs_.push_back(std::move(spec).value());
    }
    return {};
  }

  // The value id of a tensor a node reads; -1 for an omitted optional input.
  Result<int32_t> input_value(const std::string& name, const std::string& label) const {
    if (name.empty()) return -1;
    const auto it = value_ids_.find(name);
    if (it == value_ids_.end()) {
      return fail(ErrorCode::kBadModel,
                  fmt::format("{}: input '{}' is never produced", label, name));
    }
    return it->second;
  }

  DType inferred_dtype(const std::string& name) const {
    const auto it = static_types_.find(name);
    return it == static_types_.end() ? DType::kInvalid : it->second;
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
    node.def = find_op(proto.op_type());
    node.op = proto.op_type();
    node.name = proto.name().empty() ? fmt::format("#{}", index) : proto.name();
    node.opset = opset_;
    for (const std::string& name : proto.input()) {
      auto id = input_value(name, label);
      if (!id) return id.error();
      node.inputs.push_back(id.value());
    }
    for (const onnx::AttributeProto& attr : proto.attribute()) {
      auto a = read_attribute(attr, label);
      if (!a) return fail(a.error().code, a.error().message);
      node.attributes.push_back(std::move(a).value());
    }
    const auto node_index = static_cast<int32_t>(graph_->nodes.size());
    for (const std::string& name : proto.output()) {
      if (name.empty()) {
        node.outputs.push_back(-1);
        continue;
      }
      const int32_t id = graph_->add_value(name, inferred_dtype(name));
      graph_->values.back().index = node_index;
      bind(name, id);
      node.outputs.push_back(id);
    }
    graph_->nodes.push_back(std::move(node));
    return {};
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
        return fail(ErrorCode::kBadModel,
                    fmt::format("output '{}' is never produced", info.name()));
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
  std::unordered_map<std::string, DType> static_types_;
  std::unique_ptr<Graph> graph_;
  std::unordered_map<std::string, int32_t> value_ids_;
  std::vector<TensorSpec> input_specs_;
  std::vector<TensorSpec> output_specs_;
};

}  // namespace

Result<LoadedModel> load_onnx(const std::string& path) { return Loader(path).run(); }

}  // namespace coproc::runtime::detail
