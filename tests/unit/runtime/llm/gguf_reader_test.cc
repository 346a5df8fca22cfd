// The GGUF reader on well-formed files: the reference model (SmolLM2-135M-Instruct Q4_1, checked
// against what the issue states and against the `gguf` package's reading of the same file), and
// files of the test writer carrying every metadata value type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gguf_writer.h"
#include "llm/gguf.h"

namespace coproc::llm {
namespace {

using testing::GgufWriter;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class GgufModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto opened = GgufFile::open(COPROC_LLM_MODEL);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    file_ = std::move(*opened).release();
  }
  static void TearDownTestSuite() {
    delete file_;
    file_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(file_, nullptr) << "cannot open " << COPROC_LLM_MODEL; }

  static int64_t get_int(std::string_view key) {
    auto v = file_->get_int(key);
    EXPECT_TRUE(v.ok()) << v.error().message;
    return v.ok() ? *v : -1;
  }
  static std::string get_string(std::string_view key) {
    auto v = file_->get_string(key);
    EXPECT_TRUE(v.ok()) << v.error().message;
    return v.ok() ? std::string(*v) : std::string();
  }

  static GgufFile* file_;
};
GgufFile* GgufModelTest::file_ = nullptr;

TEST_F(GgufModelTest, shouldReadHeaderOfVersion3WithDefaultAlignment) {
  EXPECT_EQ(file_->version(), 3u);
  EXPECT_EQ(file_->alignment(), 32u);  // the file has no general.alignment
  EXPECT_EQ(file_->find("general.alignment"), nullptr);
  EXPECT_EQ(file_->tensors().size(), 272u);
  EXPECT_EQ(file_->metadata().size(), 33u);
}

TEST_F(GgufModelTest, shouldReadLlamaHyperparameters) {
  EXPECT_EQ(get_string("general.architecture"), "llama");
  EXPECT_EQ(get_int("llama.block_count"), 30);
  EXPECT_EQ(get_int("llama.embedding_length"), 576);
  EXPECT_EQ(get_int("llama.attention.head_count"), 9);
  EXPECT_EQ(get_int("llama.attention.head_count_kv"), 3);
  EXPECT_EQ(get_int("llama.feed_forward_length"), 1536);
  EXPECT_EQ(get_int("llama.vocab_size"), 49152);
  EXPECT_EQ(get_int("llama.context_length"), 8192);
  EXPECT_EQ(get_int("llama.rope.dimension_count"), 64);
  auto base = file_->get_float("llama.rope.freq_base");
  ASSERT_TRUE(base.ok()) << base.error().message;
  EXPECT_EQ(*base, 100000.0);
  auto eps = file_->get_float("llama.attention.layer_norm_rms_epsilon");
  ASSERT_TRUE(eps.ok()) << eps.error().message;
  EXPECT_EQ(*eps, static_cast<double>(1e-5f));  // stored as float32
  EXPECT_EQ(file_->find("llama.block_count")->type, GgufValueType::kUint32);
  EXPECT_EQ(file_->find("llama.rope.freq_base")->type, GgufValueType::kFloat32);
}

