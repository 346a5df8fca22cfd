// fuzz_gguf: arbitrary bytes through GgufFile::parse (runtime/llm/gguf.h), the reader of the GGUF
// model files the LLM engine maps.
//
// Input: a file's bytes. Oracle, beyond "no crash, no sanitizer report, no huge allocation":
//   - a refusal is ErrorCode::kBadModel with a message;
//   - an accepted file keeps gguf.h's promises: version 2 or 3, a power-of-two alignment, unique
//     keys and tensor names, every string inside the input, and every tensor's bytes inside the
//     input, aligned, of the size its type and dims give, and overlapping no other tensor;
//   - every metadata value and array element is read, every typed getter agrees with the value's
//     type, and the first block (or row) of each tensor of a supported type is dequantized;
//   - Vocab::from_gguf either refuses the file with a message or gives a vocabulary that
//     tokenizes a fixed text, with and without special parsing, into ids inside it, and renders
//     them back.
//
//   build/fuzz/bin/fuzz_gguf -dict=tests/fuzz/gguf.dict tests/fuzz/corpus/gguf
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "llm/ggml_types.h"
#include "llm/gguf.h"
#include "llm/vocab.h"

namespace {

using coproc::llm::GgmlTypeTraits;
using coproc::llm::GgufFile;
using coproc::llm::GgufValue;
using coproc::llm::GgufValueType;
using coproc::llm::TensorInfo;

bool inside(std::span<const uint8_t> bytes, const void* p, uint64_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  const uint8_t* begin = bytes.data();
  return b >= begin && b <= begin + bytes.size() &&
         n <= static_cast<uint64_t>(begin + bytes.size() - b);
}

bool is_integer(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kInt8 || t == GgufValueType::kUint16 ||
         t == GgufValueType::kInt16 || t == GgufValueType::kUint32 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kUint64 || t == GgufValueType::kInt64;
}

// Reads a value's every byte that the reader viewed, so that ASan sees any view past the input.
uint64_t touch(std::span<const uint8_t> bytes, const GgufValue& v) {
  uint64_t sum = static_cast<uint64_t>(v.i) ^ v.u ^ static_cast<uint64_t>(v.f != 0);
  if (v.type == GgufValueType::kString) {
    FUZZ_CHECK(v.str.empty() || inside(bytes, v.str.data(), v.str.size()),
               "a string views the input");
    for (char c : v.str) sum += static_cast<uint8_t>(c);
  }
  if (v.type == GgufValueType::kArray) {
    FUZZ_CHECK(v.array_type != GgufValueType::kArray, "nested arrays are refused");
    for (const GgufValue& e : v.array) {
      FUZZ_CHECK(e.type == v.array_type, "an element has the array's type");
      sum += touch(bytes, e);
    }
  } else {
    FUZZ_CHECK(v.array.empty(), "a scalar has no elements");
  }
  return sum;
}

void check_getters(const GgufFile& file, std::string_view key, const GgufValue& v) {
  FUZZ_CHECK(file.find(key) == &v, "find() returns the key's one value");
  const auto i = file.get_int(key);
  FUZZ_CHECK(
      i.ok() == (is_integer(v.type) && !(v.type == GgufValueType::kUint64 && v.u > INT64_MAX)),
      "get_int accepts exactly the integers that fit");
  FUZZ_CHECK(file.get_float(key).ok() ==
                 (v.type == GgufValueType::kFloat32 || v.type == GgufValueType::kFloat64),
             "get_float accepts exactly the floats");
  FUZZ_CHECK(file.get_bool(key).ok() == (v.type == GgufValueType::kBool), "get_bool");
  FUZZ_CHECK(file.get_string(key).ok() == (v.type == GgufValueType::kString), "get_string");
  const auto a = file.get_array(key, v.array_type);
  FUZZ_CHECK(a.ok() == (v.type == GgufValueType::kArray), "get_array");
}

void check_tensor(std::span<const uint8_t> bytes, const GgufFile& file, const TensorInfo& t) {
  const GgmlTypeTraits traits = coproc::llm::type_traits(static_cast<uint32_t>(t.type));
  FUZZ_CHECK(traits.block_elems > 0, "a tensor's type is known");
  FUZZ_CHECK(!t.dims.empty() && t.dims.size() <= 4, "1 to 4 dims");
  int64_t elements = 1;
  for (int64_t d : t.dims) {
    FUZZ_CHECK(d > 0, "dims are positive");
    FUZZ_CHECK(elements <= INT64_MAX / d, "the dims' product fits");
    elements *= d;
  }
  FUZZ_CHECK(elements == t.elements, "elements is the dims' product");
  FUZZ_CHECK(t.dims[0] % traits.block_elems == 0, "a row is whole blocks");
  FUZZ_CHECK(t.bytes == static_cast<uint64_t>(elements / traits.block_elems * traits.block_bytes),
             "bytes follow from the type and dims");
  FUZZ_CHECK(coproc::llm::row_bytes(t.type, t.dims[0]) > 0, "row_bytes knows the row");
  FUZZ_CHECK(inside(bytes, t.data, t.bytes), "a tensor's bytes lie inside the input");
  FUZZ_CHECK(t.offset % file.alignment() == 0, "a tensor's offset is aligned");
  FUZZ_CHECK(static_cast<uint64_t>(t.data - bytes.data()) % file.alignment() == 0,
             "a tensor's bytes are aligned from the file's start");
  FUZZ_CHECK(t.name.empty() || inside(bytes, t.name.data(), t.name.size()),
             "a name views the input");
  if (!traits.supported) return;
  // The first block (the first 32 elements of a float type: a row may be shorter).
  const int64_t n = traits.block_elems > 1 ? traits.block_elems : std::min<int64_t>(t.dims[0], 32);
  float out[256];
  coproc::llm::dequantize_row(t.type, t.data, out, n);
}

void check_file(std::span<const uint8_t> bytes, const GgufFile& file) {
  FUZZ_CHECK(file.version() == 2 || file.version() == 3, "version 2 or 3");
  FUZZ_CHECK(file.alignment() > 0 && (file.alignment() & (file.alignment() - 1)) == 0,
             "the alignment is a power of two");
  std::set<std::string_view> keys;
  uint64_t sum = 0;
  for (const auto& kv : file.metadata()) {
    FUZZ_CHECK(keys.insert(kv.key).second, "keys are unique");
    FUZZ_CHECK(kv.key.empty() || inside(bytes, kv.key.data(), kv.key.size()),
               "a key views the input");
    sum += touch(bytes, kv.value);
    check_getters(file, kv.key, kv.value);
  }
  std::set<std::string_view> names;
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  for (const TensorInfo& t : file.tensors()) {
    FUZZ_CHECK(names.insert(t.name).second, "tensor names are unique");
    FUZZ_CHECK(file.find_tensor(t.name) == &t, "find_tensor() returns the tensor");
    check_tensor(bytes, file, t);
    extents.emplace_back(static_cast<uint64_t>(t.data - bytes.data()), t.bytes);
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i) {
    FUZZ_CHECK(extents[i - 1].first + extents[i - 1].second <= extents[i].first,
               "tensors do not overlap");
  }
  // Keeps the reads of touch() from being optimised away.
  volatile uint64_t sink = sum;
  (void)sink;
}

// A vocabulary the file describes, if it describes one, used the way a request would use it.
void check_vocab(const GgufFile& file) {
  auto vocab = coproc::llm::Vocab::from_gguf(file);
  if (!vocab.ok()) {
    FUZZ_CHECK(!vocab.error().message.empty(), "a refusal says why");
    return;
  }
  const coproc::llm::Vocab& v = **vocab;
  constexpr std::string_view kText = "Hello, world! <|im_start|>user\n 123 caf\xc3\xa9 \xe4\xb8\xad\xff<|endoftext|>";
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = v.tokenize(kText, true, special);
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < v.n_tokens(), "token ids lie inside the vocabulary");
    (void)v.detokenize(ids, special);
  }
  for (int32_t id : v.eog_ids()) FUZZ_CHECK(id >= 0 && id < v.n_tokens(), "end-of-generation ids lie inside");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto file = GgufFile::parse(bytes);
  if (file.ok()) {
    check_file(bytes, **file);
    check_vocab(**file);
  } else {
    FUZZ_CHECK(file.error().code == coproc::ErrorCode::kBadModel, "a refusal is kBadModel");
    FUZZ_CHECK(!file.error().message.empty(), "a refusal says why");
  }
  return 0;
}
