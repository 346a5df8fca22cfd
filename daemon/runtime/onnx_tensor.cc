#include "runtime/onnx_tensor.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>

namespace coproc::runtime::detail {
namespace {

// raw_data is little-endian by the ONNX spec; we copy it as is.
static_assert(std::endian::native == std::endian::little, "raw_data is read without byte swaps");

Error unsupported(const std::string& what, const std::string& problem) {
  return make_error(ErrorCode::kUnsupported, fmt::format("{}: {}", what, problem));
}

Error bad(const std::string& what, const std::string& problem) {
  return make_error(ErrorCode::kBadModel, fmt::format("{}: {}", what, problem));
}

template <class T, class Repeated>
Result<std::vector<T>> read_values(const onnx::TensorProto& tensor, const Repeated& typed,
                                   int64_t elements, const std::string& what) {
  std::vector<T> values(static_cast<std::size_t>(elements));
  if (tensor.has_raw_data()) {
    const std::string& raw = tensor.raw_data();
    if (raw.size() != values.size() * sizeof(T)) {
      return bad(what, fmt::format("raw_data holds {} bytes, its shape needs {}", raw.size(),
                                   values.size() * sizeof(T)));
    }
    if (!raw.empty()) std::memcpy(values.data(), raw.data(), raw.size());
    return values;
  }
  if (static_cast<int64_t>(typed.size()) != elements) {
    return bad(what, fmt::format("holds {} values, its shape needs {}", typed.size(), elements));
  }
  for (int i = 0; i < typed.size(); ++i) values[static_cast<std::size_t>(i)] = typed.Get(i);
  return values;
}

Constant scalar_float(float v) {
  Constant c;
  c.dtype = DType::kFloat32;
  c.floats = {v};
  return c;
}

}  // namespace

DType dtype_from_onnx(int32_t elem_type) {
  switch (elem_type) {
    case onnx::TensorProto_DataType_FLOAT:
      return DType::kFloat32;
    case onnx::TensorProto_DataType_FLOAT16:
      return DType::kFloat16;
    case onnx::TensorProto_DataType_INT64:
      return DType::kInt64;
    case onnx::TensorProto_DataType_INT32:
      return DType::kInt32;
    case onnx::TensorProto_DataType_INT8:
      return DType::kInt8;
    case onnx::TensorProto_DataType_UINT8:
      return DType::kUInt8;
    case onnx::TensorProto_DataType_BOOL:
      return DType::kBool;
    default:
      return DType::kInvalid;
  }
}

Result<Constant> read_tensor(const onnx::TensorProto& tensor, const std::string& what) {
  if (tensor.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    return unsupported(what, "tensors stored as external data are not supported");
  }
  if (tensor.dims_size() > kMaxRank) {
    return unsupported(
        what, fmt::format("rank {} exceeds the maximum of {}", tensor.dims_size(), kMaxRank));
  }
  Constant c;
  c.shape.rank = tensor.dims_size();
  for (int d = 0; d < tensor.dims_size(); ++d) {
    c.shape.dims[static_cast<std::size_t>(d)] = tensor.dims(d);
  }
  const int64_t elements = bounded_elements(c.shape.view());
  if (elements < 0) {
    return bad(what, fmt::format("shape {} has a negative dim or more than {} elements",
                                 c.shape.to_string(), kMaxTensorElements));
  }
  switch (tensor.data_type()) {
    case onnx::TensorProto_DataType_FLOAT: {
      auto values = read_values<float>(tensor, tensor.float_data(), elements, what);
      if (!values) return values.error();
      c.dtype = DType::kFloat32;
      c.floats = std::move(values).value();
      return c;
    }
    case onnx::TensorProto_DataType_INT64: {
      auto values = read_values<int64_t>(tensor, tensor.int64_data(), elements, what);
      if (!values) return values.error();
      c.dtype = DType::kInt64;
      c.ints = std::move(values).value();
      return c;
    }
    default:
      return unsupported(what, fmt::format("data type {} is not supported (float32 weights, "
                                           "int64 shapes only)",
                                           onnx::TensorProto_DataType_Name(tensor.data_type())));
  }
}

Result<Constant> read_constant_node(const onnx::NodeProto& node, const std::string& what) {
  // The checker guarantees exactly one value attribute.
  for (const onnx::AttributeProto& attr : node.attribute()) {
    const std::string& name = attr.name();
    if (name == "value") return read_tensor(attr.t(), what);
    if (name == "value_float") return scalar_float(attr.f());
    if (name == "value_int") {
      Constant c;
      c.dtype = DType::kInt64;
      c.ints = {attr.i()};
      return c;
    }
    if (name == "value_floats" || name == "value_ints") {
      Constant c;
      c.shape.rank = 1;
      if (name == "value_floats") {
        c.dtype = DType::kFloat32;
        c.floats.assign(attr.floats().begin(), attr.floats().end());
        c.shape.dims[0] = static_cast<int64_t>(c.floats.size());
      } else {
        c.dtype = DType::kInt64;
        c.ints.assign(attr.ints().begin(), attr.ints().end());
        c.shape.dims[0] = static_cast<int64_t>(c.ints.size());
      }
      return c;
    }
    return unsupported(what, fmt::format("Constant attribute '{}' is not supported", name));
  }
  return bad(what, "Constant node without a value attribute");
}

}  // namespace coproc::runtime::detail
