// A GGUF file (versions 2 and 3), mapped read-only: its metadata, its tensor infos and pointers to
// the tensors' bytes inside the mapping. Nothing is copied.
//
// Every byte of the file is untrusted. open() checks each count, string length, array length,
// dimension product, offset and type against the file's size before using it, and refuses a
// malformed or truncated file with a message naming the key or tensor. After a successful open()
// every TensorInfo's [data, data + bytes) lies inside the mapping and is aligned to alignment().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coproc/base/result.h"
#include "llm/ggml_types.h"

namespace coproc::llm {

// GGUF's metadata value types; the numeric values are the file format's.
enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* gguf_value_type_name(GgufValueType type);

// One metadata value. Scalars are widened into `i` (integers, bool), `u` (uint64) or `f`
// (floats); strings view the mapping. An array holds its element type and its elements as
// values (strings view the mapping; nested arrays are refused).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string_view str;
  GgufValueType array_type = GgufValueType::kUint8;
  std::vector<GgufValue> array;
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct TensorInfo {
  std::string_view name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the fastest-varying (a row's length)
  int64_t elements = 0;
  uint64_t offset = 0;        // from the start of the data section
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;  // inside the mapping
};

class GgufFile {
 public:
  // Maps `path` and parses it. Errors: kBadModel naming the key or tensor that is wrong
  // ("tensor 'blk.0.attn_q.weight': data [x, y) ends past the file's 98362432 bytes").
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Parses bytes the caller keeps alive (the fuzz target, tests).
  static Result<std::unique_ptr<GgufFile>> parse(std::span<const uint8_t> bytes);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  std::span<const GgufKv> metadata() const { return kvs_; }
  std::span<const TensorInfo> tensors() const { return tensors_; }

  const GgufValue* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed lookups for model loaders: a missing key or a value of another type is an error naming
  // the key. Integer getters accept any integer type whose value fits.
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<const GgufValue*> get_array(std::string_view key, GgufValueType element_type) const;

 private:
  GgufFile() = default;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<GgufKv> kvs_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace coproc::llm
