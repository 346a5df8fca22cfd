#include "llm/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>

#include <fmt/format.h>

namespace coproc::llm {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;  // ggml's GGML_MAX_DIMS
// Bounds on what a model file may declare, far above any real model, so that a hostile count
// cannot make the reader allocate gigabytes before the file's size has refused it.
constexpr uint64_t kMaxKeyBytes = 1 << 16;
// Array elements in the whole file, all arrays together. Each element becomes an 80-byte
// GgufValue, so without a budget a file of S bytes could make the reader allocate 80 * S (a 20 MB
// array of uint8 took 1.6 GB). The largest real tokenizers hold about a million (vocabulary,
// token types, scores and merges together); 4 Mi elements is at most 336 MB.
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 22;

Error bad(std::string message) { return make_error(ErrorCode::kBadModel, std::move(message)); }

// A bounds-checked little-endian cursor over the file. Every read says what it was reading, so
// that a failure names the key or tensor.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  template <class T>
  bool read(T* out) {
    if (left() < sizeof(T)) return false;
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool read_string(std::string_view* out, uint64_t max_bytes) {
    uint64_t n;
    if (!read(&n) || n > left() || n > max_bytes) return false;
    *out = std::string_view(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return true;
  }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

// The size in the file of one scalar of a type; 0 for strings, arrays and unknown types.
uint64_t scalar_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    default: return 0;
  }
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

template <class T>
bool read_scalar_as(Cursor& c, GgufValue* v) {
  T x;
  if (!c.read(&x)) return false;
  if constexpr (std::is_floating_point_v<T>) {
    v->f = static_cast<double>(x);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    v->u = x;
    v->i = static_cast<int64_t>(x);
  } else {
    v->i = static_cast<int64_t>(x);
    v->u = static_cast<uint64_t>(x);
  }
  return true;
}

// Reads one value of `type` (not an array). False when the file ends first.
bool read_scalar(Cursor& c, GgufValueType type, GgufValue* v) {
  v->type = type;
  switch (type) {
    case GgufValueType::kUint8: return read_scalar_as<uint8_t>(c, v);
    case GgufValueType::kInt8: return read_scalar_as<int8_t>(c, v);
    case GgufValueType::kUint16: return read_scalar_as<uint16_t>(c, v);
    case GgufValueType::kInt16: return read_scalar_as<int16_t>(c, v);
    case GgufValueType::kUint32: return read_scalar_as<uint32_t>(c, v);
    case GgufValueType::kInt32: return read_scalar_as<int32_t>(c, v);
    case GgufValueType::kFloat32: return read_scalar_as<float>(c, v);
    case GgufValueType::kUint64: return read_scalar_as<uint64_t>(c, v);
    case GgufValueType::kInt64: return read_scalar_as<int64_t>(c, v);
    case GgufValueType::kFloat64: return read_scalar_as<double>(c, v);
    case GgufValueType::kBool: {
      uint8_t b;
      if (!c.read(&b)) return false;
      v->i = b != 0;
      v->u = b != 0;
      return b <= 1;
    }
    case GgufValueType::kString: return c.read_string(&v->str, c.left());
    case GgufValueType::kArray: return false;
  }
  return false;
}

// `elements_left`: what is left of the file's kMaxArrayElements budget; an array spends its count.
Status read_value(Cursor& c, std::string_view key, GgufValue* v, uint64_t* elements_left) {
  uint32_t raw_type;
  if (!c.read(&raw_type)) return bad(fmt::format("key '{}': file ends before its type", key));
  if (!known_value_type(raw_type)) {
    return bad(fmt::format("key '{}': unknown value type {}", key, raw_type));
  }
  const auto type = static_cast<GgufValueType>(raw_type);
  if (type != GgufValueType::kArray) {
    if (!read_scalar(c, type, v)) {
      return bad(fmt::format("key '{}': {} value is truncated or invalid", key,
                             gguf_value_type_name(type)));
    }
    return {};
  }
  v->type = GgufValueType::kArray;
  uint32_t raw_element;
  uint64_t count;
  if (!c.read(&raw_element) || !c.read(&count)) {
    return bad(fmt::format("key '{}': file ends inside the array header", key));
  }
  if (!known_value_type(raw_element)) {
    return bad(fmt::format("key '{}': array of unknown value type {}", key, raw_element));
  }
  v->array_type = static_cast<GgufValueType>(raw_element);
  if (v->array_type == GgufValueType::kArray) {
    return bad(fmt::format("key '{}': nested arrays are not supported", key));
  }
  // Each element takes at least one byte (a string at least its 8-byte length): a count the rest
  // of the file cannot hold is refused before anything is allocated for it.
  const uint64_t min_element = v->array_type == GgufValueType::kString ? 8 : scalar_bytes(v->array_type);
  if (count > c.left() / min_element) {
    return bad(fmt::format("key '{}': array of {} {} elements does not fit in the file", key, count,
                           gguf_value_type_name(v->array_type)));
  }
  if (count > *elements_left) {
    return bad(fmt::format("key '{}': array of {} elements exceeds what is left of the file's "
                           "budget of {} array elements", key, count, kMaxArrayElements));
  }
  *elements_left -= count;
  v->array.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (!read_scalar(c, v->array_type, &v->array[i])) {
      return bad(fmt::format("key '{}': element {} of {} is truncated or invalid", key, i, count));
    }
  }
  return {};
}

bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace

const char* gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

struct GgufFile::Mapping {
  void* addr = nullptr;
  size_t bytes = 0;
  ~Mapping() {
    if (addr != nullptr) munmap(addr, bytes);
  }
};

GgufFile::~GgufFile() = default;

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return bad(fmt::format("'{}' is not a regular file", path));
  }
  auto mapping = std::make_unique<Mapping>();
  mapping->bytes = static_cast<size_t>(st.st_size);
  if (mapping->bytes > 0) {
    void* addr = mmap(nullptr, mapping->bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kInternal,
                        fmt::format("cannot map '{}': {}", path, std::strerror(err)));
    }
    mapping->addr = addr;
  }
  ::close(fd);
  auto parsed = parse({static_cast<const uint8_t*>(mapping->addr), mapping->bytes});
  if (!parsed) return make_error(parsed.error().code, fmt::format("{}: {}", path, parsed.error().message));
  (*parsed)->mapping_ = std::move(mapping);
  return parsed;
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(std::span<const uint8_t> bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->bytes_ = bytes;
  Cursor c(bytes);
  uint32_t magic;
  if (!c.read(&magic) || magic != kMagic) return bad("not a GGUF file (bad magic)");
  if (!c.read(&file->version_)) return bad("file ends before the version");
  if (file->version_ != 2 && file->version_ != 3) {
    return bad(fmt::format("GGUF version {} is not supported (2 and 3 are)", file->version_));
  }
  uint64_t n_tensors, n_kv;
  if (!c.read(&n_tensors) || !c.read(&n_kv)) return bad("file ends inside the header");
  // A key-value pair takes at least 12 bytes (key length and type), a tensor info at least 24.
  if (n_kv > c.left() / 12) return bad(fmt::format("{} metadata keys do not fit in the file", n_kv));
  if (n_tensors > c.left() / 24) return bad(fmt::format("{} tensors do not fit in the file", n_tensors));

  std::unordered_set<std::string_view> keys;
  uint64_t elements_left = kMaxArrayElements;
  file->kvs_.resize(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKv& kv = file->kvs_[i];
    if (!c.read_string(&kv.key, kMaxKeyBytes)) {
      return bad(fmt::format("metadata key {} of {}: its name is truncated or too long", i, n_kv));
    }
    if (!keys.insert(kv.key).second) return bad(fmt::format("key '{}' appears twice", kv.key));
    if (Status st = read_value(c, kv.key, &kv.value, &elements_left); !st) return st.error();
  }

  if (const GgufValue* a = file->find("general.alignment")) {
    if (a->type != GgufValueType::kUint32 || !is_power_of_two(a->u) || a->u > (1u << 20)) {
      return bad("key 'general.alignment': must be a uint32 power of two up to 1 MiB");
    }
    file->alignment_ = a->u;
  } else {
    file->alignment_ = kDefaultAlignment;
  }

  std::unordered_set<std::string_view> names;
  file->tensors_.resize(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo& t = file->tensors_[i];
    if (!c.read_string(&t.name, kMaxKeyBytes)) {
      return bad(fmt::format("tensor {} of {}: its name is truncated or too long", i, n_tensors));
    }
    if (!names.insert(t.name).second) return bad(fmt::format("tensor '{}' appears twice", t.name));
    uint32_t n_dims;
    if (!c.read(&n_dims)) return bad(fmt::format("tensor '{}': file ends before its dims", t.name));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return bad(fmt::format("tensor '{}': {} dims (1 to {} supported)", t.name, n_dims, kMaxDims));
    }
    t.dims.resize(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim;
      if (!c.read(&dim)) return bad(fmt::format("tensor '{}': file ends inside its dims", t.name));
      // Each dim and their product stay below 2^62, so that byte counts below cannot overflow.
      if (dim == 0 || dim >= (uint64_t{1} << 62) || elements > ((uint64_t{1} << 62) - 1) / dim) {
        return bad(fmt::format("tensor '{}': dim {} = {} is zero or too large", t.name, d, dim));
      }
      elements *= dim;
      t.dims[d] = static_cast<int64_t>(dim);
    }
    t.elements = static_cast<int64_t>(elements);
    uint32_t raw_type;
    if (!c.read(&raw_type) || !c.read(&t.offset)) {
      return bad(fmt::format("tensor '{}': file ends before its type and offset", t.name));
    }
    const GgmlTypeTraits traits = type_traits(raw_type);
    if (traits.block_elems == 0) {
      return bad(fmt::format("tensor '{}': unknown tensor type {}", t.name, raw_type));
    }
    t.type = static_cast<GgmlType>(raw_type);
    if (t.dims[0] % traits.block_elems != 0) {
      return bad(fmt::format("tensor '{}': row of {} elements is not a whole number of {} blocks",
                             t.name, t.dims[0], traits.name));
    }
    t.bytes = elements / traits.block_elems * traits.block_bytes;
    if (t.offset % file->alignment_ != 0) {
      return bad(fmt::format("tensor '{}': offset {} is not aligned to {}", t.name, t.offset,
                             file->alignment_));
    }
  }

  // The data section starts at the next multiple of the alignment after the tensor infos.
  const uint64_t data_start = (c.pos() + file->alignment_ - 1) / file->alignment_ * file->alignment_;
  if (data_start > bytes.size() && n_tensors > 0) {
    return bad(fmt::format("file ends before its data section (at {} of {} bytes)", data_start,
                           bytes.size()));
  }
  std::vector<std::pair<uint64_t, const TensorInfo*>> extents;
  extents.reserve(n_tensors);
  for (TensorInfo& t : file->tensors_) {
    const uint64_t room = bytes.size() - data_start;
    if (t.offset > room || t.bytes > room - t.offset) {
      return bad(fmt::format("tensor '{}': data [{}, {}) ends past the file's {} bytes", t.name,
                             data_start + t.offset, data_start + t.offset + t.bytes, bytes.size()));
    }
    t.data = bytes.data() + data_start + t.offset;
    extents.emplace_back(t.offset, &t);
  }
  // Tensors must not overlap: a loader writing through one must never see another change.
  std::sort(extents.begin(), extents.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < extents.size(); ++i) {
    const TensorInfo& prev = *extents[i - 1].second;
    if (prev.offset + prev.bytes > extents[i].first) {
      return bad(fmt::format("tensor '{}' overlaps tensor '{}'", extents[i].second->name, prev.name));
    }
  }
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKv& kv : kvs_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