TEST_F(GgufModelTest, shouldReadTokenizerMetadata) {
  EXPECT_EQ(get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(get_string("tokenizer.ggml.pre"), "smollm");
  EXPECT_EQ(get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(get_int("tokenizer.ggml.eos_token_id"), 2);
  auto add_bos = file_->get_bool("tokenizer.ggml.add_bos_token");
  ASSERT_TRUE(add_bos.ok()) << add_bos.error().message;
  EXPECT_FALSE(*add_bos);

  auto tokens = file_->get_array("tokenizer.ggml.tokens", GgufValueType::kString);
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  ASSERT_EQ((*tokens)->array.size(), 49152u);
  EXPECT_EQ((*tokens)->array[1].str, "<|im_start|>");
  EXPECT_EQ((*tokens)->array[2].str, "<|im_end|>");
  auto merges = file_->get_array("tokenizer.ggml.merges", GgufValueType::kString);
  ASSERT_TRUE(merges.ok()) << merges.error().message;
  EXPECT_EQ((*merges)->array.size(), 48900u);
  auto types = file_->get_array("tokenizer.ggml.token_type", GgufValueType::kInt32);
  ASSERT_TRUE(types.ok()) << types.error().message;
  EXPECT_EQ((*types)->array.size(), 49152u);
  EXPECT_NE(get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);
}

TEST_F(GgufModelTest, shouldReadTensorTypesAndShapes) {
  const TensorInfo* embd = file_->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, GgmlType::kQ8_0);
  EXPECT_EQ(embd->dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(file_->find_tensor("output.weight"), nullptr);  // tied to token_embd

  int q4_1 = 0, f32 = 0;
  for (const TensorInfo& t : file_->tensors()) {
    const bool is_norm = t.name.ends_with("_norm.weight");
    if (t.name.starts_with("blk.") && !is_norm) {
      EXPECT_EQ(t.type, GgmlType::kQ4_1) << t.name;
      EXPECT_EQ(t.dims.size(), 2u) << t.name;
      q4_1 += t.type == GgmlType::kQ4_1;
    } else if (is_norm) {
      EXPECT_EQ(t.type, GgmlType::kF32) << t.name;
      EXPECT_EQ(t.dims, (std::vector<int64_t>{576})) << t.name;
      f32 += t.type == GgmlType::kF32;
    }
  }
  EXPECT_EQ(q4_1, 210);  // 7 matrices in each of 30 blocks
  EXPECT_EQ(f32, 61);    // 2 norms per block and the output norm
  const TensorInfo* q = file_->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dims, (std::vector<int64_t>{576, 576}));
  const TensorInfo* k = file_->find_tensor("blk.0.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->dims, (std::vector<int64_t>{576, 192}));  // 3 KV heads of 64
}

// Every tensor as the gguf package reads it (model_tensors.tsv of tools/llm/make_dequant_cases.py):
// name, type, dims, and the bytes: open() must point each tensor at its bytes in the file.
TEST_F(GgufModelTest, shouldMatchGgufPackageTensorTable) {
  std::ifstream table(std::string(COPROC_LLM_GGUF_REF) + "/model_tensors.tsv");
  ASSERT_TRUE(table) << "missing " << COPROC_LLM_GGUF_REF
                     << "/model_tensors.tsv (fixture llm_gguf_reference)";
  const std::vector<uint8_t> bytes = read_file(COPROC_LLM_MODEL);
  ASSERT_FALSE(bytes.empty());
  auto parsed = GgufFile::parse(bytes);  // the same file from memory: its pointers can be checked
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;

  std::string line;
  size_t rows = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string name, type, dims_text;
    uint64_t offset = 0, n_bytes = 0;
    std::getline(fields, name, '\t');
    std::getline(fields, type, '\t');
    std::getline(fields, dims_text, '\t');
    fields >> offset >> n_bytes;
    ++rows;

    const TensorInfo* mapped = file_->find_tensor(name);
    const TensorInfo* in_memory = (*parsed)->find_tensor(name);
    ASSERT_NE(mapped, nullptr) << name;
    ASSERT_NE(in_memory, nullptr) << name;
    EXPECT_EQ(type_name(static_cast<uint32_t>(mapped->type)), type) << name;
    std::vector<int64_t> dims;
    std::istringstream dims_stream(dims_text);
    for (std::string d; std::getline(dims_stream, d, ',');) dims.push_back(std::stoll(d));
    EXPECT_EQ(mapped->dims, dims) << name;
    EXPECT_EQ(mapped->bytes, n_bytes) << name;
    EXPECT_EQ(static_cast<uint64_t>(in_memory->data - bytes.data()), offset) << name;
    EXPECT_EQ(offset % file_->alignment(), 0u) << name;
    ASSERT_LE(offset + n_bytes, bytes.size()) << name;
    EXPECT_EQ(std::memcmp(mapped->data, bytes.data() + offset, n_bytes), 0) << name;
  }
  EXPECT_EQ(rows, file_->tensors().size());
}

TEST(GgufReaderTest, shouldReadEveryValueType) {
  GgufWriter w;
  w.add_u8("u8", 250).add_i8("i8", -7).add_u16("u16", 65000).add_i16("i16", -32000);
  w.add_u32("u32", 4000000000u).add_i32("i32", -2000000000).add_u64("u64", UINT64_MAX);
  w.add_i64("i64", INT64_MIN).add_f32("f32", 0.25f).add_f64("f64", -1e300).add_bool("yes", true);
  w.add_bool("no", false).add_string("s", "héllo").add_string("empty", "");
  w.add_string_array("strings", {"a", "", "ccc"}).add_i32_array("ints", {1, -2, 3});
  w.add_f32_array("floats", {}).add_f32_array("one_float", {1.5f});
  const std::vector<uint8_t> bytes = w.bytes();
  auto parsed = GgufFile::parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const GgufFile& f = **parsed;

  EXPECT_EQ(f.metadata().size(), 18u);
  EXPECT_EQ(*f.get_int("u8"), 250);
  EXPECT_EQ(*f.get_int("i8"), -7);
  EXPECT_EQ(*f.get_int("u16"), 65000);
  EXPECT_EQ(*f.get_int("i16"), -32000);
  EXPECT_EQ(*f.get_int("u32"), 4000000000);
  EXPECT_EQ(*f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.find("u64")->u, UINT64_MAX);
  EXPECT_EQ(*f.get_int("i64"), INT64_MIN);
  EXPECT_EQ(*f.get_float("f32"), 0.25);
  EXPECT_EQ(*f.get_float("f64"), -1e300);
  EXPECT_TRUE(*f.get_bool("yes"));
  EXPECT_FALSE(*f.get_bool("no"));
  EXPECT_EQ(*f.get_string("s"), "héllo");
  EXPECT_EQ(*f.get_string("empty"), "");
  auto strings = f.get_array("strings", GgufValueType::kString);
  ASSERT_TRUE(strings.ok()) << strings.error().message;
  ASSERT_EQ((*strings)->array.size(), 3u);
  EXPECT_EQ((*strings)->array[0].str, "a");
  EXPECT_EQ((*strings)->array[1].str, "");
  EXPECT_EQ((*strings)->array[2].str, "ccc");
  auto ints = f.get_array("ints", GgufValueType::kInt32);
  ASSERT_TRUE(ints.ok()) << ints.error().message;
  ASSERT_EQ((*ints)->array.size(), 3u);
  EXPECT_EQ((*ints)->array[1].i, -2);
  EXPECT_EQ((*f.get_array("floats", GgufValueType::kFloat32))->array.size(), 0u);
  EXPECT_EQ((*f.get_array("one_float", GgufValueType::kFloat32))->array[0].f, 1.5);
  EXPECT_EQ(f.tensors().size(), 0u);
}

TEST(GgufReaderTest, shouldRefuseTypedLookupsOfAnotherTypeNamingTheKey) {
  GgufWriter w;
  w.add_string("name", "x").add_u64("big", UINT64_MAX).add_i32("n", 3).add_i32_array("ints", {1});
  const std::vector<uint8_t> bytes = w.bytes();
  auto parsed = GgufFile::parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const GgufFile& f = **parsed;

  const auto expect_error = [](const auto& result, const std::string& needle) {
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
  };
  expect_error(f.get_int("name"), "'name'");
  expect_error(f.get_int("big"), "'big'");  // does not fit an int64
  expect_error(f.get_float("n"), "'n'");
  expect_error(f.get_bool("n"), "'n'");
  expect_error(f.get_string("n"), "'n'");
  expect_error(f.get_int("absent"), "'absent' is missing");
  expect_error(f.get_array("ints", GgufValueType::kString), "'ints'");
  expect_error(f.get_array("n", GgufValueType::kInt32), "'n'");
}

TEST(GgufReaderTest, shouldReadVersion2AndPlaceTensorsAtTheirAlignment) {
  GgufWriter w;
  w.version = 2;
  w.set_alignment(64);
  const std::vector<uint8_t> a = testing::tensor_bytes(GgmlType::kQ4_1, 64, 1);
  const std::vector<uint8_t> b = testing::tensor_bytes(GgmlType::kF32, 3, 2);
  w.add_tensor("a", GgmlType::kQ4_1, {32, 2}, a).add_tensor("b", GgmlType::kF32, {3}, b);
  const std::vector<uint8_t> bytes = w.bytes();
  auto parsed = GgufFile::parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const GgufFile& f = **parsed;
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 64u);
  ASSERT_EQ(f.tensors().size(), 2u);

  const TensorInfo& ta = f.tensors()[0];
  EXPECT_EQ(ta.name, "a");
  EXPECT_EQ(ta.elements, 64);
  EXPECT_EQ(ta.bytes, 40u);
  EXPECT_EQ(ta.offset, 0u);
  EXPECT_EQ((ta.data - bytes.data()) % 64, 0);
  EXPECT_EQ(std::memcmp(ta.data, a.data(), a.size()), 0);
  const TensorInfo& tb = f.tensors()[1];
  EXPECT_EQ(tb.offset, 64u);  // 40 bytes of a, rounded up to the alignment
  EXPECT_EQ(tb.bytes, 12u);
  EXPECT_EQ(tb.data + tb.bytes, bytes.data() + bytes.size());
  EXPECT_EQ(std::memcmp(tb.data, b.data(), b.size()), 0);
}

TEST(GgufReaderTest, shouldRefuseMissingFileNamingIt) {
  auto opened = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("/nonexistent/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace coproc::llm
