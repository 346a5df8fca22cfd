// The dequantizing references of ggml_types.h against the `gguf` package's
// gguf.quants.dequantize, block by block, on the cases tools/llm/make_dequant_cases.py writes at
// test time (fixture llm_gguf_reference): random and edge blocks of every supported type, and the
// first rows of two of the reference model's tensors.
//
// Expected results are bit-equal, with no tolerance: both sides convert the f16 scales exactly,
// and every product d * q is exact in float32 (an 11-bit significand times a quant of at most 8
// bits needs at most 19 of float32's 24, and no product leaves the normal range), so the only
// rounding is Q4_1's one float32 addition of m, correctly rounded on both sides (a fused
// multiply-add would give the same result, the product being exact). One exception: for a NaN
// input (f16, bf16, f32 elements) only NaN-ness is compared, since a conversion may quiet a
// signalling NaN (x86's F16C does), so the payload is not part of the contract.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "llm/ggml_types.h"
#include "llm/gguf.h"

namespace coproc::llm {
namespace {

const std::string kRefDir = COPROC_LLM_GGUF_REF;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// First index where `got` differs from `expected` (NaN matches NaN), or -1.
int64_t first_mismatch(const float* got, const float* expected, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(expected[i]);
    if (!both_nan && bits_of(got[i]) != bits_of(expected[i])) return i;
  }
  return -1;
}

std::vector<float> floats_of(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.elements));
  std::memcpy(out.data(), t.data, t.bytes);
  return out;
}

// The cases file, opened once per test binary; the calling test fails if it cannot be.
const GgufFile* cases() {
  static const Result<std::unique_ptr<GgufFile>> opened =
      GgufFile::open(kRefDir + "/dequant_cases.gguf");
  if (!opened.ok()) {
    ADD_FAILURE() << opened.error().message << " (written by the fixture llm_gguf_reference)";
    return nullptr;
  }
  return opened->get();
}

class GgufDequantTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GgufDequantTest, shouldMatchGgufPackageBlockByBlock) {
  const GgufFile* file = cases();
  ASSERT_NE(file, nullptr);
  const GgmlType type = GetParam();
  const std::string name = type_name(static_cast<uint32_t>(type));
  const TensorInfo* blocks = file->find_tensor(name + ".blocks");
  const TensorInfo* expected = file->find_tensor(name + ".expected");
  ASSERT_NE(blocks, nullptr) << name;
  ASSERT_NE(expected, nullptr) << name;
  ASSERT_EQ(blocks->type, type);
  ASSERT_EQ(expected->type, GgmlType::kF32);
  ASSERT_EQ(blocks->elements, expected->elements);
  const std::vector<float> want = floats_of(*expected);

  // One call per block of the type, or per 32 elements of a float type: each call's output must
  // depend on its own bytes only.
  const GgmlTypeTraits traits = type_traits(static_cast<uint32_t>(type));
  const int64_t chunk = traits.block_elems == 1 ? kQuantBlock : traits.block_elems;
  const int64_t chunk_bytes = row_bytes(type, chunk);
  ASSERT_GT(chunk_bytes, 0);
  ASSERT_EQ(blocks->elements % chunk, 0);
  std::vector<float> got(static_cast<size_t>(chunk));
  int failures = 0;
  for (int64_t b = 0; b < blocks->elements / chunk && failures < 10; ++b) {
    dequantize_row(type, blocks->data + b * chunk_bytes, got.data(), chunk);
    const int64_t j = first_mismatch(got.data(), want.data() + b * chunk, chunk);
    if (j >= 0) {
      ++failures;
      ADD_FAILURE() << name << " block " << b << " element " << j << ": got " << got[j] << " (0x"
                    << std::hex << bits_of(got[j]) << "), gguf " << want[b * chunk + j] << " (0x"
                    << bits_of(want[b * chunk + j]) << std::dec << ")";
    }
  }
  // And the whole row in one call.
  std::vector<float> row(static_cast<size_t>(blocks->elements));
  dequantize_row(type, blocks->data, row.data(), blocks->elements);
  EXPECT_EQ(first_mismatch(row.data(), want.data(), blocks->elements), -1) << name;
}

INSTANTIATE_TEST_SUITE_P(EveryType, GgufDequantTest,
                         ::testing::Values(GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16,
                                           GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1),
                         [](const auto& param_info) {
                           return std::string(type_name(static_cast<uint32_t>(param_info.param)));
                         });

// f32_to_f16 against numpy's float16 conversion (round to nearest even), on every half, the
// midpoints between neighbouring halves and the floats either side of each, and the overflow and
// underflow boundaries.
TEST(GgufF32ToF16Test, shouldConvertAsNumpyDoes) {
  const GgufFile* file = cases();
  ASSERT_NE(file, nullptr);
  const TensorInfo* input = file->find_tensor("f32_to_f16.input");
  const TensorInfo* expected = file->find_tensor("f32_to_f16.expected");
  ASSERT_NE(input, nullptr);
  ASSERT_NE(expected, nullptr);
  ASSERT_EQ(expected->type, GgmlType::kF16);
  ASSERT_EQ(input->elements, expected->elements);
  const std::vector<float> in = floats_of(*input);
  int failures = 0;
  for (int64_t i = 0; i < input->elements && failures < 10; ++i) {
    uint16_t want;
    std::memcpy(&want, expected->data + 2 * i, 2);
    const uint16_t got = f32_to_f16(in[i]);
    if (got != want) {
      ++failures;
      ADD_FAILURE() << "f32_to_f16(" << in[i] << " = 0x" << std::hex << bits_of(in[i]) << ") = 0x"
                    << got << ", numpy 0x" << want << std::dec;
    }
  }
}

// The first rows of the reference model's token embedding (Q8_0) and of a Q4_1 matrix,
// dequantized here and by the gguf package (model_rows.gguf).
TEST(GgufDequantModelTest, shouldMatchGgufPackageOnTheModelsFirstRows) {
  auto model = GgufFile::open(COPROC_LLM_MODEL);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto rows = GgufFile::open(kRefDir + "/model_rows.gguf");
  ASSERT_TRUE(rows.ok()) << rows.error().message << " (written by the fixture llm_gguf_reference)";
  int checked = 0;
  for (const char* name : {"token_embd.weight", "blk.0.attn_q.weight"}) {
    const TensorInfo* t = (*model)->find_tensor(name);
    const TensorInfo* want = (*rows)->find_tensor(std::string(name) + ".rows");
    ASSERT_NE(t, nullptr) << name;
    ASSERT_NE(want, nullptr) << name;
    ASSERT_EQ(want->dims.size(), 2u);
    ASSERT_EQ(want->dims[0], t->dims[0]) << name;
    const int64_t n = want->elements;
    ASSERT_LE(n, t->elements);
    std::vector<float> got(static_cast<size_t>(n));
    dequantize_row(t->type, t->data, got.data(), n);
    const std::vector<float> expected = floats_of(*want);
    const int64_t j = first_mismatch(got.data(), expected.data(), n);
    EXPECT_EQ(j, -1) << name << " element " << j << ": got " << got[j < 0 ? 0 : j] << ", gguf "
                     << expected[j < 0 ? 0 : j];
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace coproc::llm