bool is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16:
    case GgufValueType::kInt16: case GgufValueType::kUint32: case GgufValueType::kInt32:
    case GgufValueType::kUint64: case GgufValueType::kInt64: return true;
    default: return false;
  }
}

Error missing(std::string_view key) {
  return make_error(ErrorCode::kBadModel, fmt::format("key '{}' is missing", key));
}

Error wrong_type(std::string_view key, const GgufValue& v, const char* wanted) {
  return bad(fmt::format("key '{}' is a {}, not {}", key, gguf_value_type_name(v.type), wanted));
}

}  // namespace

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (!is_integer(v->type)) return wrong_type(key, *v, "an integer");
  if (v->type == GgufValueType::kUint64 && v->u > static_cast<uint64_t>(INT64_MAX)) {
    return bad(fmt::format("key '{}': {} is out of range", key, v->u));
  }
  return v->i;
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufValueType::kFloat32 && v->type != GgufValueType::kFloat64) {
    return wrong_type(key, *v, "a float");
  }
  return v->f;
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufValueType::kBool) return wrong_type(key, *v, "a bool");
  return v->i != 0;
}

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufValueType::kString) return wrong_type(key, *v, "a string");
  return v->str;
}

Result<const GgufValue*> GgufFile::get_array(std::string_view key, GgufValueType element_type) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufValueType::kArray || v->array_type != element_type) {
    return bad(fmt::format("key '{}' is not an array of {}", key, gguf_value_type_name(element_type)));
  }
  return v;
}

}  // namespace coproc::llm
