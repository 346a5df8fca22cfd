#include "gguf_writer.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace coproc::llm::testing {

ByteBuilder& ByteBuilder::str(std::string_view s) {
  put<uint64_t>(s.size());
  bytes_.insert(bytes_.end(), s.begin(), s.end());
  return *this;
}

ByteBuilder& ByteBuilder::raw(const std::vector<uint8_t>& bytes) {
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return *this;
}

GgufWriter& GgufWriter::add_raw(std::string_view key, uint32_t type, std::vector<uint8_t> payload) {
  kvs_.push_back({std::string(key), type, std::move(payload)});
  return *this;
}

template <class T>
GgufWriter& GgufWriter::add_scalar(std::string_view key, GgufValueType type, T v) {
  return add_raw(key, static_cast<uint32_t>(type), ByteBuilder().put(v).bytes());
}

GgufWriter& GgufWriter::add_u8(std::string_view key, uint8_t v) {
  return add_scalar(key, GgufValueType::kUint8, v);
}
GgufWriter& GgufWriter::add_i8(std::string_view key, int8_t v) {
  return add_scalar(key, GgufValueType::kInt8, v);
}
GgufWriter& GgufWriter::add_u16(std::string_view key, uint16_t v) {
  return add_scalar(key, GgufValueType::kUint16, v);
}
GgufWriter& GgufWriter::add_i16(std::string_view key, int16_t v) {
  return add_scalar(key, GgufValueType::kInt16, v);
}
GgufWriter& GgufWriter::add_u32(std::string_view key, uint32_t v) {
  return add_scalar(key, GgufValueType::kUint32, v);
}
GgufWriter& GgufWriter::add_i32(std::string_view key, int32_t v) {
  return add_scalar(key, GgufValueType::kInt32, v);
}
GgufWriter& GgufWriter::add_u64(std::string_view key, uint64_t v) {
  return add_scalar(key, GgufValueType::kUint64, v);
}
GgufWriter& GgufWriter::add_i64(std::string_view key, int64_t v) {
  return add_scalar(key, GgufValueType::kInt64, v);
}
GgufWriter& GgufWriter::add_f32(std::string_view key, float v) {
  return add_scalar(key, GgufValueType::kFloat32, v);
}
GgufWriter& GgufWriter::add_f64(std::string_view key, double v) {
  return add_scalar(key, GgufValueType::kFloat64, v);
}
GgufWriter& GgufWriter::add_bool(std::string_view key, bool v) {
  return add_scalar(key, GgufValueType::kBool, static_cast<uint8_t>(v));
}

GgufWriter& GgufWriter::add_string(std::string_view key, std::string_view v) {
  return add_raw(key, static_cast<uint32_t>(GgufValueType::kString), ByteBuilder().str(v).bytes());
}

GgufWriter& GgufWriter::add_string_array(std::string_view key, const std::vector<std::string>& v) {
  ByteBuilder b;
  b.put(static_cast<uint32_t>(GgufValueType::kString)).put<uint64_t>(v.size());
  for (const std::string& s : v) b.str(s);
  return add_raw(key, static_cast<uint32_t>(GgufValueType::kArray), b.bytes());
}

GgufWriter& GgufWriter::add_i32_array(std::string_view key, const std::vector<int32_t>& v) {
  ByteBuilder b;
  b.put(static_cast<uint32_t>(GgufValueType::kInt32)).put<uint64_t>(v.size());
  for (int32_t x : v) b.put(x);
  return add_raw(key, static_cast<uint32_t>(GgufValueType::kArray), b.bytes());
}

GgufWriter& GgufWriter::add_f32_array(std::string_view key, const std::vector<float>& v) {
  ByteBuilder b;
  b.put(static_cast<uint32_t>(GgufValueType::kFloat32)).put<uint64_t>(v.size());
  for (float x : v) b.put(x);
  return add_raw(key, static_cast<uint32_t>(GgufValueType::kArray), b.bytes());
}

GgufWriter& GgufWriter::set_alignment(uint32_t bytes) {
  alignment = bytes;
  return add_u32("general.alignment", bytes);
}

GgufWriter& GgufWriter::add_tensor(std::string_view name, uint32_t type, std::vector<int64_t> dims,
                                   std::vector<uint8_t> data) {
  std::vector<uint64_t> udims(dims.begin(), dims.end());
  tensors_.push_back({std::string(name), type, std::move(udims), std::nullopt, std::move(data)});
  return *this;
}

GgufWriter& GgufWriter::add_tensor_at(std::string_view name, uint32_t type,
                                      std::vector<uint64_t> dims, uint64_t offset) {
  tensors_.push_back({std::string(name), type, std::move(dims), offset, {}});
  return *this;
}

std::vector<uint8_t> GgufWriter::bytes() const {
  const auto align_up = [this](uint64_t x) { return (x + alignment - 1) / alignment * alignment; };
  // Offsets first: tensors with data go back to back, each aligned.
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const Tensor& t : tensors_) {
    if (t.offset) {
      offsets.push_back(*t.offset);
    } else {
      next = align_up(next);
      offsets.push_back(next);
      next += t.data.size();
    }
  }

  ByteBuilder b;
  b.put(magic).put(version);
  b.put<uint64_t>(tensor_count.value_or(tensors_.size()));
  b.put<uint64_t>(kv_count.value_or(kvs_.size()));
  for (const Kv& kv : kvs_) b.str(kv.key).put(kv.type).raw(kv.payload);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    b.str(t.name).put(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) b.put(d);
    b.put(t.type).put(offsets[i]);
  }
  std::vector<uint8_t> out = b.bytes();
  if (tensors_.empty()) return out;
  const uint64_t data_start = align_up(out.size());
  out.resize(data_start + next, 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    if (!t.offset) std::copy(t.data.begin(), t.data.end(), out.begin() + data_start + offsets[i]);
  }
  return out;
}

std::vector<uint8_t> tensor_bytes(GgmlType type, int64_t n, uint32_t seed) {
  const GgmlTypeTraits traits = type_traits(static_cast<uint32_t>(type));
  std::vector<uint8_t> out(static_cast<size_t>(n / traits.block_elems * traits.block_bytes));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  if (type == GgmlType::kF32) {
    for (int64_t i = 0; i < n; ++i) {
      const float f = value(rng);
      std::memcpy(out.data() + 4 * i, &f, 4);
    }
    return out;
  }
  if (type == GgmlType::kF16 || type == GgmlType::kBF16) {
    for (int64_t i = 0; i < n; ++i) {
      const float f = value(rng);
      uint16_t h = f32_to_f16(f);
      if (type == GgmlType::kBF16) {
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        h = static_cast<uint16_t>(bits >> 16);
      }
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
    return out;
  }
  // Quantized: random quants, then finite scales (and mins) over the leading f16 fields.
  for (uint8_t& x : out) x = static_cast<uint8_t>(byte(rng));
  const int scales = type == GgmlType::kQ4_1 ? 2 : 1;
  for (size_t off = 0; off < out.size(); off += static_cast<size_t>(traits.block_bytes)) {
    for (int s = 0; s < scales; ++s) {
      const uint16_t h = f32_to_f16(value(rng) / 16.0f);
      std::memcpy(out.data() + off + 2 * s, &h, 2);
    }
  }
  return out;
}

}  // namespace coproc::llm::testing
