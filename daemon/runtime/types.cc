// DType, Shape and operator names.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/result.h"
#include "runtime/graph.h"
#include "runtime/model.h"

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
    if (s.dims[static_cast<std::size_t>(d)] < 0) s.dims[static_cast<std::size_t>(d)] = dynamic_value;
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

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::kGemm:
      return "Gemm";
    case OpKind::kMatMul:
      return "MatMul";
    case OpKind::kAdd:
      return "Add";
    case OpKind::kSub:
      return "Sub";
    case OpKind::kMul:
      return "Mul";
    case OpKind::kDiv:
      return "Div";
    case OpKind::kRelu:
      return "Relu";
    case OpKind::kSigmoid:
      return "Sigmoid";
    case OpKind::kTanh:
      return "Tanh";
    case OpKind::kSoftmax:
      return "Softmax";
    case OpKind::kIdentity:
      return "Identity";
    case OpKind::kFlatten:
      return "Flatten";
    case OpKind::kReshape:
      return "Reshape";
  }
  return "?";
}

}  // namespace detail
}  // namespace coproc::runtime
