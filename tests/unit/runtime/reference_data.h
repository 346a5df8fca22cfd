// Reference cases written by tools/make_test_models.py: inputs and ONNX Runtime outputs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace coproc::runtime::testing {

// The models directory the build generates (tools/CMakeLists.txt).
std::string models_dir();
std::string model_path(const std::string& file);

struct RefTensor {
  std::string name;
  std::vector<int64_t> dims;
  std::vector<float> data;
};

struct RefCase {
  std::string id;          // "mlp.b8"
  std::string model_file;  // "mlp.onnx"
  std::vector<RefTensor> inputs;
  std::vector<RefTensor> outputs;
};

// Every case in ref/manifest.txt whose model is <stem>.onnx, with its data read. Aborts the
// test (via gtest assertions in the caller) when the manifest is missing: check the result.
std::vector<RefCase> load_cases(const std::string& stem);

// How far `got` is from ONNX Runtime's `want`: max_i |got_i - want_i| / max(max_j |want_j|,
// kAbsoluteFloor). Errors are relative to the tensor's largest magnitude rather than to each
// element, because float32 sums of K products differ by about sqrt(K) ulp of the terms'
// magnitude between any two BLAS libraries; an output element near zero has no relative digits
// to agree on. The floor only matters for all-zero tensors.
inline constexpr double kAbsoluteFloor = 1e-6;
double relative_error(std::span<const float> got, std::span<const float> want);

}  // namespace coproc::runtime::testing
