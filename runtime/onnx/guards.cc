#include "onnx/guards.h"

#include <fmt/format.h>
#include <onnx/defs/shape_inference.h>

#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include "coproc/runtime/model.h"

namespace coproc::runtime::detail {
namespace {

using Guard = void (*)(onnx::InferenceContext& ctx);

// The rank of input k when inference knows it, else -1.
int known_rank(onnx::InferenceContext& ctx, std::size_t k) {
  if (k >= ctx.getNumInputs() || !onnx::hasInputShape(ctx, k)) return -1;
  return ctx.getInputType(k)->tensor_type().shape().dim_size();
}

void guard_gemm(onnx::InferenceContext& ctx) {
  for (std::size_t k = 0; k < 2; ++k) {
    const int rank = known_rank(ctx, k);
    if (rank >= 0 && rank != 2) {
      fail_shape_inference("Gemm input ", k, " must be 2-D, not rank ", rank);
    }
  }
}

void guard_layer_norm(onnx::InferenceContext& ctx) {
  const int rank = known_rank(ctx, 0);
  if (rank < 0) return;
  const onnx::AttributeProto* attr = ctx.getAttribute("axis");
  const int64_t axis = attr != nullptr ? attr->i() : -1;
  if (axis < -rank || axis >= rank) {
    fail_shape_inference("LayerNormalization axis ", axis, " is out of range for rank ", rank);
  }
}

void guard_shape_operand(onnx::InferenceContext& ctx, std::size_t k) {
  if (known_rank(ctx, k) != 1) return;
  const auto& dim = ctx.getInputType(k)->tensor_type().shape().dim(0);
  if (dim.has_dim_value() && dim.dim_value() > kMaxRank) {
    fail_shape_inference("the shape operand has ", dim.dim_value(),
                         " elements; tensors of rank above ", kMaxRank, " are not supported");
  }
}

void guard_constant_of_shape(onnx::InferenceContext& ctx) { guard_shape_operand(ctx, 0); }
void guard_expand_or_reshape(onnx::InferenceContext& ctx) { guard_shape_operand(ctx, 1); }

Guard guard_for(std::string_view op) {
  if (op == "Gemm") return guard_gemm;
  if (op == "LayerNormalization") return guard_layer_norm;
  if (op == "ConstantOfShape") return guard_constant_of_shape;
  if (op == "Expand" || op == "Reshape") return guard_expand_or_reshape;
  return nullptr;
}

class GuardedSchemas final : public onnx::ISchemaRegistry {
 public:
  const onnx::OpSchema* GetSchema(const std::string& key, const int max_inclusive_version,
                                  const std::string& domain) const override {
    const onnx::OpSchema* schema =
        onnx::OpSchemaRegistry::Schema(key, max_inclusive_version, domain);
    const bool onnx_domain = domain.empty() || domain == "ai.onnx";
    const Guard guard = onnx_domain && schema != nullptr ? guard_for(key) : nullptr;
    if (guard == nullptr) return schema;
    const std::lock_guard lock(mu_);
    std::unique_ptr<onnx::OpSchema>& wrapped = wrapped_[schema];
    if (!wrapped) {
      wrapped = std::make_unique<onnx::OpSchema>(*schema);
      onnx::InferenceFunction original = schema->GetTypeAndShapeInferenceFunction();
      wrapped->TypeAndShapeInferenceFunction([guard, original](onnx::InferenceContext& ctx) {
        guard(ctx);
        if (original) original(ctx);
      });
    }
    return wrapped.get();
  }

