#include "common/inputs.h"

#include <cstring>
#include <random>

namespace coproc::bench {

namespace {

// Same numbers as coproc_dtype and runtime::DType (the wire schema's DType).
enum : int { kFloat32 = 1, kInt64 = 3, kInt32 = 4, kBool = 7 };

constexpr uint64_t kSeed = 42;
// Token ids below this are valid in every BERT-family vocabulary.
constexpr int64_t kTokenIdLimit = 1000;

template <typename T, typename Make>
void fill(std::span<std::byte> data, Make make) {
  const std::size_t n = data.size() / sizeof(T);
  for (std::size_t i = 0; i < n; ++i) {
    T v = make();
    std::memcpy(data.data() + i * sizeof(T), &v, sizeof(T));
  }
}

}  // namespace

std::vector<int64_t> resolve_dims(std::span<const int64_t> declared, const ShapeRule& rule) {
  std::vector<int64_t> dims(declared.begin(), declared.end());
  int dynamic = 0;
  for (auto& d : dims) {
    if (d >= 0) continue;
    d = dynamic == 0 ? rule.batch : dynamic == 1 ? rule.seq : 1;
    ++dynamic;
  }
  return dims;
}

bool has_seq_dim(std::span<const int64_t> declared) {
  int dynamic = 0;
  for (int64_t d : declared) dynamic += d < 0;
  return dynamic >= 2;
}

void fill_input(int dtype, std::string_view name, std::size_t index, std::span<std::byte> data) {
  std::mt19937_64 rng(kSeed + index);
  const bool mask = name.find("mask") != std::string_view::npos;
  std::uniform_real_distribution<float> real(-1.f, 1.f);
  std::uniform_int_distribution<int64_t> token(0, kTokenIdLimit - 1);
  switch (dtype) {
    case kFloat32:
      fill<float>(data, [&] { return real(rng); });
      break;
    case kInt64:
      fill<int64_t>(data, [&] { return mask ? int64_t{1} : token(rng); });
      break;
    case kInt32:
      fill<int32_t>(data, [&] { return mask ? 1 : static_cast<int32_t>(token(rng)); });
      break;
    case kBool:
      std::memset(data.data(), 1, data.size());
      break;
    default:
      std::memset(data.data(), 0, data.size());
  }
}

}  // namespace coproc::bench
