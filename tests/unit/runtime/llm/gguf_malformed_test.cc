// The GGUF reader on malformed files: each is refused (never a crash) with a message that names
// the key or the tensor at fault. Files come from the test writer (gguf_writer.h), broken one
// field at a time.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gguf_writer.h"
#include "llm/gguf.h"
#include "llm/weight_binding.h"

namespace coproc::llm {
namespace {

using testing::ByteBuilder;
using testing::GgufWriter;
using testing::tensor_bytes;

constexpr uint32_t kString = static_cast<uint32_t>(GgufValueType::kString);
constexpr uint32_t kArray = static_cast<uint32_t>(GgufValueType::kArray);
constexpr uint32_t kUint32 = static_cast<uint32_t>(GgufValueType::kUint32);
constexpr uint32_t kQ4_1 = static_cast<uint32_t>(GgmlType::kQ4_1);
constexpr uint32_t kF32 = static_cast<uint32_t>(GgmlType::kF32);

// A small valid file with a value of each kind and tensors of three types; the last tensor's
// bytes end the file.
GgufWriter small_valid_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama").add_u32("llama.block_count", 1);
  w.add_f32("llama.rope.freq_base", 10000.0f).add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_string_array("tokenizer.ggml.tokens", {"<s>", "a", "bc"});
  w.add_i32_array("tokenizer.ggml.token_type", {3, 1, 1});
  w.add_tensor("token_embd.weight", GgmlType::kQ8_0, {32, 3}, tensor_bytes(GgmlType::kQ8_0, 96, 1));
  w.add_tensor("blk.0.attn_q.weight", GgmlType::kQ4_1, {32, 2},
               tensor_bytes(GgmlType::kQ4_1, 64, 2));
  w.add_tensor("output_norm.weight", GgmlType::kF32, {32}, tensor_bytes(GgmlType::kF32, 32, 3));
  return w;
}

// Parses `bytes` from a buffer of exactly their size (so that a sanitizer build catches any read
// past the end) and returns the refusal's message; fails the test if the file was accepted.
std::string refusal(const std::vector<uint8_t>& bytes) {
  const std::vector<uint8_t> exact(bytes.begin(), bytes.end());
  auto parsed = GgufFile::parse(exact);
  if (parsed.ok()) {
    ADD_FAILURE() << "a malformed file of " << bytes.size() << " bytes was accepted";
    return {};
  }
  EXPECT_EQ(parsed.error().code, ErrorCode::kBadModel);
  return parsed.error().message;
}

#define EXPECT_REFUSED_WITH(writer, needle)                                       \
  do {                                                                            \
    const std::string message = refusal((writer).bytes());                        \
    EXPECT_NE(message.find(needle), std::string::npos) << "message: " << message; \
  } while (0)

TEST(GgufMalformedTest, shouldAcceptTheSmallValidFile) {
  const std::vector<uint8_t> bytes = small_valid_file().bytes();
  auto parsed = GgufFile::parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ((*parsed)->tensors().size(), 3u);
  EXPECT_EQ((*parsed)->tensors()[2].data + 128, bytes.data() + bytes.size());
}

TEST(GgufMalformedTest, shouldRefuseEveryTruncationOfAValidFile) {
  const std::vector<uint8_t> bytes = small_valid_file().bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    auto parsed = GgufFile::parse(prefix);
    EXPECT_FALSE(parsed.ok()) << "accepted the first " << n << " of " << bytes.size() << " bytes";
    if (!parsed.ok()) {
      EXPECT_FALSE(parsed.error().message.empty()) << n;
    }
  }
}

TEST(GgufMalformedTest, shouldRefuseBadMagic) {
  GgufWriter w = small_valid_file();
  w.magic = 0x46554746;
  EXPECT_REFUSED_WITH(w, "magic");
}

TEST(GgufMalformedTest, shouldRefuseUnsupportedVersions) {
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    GgufWriter w = small_valid_file();
    w.version = version;
    EXPECT_REFUSED_WITH(w, "version " + std::to_string(version));
  }
}

