// A small GGUF writer for the tests: builds a file in memory, well formed by default, and lets a
// test break any part of it (the magic, the version, the counts, a value's type or length, a
// tensor's dims, type or offset) to check that the reader refuses it.
//
// Layout written (GGUF v2/v3, little-endian): magic, version, tensor count, key-value count, the
// key-value pairs, the tensor infos, zero padding to the alignment, then the data section. Tensors
// added with data are placed back to back, each at the next multiple of the alignment; the file
// ends right after the last tensor's bytes, so that cutting any byte off a valid file leaves it
// truncated.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm/ggml_types.h"
#include "llm/gguf.h"

namespace coproc::llm::testing {

// Little-endian bytes, appended one value at a time.
class ByteBuilder {
 public:
  template <class T>
  ByteBuilder& put(T value) {
    // resize and memcpy rather than insert: GCC 12 at -O3 warns (-Wstringop-overflow) on a
    // vector insert of a few bytes.
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
    return *this;
  }
  // A GGUF string: uint64 length, then the bytes (no terminator).
  ByteBuilder& str(std::string_view s);
  ByteBuilder& raw(const std::vector<uint8_t>& bytes);
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class GgufWriter {
 public:
  static constexpr uint32_t kMagic = 0x46554747;  // "GGUF"

  // What the header says; change them to write a malformed file.
  uint32_t magic = kMagic;
  uint32_t version = 3;
  std::optional<uint64_t> kv_count;      // default: the pairs added
  std::optional<uint64_t> tensor_count;  // default: the tensors added
  // The alignment the writer pads to. set_alignment() also writes general.alignment.
  uint64_t alignment = 32;

  // A key with a value of any type: `payload` is the value's bytes as the file holds them after
  // the type (for an array: element type, count, elements).
  GgufWriter& add_raw(std::string_view key, uint32_t type, std::vector<uint8_t> payload);
  GgufWriter& add_u8(std::string_view key, uint8_t v);
  GgufWriter& add_i8(std::string_view key, int8_t v);
  GgufWriter& add_u16(std::string_view key, uint16_t v);
  GgufWriter& add_i16(std::string_view key, int16_t v);
  GgufWriter& add_u32(std::string_view key, uint32_t v);
  GgufWriter& add_i32(std::string_view key, int32_t v);
  GgufWriter& add_u64(std::string_view key, uint64_t v);
  GgufWriter& add_i64(std::string_view key, int64_t v);
  GgufWriter& add_f32(std::string_view key, float v);
  GgufWriter& add_f64(std::string_view key, double v);
  GgufWriter& add_bool(std::string_view key, bool v);
  GgufWriter& add_string(std::string_view key, std::string_view v);
  GgufWriter& add_string_array(std::string_view key, const std::vector<std::string>& v);
  GgufWriter& add_i32_array(std::string_view key, const std::vector<int32_t>& v);
  GgufWriter& add_f32_array(std::string_view key, const std::vector<float>& v);
  // Writes general.alignment (uint32) and pads to it.
  GgufWriter& set_alignment(uint32_t bytes);

  // A tensor whose bytes follow in the data section, at the next aligned offset. `type` is raw so
  // that unknown types can be written; `data` need not match the dims (a test may lie).
  GgufWriter& add_tensor(std::string_view name, uint32_t type, std::vector<int64_t> dims,
                         std::vector<uint8_t> data);
  GgufWriter& add_tensor(std::string_view name, GgmlType type, std::vector<int64_t> dims,
                         std::vector<uint8_t> data) {
    return add_tensor(name, static_cast<uint32_t>(type), std::move(dims), std::move(data));
  }
  // A tensor info with an explicit offset and no bytes of its own in the data section.
  GgufWriter& add_tensor_at(std::string_view name, uint32_t type, std::vector<uint64_t> dims,
                            uint64_t offset);

  std::vector<uint8_t> bytes() const;

 private:
  struct Kv {
    std::string key;
    uint32_t type;
    std::vector<uint8_t> payload;
  };
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> dims;
    std::optional<uint64_t> offset;  // nullopt: placed by the writer
    std::vector<uint8_t> data;
  };
  template <class T>
  GgufWriter& add_scalar(std::string_view key, GgufValueType type, T v);

  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

// The bytes of n elements of `type` (a supported type), filled with a pattern that depends on
// `seed`; quantized blocks get finite scales.
std::vector<uint8_t> tensor_bytes(GgmlType type, int64_t n, uint32_t seed);

}  // namespace coproc::llm::testing