 private:
  mutable std::mutex mu_;
  // One wrapped copy per ONNX schema (per operator version), made on first use.
  mutable std::map<const onnx::OpSchema*, std::unique_ptr<onnx::OpSchema>> wrapped_;
};

// Bytes per element of the fixed-size types raw_data can hold; 0 for string and unknown types.
std::size_t element_bytes(int32_t data_type) {
  switch (data_type) {
    case onnx::TensorProto_DataType_DOUBLE:
    case onnx::TensorProto_DataType_INT64:
    case onnx::TensorProto_DataType_UINT64:
    case onnx::TensorProto_DataType_COMPLEX64:
      return 8;
    case onnx::TensorProto_DataType_COMPLEX128:
      return 16;
    case onnx::TensorProto_DataType_FLOAT:
    case onnx::TensorProto_DataType_INT32:
    case onnx::TensorProto_DataType_UINT32:
      return 4;
    case onnx::TensorProto_DataType_FLOAT16:
    case onnx::TensorProto_DataType_BFLOAT16:
    case onnx::TensorProto_DataType_INT16:
    case onnx::TensorProto_DataType_UINT16:
      return 2;
    case onnx::TensorProto_DataType_INT8:
    case onnx::TensorProto_DataType_UINT8:
    case onnx::TensorProto_DataType_BOOL:
      return 1;
    default:
      return 0;
  }
}

// How many values the typed field of `t`'s data type holds.
int typed_count(const onnx::TensorProto& t) {
  switch (t.data_type()) {
    case onnx::TensorProto_DataType_FLOAT:
    case onnx::TensorProto_DataType_COMPLEX64:
      return t.float_data_size();
    case onnx::TensorProto_DataType_DOUBLE:
    case onnx::TensorProto_DataType_COMPLEX128:
      return t.double_data_size();
    case onnx::TensorProto_DataType_INT64:
      return t.int64_data_size();
    case onnx::TensorProto_DataType_UINT64:
    case onnx::TensorProto_DataType_UINT32:
      return t.uint64_data_size();
    case onnx::TensorProto_DataType_STRING:
      return t.string_data_size();
    default:  // int32, int16, int8, uint16, uint8, bool, float16, bfloat16
      return t.int32_data_size();
  }
}

std::string check_stored(const onnx::TensorProto& t, const std::string& what) {
  if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) return {};  // refused later
  uint64_t elements = 1;
  for (const int64_t d : t.dims()) {
    if (d < 0 || d > kMaxTensorElements ||
        __builtin_mul_overflow(elements, static_cast<uint64_t>(d), &elements) ||
        elements > static_cast<uint64_t>(kMaxTensorElements)) {
      return fmt::format("{} has dims that are negative or hold more than {} elements", what,
                         kMaxTensorElements);
    }
  }
  // Complex values are stored as two floats or doubles each.
  const bool complex = t.data_type() == onnx::TensorProto_DataType_COMPLEX64 ||
                       t.data_type() == onnx::TensorProto_DataType_COMPLEX128;
  if (t.has_raw_data()) {
    const std::size_t elem = element_bytes(t.data_type());
    if (elem == 0) return fmt::format("{} stores raw_data for a type that has no fixed size", what);
    if (t.raw_data().size() != elements * elem) {
      return fmt::format("{} holds {} bytes of raw_data, its dims need {}", what,
                         t.raw_data().size(), elements * elem);
    }
    return {};
  }
  const uint64_t expected = complex ? 2 * elements : elements;
  if (static_cast<uint64_t>(typed_count(t)) != expected) {
    return fmt::format("{} holds {} values, its dims need {}", what, typed_count(t), expected);
  }
  return {};
}

}  // namespace

const onnx::ISchemaRegistry* guarded_schemas() {
  static const GuardedSchemas registry;
  return &registry;
}

std::string check_stored_tensors(const onnx::ModelProto& model) {
  const onnx::GraphProto& g = model.graph();
  if (g.sparse_initializer_size() > 0) return "sparse initializers are not supported";
  for (const onnx::TensorProto& t : g.initializer()) {
    std::string problem = check_stored(t, fmt::format("initializer '{}'", t.name()));
    if (!problem.empty()) return problem;
  }
  for (const onnx::NodeProto& node : g.node()) {
    for (const onnx::AttributeProto& attr : node.attribute()) {
      const std::string what =
          fmt::format("attribute '{}' of node '{}' ({})", attr.name(), node.name(), node.op_type());
      if (attr.has_t()) {
        if (std::string problem = check_stored(attr.t(), what); !problem.empty()) return problem;
      }
      for (const onnx::TensorProto& t : attr.tensors()) {
        if (std::string problem = check_stored(t, what); !problem.empty()) return problem;
      }
    }
  }
  return {};
}

}  // namespace coproc::runtime::detail