TEST(GgufMalformedTest, shouldRefuseHugeCountsBeforeAllocating) {
  for (uint64_t count : {uint64_t{1} << 40, uint64_t{1} << 63, UINT64_MAX}) {
    GgufWriter kvs = small_valid_file();
    kvs.kv_count = count;
    EXPECT_REFUSED_WITH(kvs, std::to_string(count) + " metadata keys");
    GgufWriter tensors = small_valid_file();
    tensors.tensor_count = count;
    EXPECT_REFUSED_WITH(tensors, std::to_string(count) + " tensors");
  }
}

TEST(GgufMalformedTest, shouldRefuseCountsLargerThanWhatFollows) {
  GgufWriter kvs = small_valid_file();
  kvs.kv_count = 7;  // one more than written: the tensor infos are read as a key
  refusal(kvs.bytes());
  GgufWriter tensors = small_valid_file();
  tensors.tensor_count = 4;
  refusal(tensors.bytes());
}

TEST(GgufMalformedTest, shouldRefuseHugeStringLengthsNamingTheKey) {
  GgufWriter value;
  value.add_u32("before", 1).add_raw("name", kString, ByteBuilder().put(UINT64_MAX).bytes());
  EXPECT_REFUSED_WITH(value, "'name'");
  GgufWriter past_end;
  past_end.add_raw("name", kString, ByteBuilder().put<uint64_t>(5).put('a').bytes());
  EXPECT_REFUSED_WITH(past_end, "'name'");
  // A key whose own length is huge cannot be named; its position is.
  std::vector<uint8_t> bytes = GgufWriter().bytes();
  bytes[16] = 1;  // kv_count = 1
  ByteBuilder key;
  key.put(UINT64_MAX).put(uint64_t{0});  // the length, and bytes enough for one pair's minimum
  bytes.insert(bytes.end(), key.bytes().begin(), key.bytes().end());
  const std::string message = refusal(bytes);
  EXPECT_NE(message.find("metadata key 0 of 1"), std::string::npos) << message;
}

TEST(GgufMalformedTest, shouldRefuseHugeArrayLengthsNamingTheKey) {
  for (uint64_t count : {uint64_t{1} << 32, uint64_t{1} << 61, UINT64_MAX}) {
    GgufWriter w;
    w.add_raw("tokenizer.ggml.tokens", kArray,
              ByteBuilder().put(kString).put(count).str("a").bytes());
    EXPECT_REFUSED_WITH(w, "'tokenizer.ggml.tokens'");
    GgufWriter scalars;
    scalars.add_raw("ids", kArray, ByteBuilder().put(kUint32).put(count).put(1u).bytes());
    EXPECT_REFUSED_WITH(scalars, "'ids'");
  }
  // An element's string running past the end.
  GgufWriter w;
  w.add_raw("merges", kArray,
            ByteBuilder().put(kString).put<uint64_t>(2).str("a b").put(UINT64_MAX).bytes());
  EXPECT_REFUSED_WITH(w, "'merges'");
}

// Each array element costs the reader far more memory than its bytes in the file, so the file's
// arrays together may hold 4 Mi elements (gguf.cc's kMaxArrayElements), whatever its size.
TEST(GgufMalformedTest, shouldRefuseArraysBeyondTheElementBudgetNamingTheKey) {
  constexpr uint64_t kBudget = uint64_t{1} << 22;
  const auto u8_array = [](uint64_t count) {
    ByteBuilder b;
    b.put(static_cast<uint32_t>(GgufValueType::kUint8)).put(count);
    b.raw(std::vector<uint8_t>(count, 1));
    return b.bytes();
  };
  GgufWriter one;
  one.add_raw("bytes", kArray, u8_array(kBudget + 1));
  EXPECT_REFUSED_WITH(one, "'bytes'");
  GgufWriter two;
  two.add_raw("first", kArray, u8_array(kBudget / 2))
      .add_raw("second", kArray, u8_array(kBudget / 2 + 1));
  EXPECT_REFUSED_WITH(two, "'second'");
  GgufWriter at_budget;
  at_budget.add_raw("first", kArray, u8_array(kBudget / 2))
      .add_raw("second", kArray, u8_array(kBudget / 2));
  const std::vector<uint8_t> bytes = at_budget.bytes();
  auto parsed = GgufFile::parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ((*parsed)->find("second")->array.size(), kBudget / 2);
}

