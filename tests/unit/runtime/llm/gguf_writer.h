// A GGUF v3 file with metadata only, written in memory for tests of the tokenizer's loader.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "llm/gguf.h"

namespace coproc::llm::testing {

// Metadata of a GGUF v3 file with no tensors.
class GgufWriter {
 public:
  void string(const std::string& key, const std::string& value) {
    header(key, GgufValueType::kString);
    str(value);
    ++count_;
  }
  void u32(const std::string& key, uint32_t value) {
    header(key, GgufValueType::kUint32);
    raw(value);
    ++count_;
  }
  void boolean(const std::string& key, bool value) {
    header(key, GgufValueType::kBool);
    raw(static_cast<uint8_t>(value));
    ++count_;
  }
  void strings(const std::string& key, const std::vector<std::string>& values) {
    header(key, GgufValueType::kArray);
    raw(static_cast<uint32_t>(GgufValueType::kString));
    raw(static_cast<uint64_t>(values.size()));
    for (const auto& v : values) str(v);
    ++count_;
  }
  void int32s(const std::string& key, const std::vector<int32_t>& values) {
    header(key, GgufValueType::kArray);
    raw(static_cast<uint32_t>(GgufValueType::kInt32));
    raw(static_cast<uint64_t>(values.size()));
    for (int32_t v : values) raw(v);
    ++count_;
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    auto put = [&out](const void* p, size_t n) { append(out, p, n); };
    const uint32_t magic = 0x46554747, version = 3;
    const uint64_t tensors = 0;
    put(&magic, 4);
    put(&version, 4);
    put(&tensors, 8);
    put(&count_, 8);
    out.insert(out.end(), kvs_.begin(), kvs_.end());
    out.resize((out.size() + 31) / 32 * 32);
    return out;
  }

 private:
  // resize + memcpy rather than insert: GCC 12 warns (falsely) about insert of a few bytes.
  static void append(std::vector<uint8_t>& out, const void* p, size_t n) {
    const size_t at = out.size();
    out.resize(at + n);
    if (n > 0) std::memcpy(out.data() + at, p, n);
  }
  template <class T>
  void raw(T v) {
    append(kvs_, &v, sizeof v);
  }
  void str(const std::string& s) {
    raw(static_cast<uint64_t>(s.size()));
    append(kvs_, s.data(), s.size());
  }
  void header(const std::string& key, GgufValueType type) {
    str(key);
    raw(static_cast<uint32_t>(type));
  }
  std::vector<uint8_t> kvs_;
  uint64_t count_ = 0;
};

}  // namespace coproc::llm::testing
