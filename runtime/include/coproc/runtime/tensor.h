// Tensors as the runtime's users see them: element types, concrete shapes, and the inputs and
// outputs a model declares. Shared by model.h (what a model takes and gives) and device.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace coproc::runtime {

// Same numbers as the wire schema's DType. The runtime computes on kFloat32, kInt64, kInt32 and
// kBool (one byte, nonzero is true); the others are refused at load.
enum class DType : uint8_t {
  kInvalid = 0,
  kFloat32 = 1,
  kFloat16 = 2,
  kInt64 = 3,
  kInt32 = 4,
  kInt8 = 5,
  kUInt8 = 6,
  kBool = 7,
};
std::size_t dtype_bytes(DType dtype);  // 0 for kInvalid
const char* dtype_name(DType dtype);   // "float32", ...

inline constexpr int kMaxRank = 8;
// The most elements any tensor may have (8 GiB of float32). Shapes beyond it are refused: every
// size then fits BLAS's int arguments, and no size computation comes near int64 overflow.
inline constexpr int64_t kMaxTensorElements = (int64_t{1} << 31) - 1;

// The element count of dims, or -1 when a dim is negative or the count exceeds
// kMaxTensorElements.
int64_t bounded_elements(std::span<const int64_t> dims);

// A concrete shape: rank dims, the rest zero. A rank-0 shape is a scalar of one element.
// elements() and view() require 0 <= rank <= kMaxRank (prepare() checks shapes it is given).
struct Shape {
  int32_t rank = 0;
  std::array<int64_t, kMaxRank> dims{};

  static Shape of(std::span<const int64_t> dims);  // dims.size() <= kMaxRank
  std::span<const int64_t> view() const { return {dims.data(), static_cast<std::size_t>(rank)}; }
  int64_t elements() const;
  bool operator==(const Shape& other) const;
  std::string to_string() const;  // "[8, 256]"
};

// A graph input or output as the model declares it.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kInvalid;
  std::vector<int64_t> dims;  // -1 marks a dynamic dim (a dim_param or an unknown dim)
};

// The spec's shape with every dynamic dim set to `dynamic_value` (probe runs,
// benchmarks). dims.size() <= kMaxRank.
Shape concrete_shape(const TensorSpec& spec, int64_t dynamic_value);

}  // namespace coproc::runtime