TEST(GgufMalformedTest, shouldRefuseNestedArraysNamingTheKey) {
  GgufWriter w;
  ByteBuilder inner;
  inner.put(kUint32).put<uint64_t>(1).put(7u);
  w.add_raw("nested", kArray,
            ByteBuilder().put(kArray).put<uint64_t>(1).raw(inner.bytes()).bytes());
  EXPECT_REFUSED_WITH(w, "'nested'");
}

TEST(GgufMalformedTest, shouldRefuseUnknownValueTypesNamingTheKey) {
  for (uint32_t type : {13u, 100u, 0xffffffffu}) {
    GgufWriter scalar;
    scalar.add_raw("odd", type, ByteBuilder().put(0u).bytes());
    EXPECT_REFUSED_WITH(scalar, "'odd': unknown value type " + std::to_string(type));
    GgufWriter array;
    array.add_raw("odd_array", kArray, ByteBuilder().put(type).put<uint64_t>(1).put(0u).bytes());
    EXPECT_REFUSED_WITH(array, "'odd_array'");
  }
}

TEST(GgufMalformedTest, shouldRefuseBoolOtherThanZeroOrOne) {
  GgufWriter w;
  w.add_raw("flag", static_cast<uint32_t>(GgufValueType::kBool), {2});
  EXPECT_REFUSED_WITH(w, "'flag'");
}

TEST(GgufMalformedTest, shouldRefuseDuplicateKeys) {
  GgufWriter w = small_valid_file();
  w.add_u32("llama.block_count", 2);
  EXPECT_REFUSED_WITH(w, "'llama.block_count' appears twice");
}

TEST(GgufMalformedTest, shouldRefuseDuplicateTensorNames) {
  GgufWriter w = small_valid_file();
  w.add_tensor("blk.0.attn_q.weight", GgmlType::kF32, {4}, tensor_bytes(GgmlType::kF32, 4, 4));
  EXPECT_REFUSED_WITH(w, "'blk.0.attn_q.weight' appears twice");
}

TEST(GgufMalformedTest, shouldRefuseDimsWhoseProductOverflows) {
  GgufWriter w;
  w.add_tensor_at("huge", kF32, {uint64_t{1} << 32, uint64_t{1} << 32}, 0);
  EXPECT_REFUSED_WITH(w, "'huge'");
  GgufWriter wraps;  // 2^64 / 32 * 32: wraps to zero in 64 bits
  wraps.add_tensor_at("wraps", kQ4_1, {uint64_t{1} << 59, 32}, 0);
  EXPECT_REFUSED_WITH(wraps, "'wraps'");
  GgufWriter one;
  one.add_tensor_at("max", kF32, {UINT64_MAX}, 0);
  EXPECT_REFUSED_WITH(one, "'max'");
  GgufWriter zero;
  zero.add_tensor_at("empty", kF32, {4, 0}, 0);
  EXPECT_REFUSED_WITH(zero, "'empty'");
}

TEST(GgufMalformedTest, shouldRefuseBadDimCounts) {
  GgufWriter none;
  none.add_tensor_at("scalar", kF32, {}, 0);
  EXPECT_REFUSED_WITH(none, "'scalar'");
  GgufWriter five;
  five.add_tensor_at("five", kF32, {1, 1, 1, 1, 1}, 0);
  EXPECT_REFUSED_WITH(five, "'five'");
}

TEST(GgufMalformedTest, shouldRefuseRowsThatAreNotWholeBlocks) {
  GgufWriter w;
  w.add_tensor("ragged", GgmlType::kQ4_1, {48, 2}, std::vector<uint8_t>(60));
  EXPECT_REFUSED_WITH(w, "'ragged'");
}

