// DType, Shape and operator names.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "coproc/base/result.h"
#include "coproc/runtime/model.h"
#include "graph/graph.h"

namespace coproc::runtime {

std::size_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat16:
      return 2;
    case DType::kInt64:
      return 8;
    case DType::kInt32:
      return 4;
    case DType::kInt8:
      return 1;
    case DType::kUInt8:
      return 1;
    case DType::kBool:
      return 1;
    case DType::kInvalid:
      return 0;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
    case DType::kInt64:
      return "int64";
    case DType::kInt32:
      return "int32";
    case DType::kInt8:
      return "int8";
    case DType::kUInt8:
      return "uint8";
    case DType::kBool:
      return "bool";
    case DType::kInvalid:
      return "invalid";
  }
  return "invalid";
}

int64_t bounded_elements(std::span<const int64_t> dims) {
  int64_t n = 1;
  for (const int64_t d : dims) {
    // Both factors are below 2^31 here, so the product cannot overflow.
    if (d < 0 || d > kMaxTensorElements) return -1;
    n *= d;
    if (n > kMaxTensorElements) return -1;
  }
  return n;
}

Shape Shape::of(std::span<const int64_t> dims) {
  COPROC_CHECK(dims.size() <= static_cast<std::size_t>(kMaxRank));
  Shape s;
  s.rank = static_cast<int32_t>(dims.size());
  for (std::size_t d = 0; d < dims.size(); ++d) s.dims[d] = dims[d];
  return s;
}

Shape concrete_shape(const TensorSpec& spec, int64_t dynamic_value) {
  Shape s = Shape::of(spec.dims);
  for (int32_t d = 0; d < s.rank; ++d) {
    if (s.dims[static_cast<std::size_t>(d)] < 0)
      s.dims[static_cast<std::size_t>(d)] = dynamic_value;
  }
  return s;
}

int64_t Shape::elements() const {
  int64_t n = 1;
  for (int32_t d = 0; d < rank; ++d) n *= dims[static_cast<std::size_t>(d)];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (rank != other.rank) return false;
  for (int32_t d = 0; d < rank; ++d) {
    if (dims[static_cast<std::size_t>(d)] != other.dims[static_cast<std::size_t>(d)]) return false;
  }
  return true;
}

std::string Shape::to_string() const { return fmt::format("[{}]", fmt::join(view(), ", ")); }

namespace detail {

HostTensor HostTensor::make(DType dtype, const Shape& shape) {
  HostTensor t;
  t.dtype = dtype;
  t.shape = shape;
  t.bytes.assign(static_cast<std::size_t>(shape.elements()) * dtype_bytes(dtype), std::byte{0});
  return t;
}

std::vector<int64_t> HostTensor::to_ints() const {
  const auto n = static_cast<std::size_t>(elements());
  std::vector<int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::kInt64:
        out[i] = as<int64_t>()[i];
        break;
      case DType::kInt32:
        out[i] = as<int32_t>()[i];
        break;
      case DType::kBool:
        out[i] = as<uint8_t>()[i] != 0 ? 1 : 0;
        break;
      default:
        COPROC_CHECK(false && "to_ints() of a non-integer tensor");
    }
  }
  return out;
}

const Attribute* Node::attribute(std::string_view attr_name) const {
  for (const Attribute& a : attributes) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

int64_t Node::int_attr(std::string_view attr_name, int64_t fallback) const {
  const Attribute* a = attribute(attr_name);
  return a != nullptr && a->kind == Attribute::Kind::kInt ? a->i : fallback;
}

float Node::float_attr(std::string_view attr_name, float fallback) const {
  const Attribute* a = attribute(attr_name);
  return a != nullptr && a->kind == Attribute::Kind::kFloat ? a->f : fallback;
}

int32_t Graph::add_value(std::string name, DType dtype) {
  const auto id = static_cast<int32_t>(values.size());
  values.push_back(Value{std::move(name), Value::Kind::kComputed, -1, dtype});
  return id;
}

int32_t Graph::add_weight(std::string name, HostTensor tensor) {
  const auto id = static_cast<int32_t>(values.size());
  values.push_back(Value{std::move(name), Value::Kind::kWeight,
                         static_cast<int32_t>(weights.size()), tensor.dtype});
  weights.push_back(std::move(tensor));
  return id;
}

}  // namespace detail
}  // namespace coproc::runtime
