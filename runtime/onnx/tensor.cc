#include "onnx/tensor.h"

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

// Checks that `tensor` stores exactly `elements` values of type T, as raw_data or in the typed
// field (whose element type may be wider: int32 and bool live in int32_data). Runs before
// anything is allocated, so a tiny file cannot claim a huge tensor.
template <class T, class Repeated>
Status check_count(const onnx::TensorProto& tensor, const Repeated& typed, int64_t elements,
                   const std::string& what) {
  const std::size_t bytes = static_cast<std::size_t>(elements) * sizeof(T);
  if (tensor.has_raw_data()) {
    if (tensor.raw_data().size() != bytes) {
      return bad(what, fmt::format("raw_data holds {} bytes, its shape needs {}",
                                   tensor.raw_data().size(), bytes));
    }
  } else if (static_cast<int64_t>(typed.size()) != elements) {
    return bad(what, fmt::format("holds {} values, its shape needs {}", typed.size(), elements));
  }
  return {};
}

// Checks, then copies the values into a new tensor of `shape`.
template <class T, class Repeated>
Result<HostTensor> read_values(const onnx::TensorProto& tensor, const Repeated& typed, DType dtype,
                               const Shape& shape, int64_t elements, const std::string& what) {
  if (Status s = check_count<T>(tensor, typed, elements, what); !s) return s.error();
  HostTensor t = HostTensor::make(dtype, shape);
  if (tensor.has_raw_data()) {
    if (!tensor.raw_data().empty()) {
      std::memcpy(t.bytes.data(), tensor.raw_data().data(), tensor.raw_data().size());
    }
  } else {
    T* values = t.as<T>();
    for (int i = 0; i < typed.size(); ++i) values[i] = static_cast<T>(typed.Get(i));
  }
  return t;
}

template <class T>
HostTensor vector_tensor(DType dtype, const std::vector<T>& values, bool scalar) {
  Shape shape;
  if (!scalar) shape = Shape::of(std::array<int64_t, 1>{static_cast<int64_t>(values.size())});
  HostTensor t = HostTensor::make(dtype, shape);
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), values.size() * sizeof(T));
  return t;
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

bool computable(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kInt64 || dtype == DType::kInt32 ||
         dtype == DType::kBool;
}

Result<HostTensor> read_tensor(const onnx::TensorProto& tensor, const std::string& what) {
  if (tensor.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    return unsupported(what, "tensors stored as external data are not supported");
  }
  if (tensor.dims_size() > kMaxRank) {
    return unsupported(
        what, fmt::format("rank {} exceeds the maximum of {}", tensor.dims_size(), kMaxRank));
  }
  Shape shape;
  shape.rank = tensor.dims_size();
  for (int d = 0; d < tensor.dims_size(); ++d) {
    shape.dims[static_cast<std::size_t>(d)] = tensor.dims(d);
  }
  const int64_t elements = bounded_elements(shape.view());
  if (elements < 0) {
    return bad(what, fmt::format("shape {} has a negative dim or more than {} elements",
                                 shape.to_string(), kMaxTensorElements));
  }
  const DType dtype = dtype_from_onnx(tensor.data_type());
  if (!computable(dtype)) {
    return unsupported(what, fmt::format("data type {} is not supported (float32, int64, int32 "
                                         "and bool are)",
                                         onnx::TensorProto_DataType_Name(tensor.data_type())));
  }
  switch (dtype) {
    case DType::kFloat32:
      return read_values<float>(tensor, tensor.float_data(), dtype, shape, elements, what);
    case DType::kInt64:
      return read_values<int64_t>(tensor, tensor.int64_data(), dtype, shape, elements, what);
    case DType::kInt32:
      return read_values<int32_t>(tensor, tensor.int32_data(), dtype, shape, elements, what);
    default: {  // kBool: one byte per value, 0 or 1 in int32_data
      auto t = read_values<uint8_t>(tensor, tensor.int32_data(), dtype, shape, elements, what);
      if (t) {
        for (std::byte& b : t->bytes) b = b != std::byte{0} ? std::byte{1} : std::byte{0};
      }
      return t;
    }
  }
}

Result<HostTensor> read_constant_node(const onnx::NodeProto& node, const std::string& what) {
  // The checker guarantees exactly one value attribute.
  for (const onnx::AttributeProto& attr : node.attribute()) {
    const std::string& name = attr.name();
    if (name == "value") return read_tensor(attr.t(), what);
    if (name == "value_float")
      return vector_tensor(DType::kFloat32, std::vector<float>{attr.f()}, true);
    if (name == "value_int")
      return vector_tensor(DType::kInt64, std::vector<int64_t>{attr.i()}, true);
    if (name == "value_floats") {
      return vector_tensor(DType::kFloat32,
                           std::vector<float>(attr.floats().begin(), attr.floats().end()), false);
    }
    if (name == "value_ints") {
      return vector_tensor(DType::kInt64,
                           std::vector<int64_t>(attr.ints().begin(), attr.ints().end()), false);
    }
    return unsupported(what, fmt::format("Constant attribute '{}' is not supported", name));
  }
  return bad(what, "Constant node without a value attribute");
}

}  // namespace coproc::runtime::detail