TEST(GgufMalformedTest, shouldRefuseTensorDataPastTheEndNamingTheTensor) {
  GgufWriter w = small_valid_file();
  w.add_tensor_at("late", kF32, {8}, 1 << 20);
  EXPECT_REFUSED_WITH(w, "'late'");
  GgufWriter far = small_valid_file();
  far.add_tensor_at("far", kF32, {8}, UINT64_MAX - 31);  // aligned, and offset + bytes wraps
  EXPECT_REFUSED_WITH(far, "'far'");
  GgufWriter short_data;  // 40 bytes declared, 20 present
  short_data.add_tensor("short", GgmlType::kQ4_1, {32, 2}, std::vector<uint8_t>(20));
  EXPECT_REFUSED_WITH(short_data, "'short'");
}

TEST(GgufMalformedTest, shouldRefuseMisalignedOffsetsNamingTheTensor) {
  GgufWriter w = small_valid_file();
  w.add_tensor_at("odd", kF32, {1}, 4);
  EXPECT_REFUSED_WITH(w, "'odd'");
}

TEST(GgufMalformedTest, shouldRefuseOverlappingTensorsNamingBoth) {
  GgufWriter w;
  w.add_tensor("first", GgmlType::kF32, {16}, tensor_bytes(GgmlType::kF32, 16, 1));
  w.add_tensor_at("second", kF32, {8}, 32);  // inside first's 64 bytes
  const std::string message = refusal(w.bytes());
  EXPECT_NE(message.find("'first'"), std::string::npos) << message;
  EXPECT_NE(message.find("'second'"), std::string::npos) << message;
}

TEST(GgufMalformedTest, shouldRefuseBadAlignmentNamingTheKey) {
  for (uint32_t alignment : {0u, 3u, 48u, 1u << 31}) {
    GgufWriter w;
    w.add_u32("general.alignment", alignment);
    EXPECT_REFUSED_WITH(w, "'general.alignment'");
  }
  GgufWriter wrong_type;
  wrong_type.add_u64("general.alignment", 32);
  EXPECT_REFUSED_WITH(wrong_type, "'general.alignment'");
}

TEST(GgufMalformedTest, shouldRefuseUnknownTensorTypesNamingTheTensorAndType) {
  for (uint32_t type : {4u, 5u, 99u, 0xffffffffu}) {  // 4 and 5 were Q4_2 and Q4_3, removed
    GgufWriter w;
    w.add_tensor_at("strange", type, {32}, 0);
    EXPECT_REFUSED_WITH(w, "'strange': unknown tensor type " + std::to_string(type));
  }
}

// The reader accepts a type of the format that coproc does not run (gguf.h: its sizes are known,
// so the file can still be checked); the loader refuses it when it binds the tensor, naming both.
TEST(GgufMalformedTest, shouldRefuseUnsupportedTensorTypeWhenTheLoaderBindsIt) {
  GgufWriter w;
  w.add_tensor("blk.0.attn_q.weight", GgmlType::kQ4_K, {256, 2}, std::vector<uint8_t>(2 * 144));
  w.add_tensor("blk.0.attn_norm.weight", GgmlType::kQ5_0, {32}, std::vector<uint8_t>(22));
  const std::vector<uint8_t> bytes = w.bytes();
  auto parsed = GgufFile::parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_FALSE(type_traits(static_cast<uint32_t>((*parsed)->tensors()[0].type)).supported);

  Weights weights;
  WeightBinder binder(**parsed, &weights);
  auto matrix = binder.matrix("blk.0.attn_q.weight", 256, 2);
  ASSERT_FALSE(matrix.ok());
  EXPECT_EQ(matrix.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(matrix.error().message.find("'blk.0.attn_q.weight'"), std::string::npos)
      << matrix.error().message;
  EXPECT_NE(matrix.error().message.find("q4_k"), std::string::npos) << matrix.error().message;
  auto norm = binder.vector("blk.0.attn_norm.weight", 32);
  ASSERT_FALSE(norm.ok());
  EXPECT_NE(norm.error().message.find("'blk.0.attn_norm.weight'"), std::string::npos)
      << norm.error().message;
  EXPECT_NE(norm.error().message.find("q5_0"), std::string::npos) << norm.error().message;
}

}  // namespace
}  // namespace coproc::llm
