// Runs ONNX backend node tests (model.onnx plus test_data_set_*/{input,output}_<i>.pb, as shipped
// by Debian's libonnx-testdata) through coproc's runtime and checks every output against the
// test's reference with numpy's allclose: |actual - expected| <= atol + rtol * |expected|.
//
// Only the tests named in the allow-list run; a line is `test_name [rtol=X] [atol=Y]`, `#` starts
// a comment. Prints `PASS name` or `FAIL name: reason` per test, then `N passed, M failed`; exits 0
// only when nothing failed. A listed test whose directory or model is missing is a FAIL, so the
// list cannot silently shrink.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/model.h"

namespace {

namespace fs = std::filesystem;
namespace rt = coproc::runtime;

// The defaults; a test may loosen them on its allow-list line.
constexpr double kDefaultRtol = 1e-3;
constexpr double kDefaultAtol = 1e-7;

struct TestEntry {
  std::string name;
  double rtol = kDefaultRtol;
  double atol = kDefaultAtol;
};

struct Tensor {
  rt::Shape shape;
  std::vector<float> data;
};

// Every outcome of one check: empty on success, else a reason a person can read.
using Failure = std::optional<std::string>;

Failure parse_allow_list(const std::string& path, std::vector<TestEntry>* entries) {
  std::ifstream in(path);
  if (!in) return "cannot open allow-list " + path;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    TestEntry entry;
    if (!(words >> entry.name)) continue;
    for (std::string word; words >> word;) {
      const auto eq = word.find('=');
      const std::string key = word.substr(0, eq);
      char* end = nullptr;
      const double value = eq == std::string::npos ? 0 : std::strtod(word.c_str() + eq + 1, &end);
      if ((key != "rtol" && key != "atol") || end == nullptr || *end != '\0' || !(value >= 0)) {
        return path + ":" + std::to_string(line_no) + ": bad option '" + word +
               "' (expected rtol=X or atol=Y, X and Y >= 0)";
      }
      (key == "rtol" ? entry.rtol : entry.atol) = value;
    }
    entries->push_back(std::move(entry));
  }
  return std::nullopt;
}

// Reads a serialized onnx::TensorProto holding float32 (float_data or little-endian raw_data).
Failure read_tensor(const fs::path& path, Tensor* tensor) {
  std::ifstream in(path, std::ios::binary);
  onnx::TensorProto proto;
  if (!in || !proto.ParseFromIstream(&in)) return "cannot parse TensorProto " + path.string();
  if (proto.data_type() != onnx::TensorProto::FLOAT) {
    return path.filename().string() + " has data type " + std::to_string(proto.data_type()) +
           ", only float32 is computed";
  }
  if (proto.dims_size() > rt::kMaxRank) return path.filename().string() + ": rank too large";
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  const int64_t elements = rt::bounded_elements(dims);
  if (elements < 0) return path.filename().string() + ": bad dims";
  tensor->shape = rt::Shape::of(dims);
  const auto count = static_cast<std::size_t>(elements);
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    if (raw.size() != count * sizeof(float)) return path.filename().string() + ": raw_data size";
    tensor->data.resize(count);
    // The test data is little-endian, as is every host we build for.
    std::memcpy(tensor->data.data(), raw.data(), raw.size());
  } else {
    if (static_cast<std::size_t>(proto.float_data_size()) != count) {
      return path.filename().string() + ": float_data size";
    }
    tensor->data.assign(proto.float_data().begin(), proto.float_data().end());
  }
  return std::nullopt;
}

// Reads prefix_0.pb, prefix_1.pb, ... until the first missing index.
Failure read_tensors(const fs::path& dir, const std::string& prefix, std::vector<Tensor>* out) {
  for (int i = 0;; ++i) {
    const fs::path file = dir / (prefix + "_" + std::to_string(i) + ".pb");
    if (!fs::exists(file)) return std::nullopt;
    Tensor tensor;
    if (Failure failure = read_tensor(file, &tensor)) return failure;
    out->push_back(std::move(tensor));
  }
}

// numpy.allclose with equal_nan: NaN matches NaN, infinities must match exactly.
Failure compare(const std::string& output_name, const Tensor& expected,
                const std::vector<float>& actual, const TestEntry& entry) {
  for (std::size_t k = 0; k < expected.data.size(); ++k) {
    const double want = expected.data[k];
    const double got = actual[k];
    if (std::isnan(want) && std::isnan(got)) continue;
    if (std::isinf(want) ? got == want
                         : std::fabs(got - want) <= entry.atol + entry.rtol * std::fabs(want)) {
      continue;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "output %s element %zu: got %.9g, expected %.9g",
                  output_name.c_str(), k, got, want);
    return std::string(buf);
  }
  return std::nullopt;
}

Failure run_data_set(rt::Session& session, const fs::path& dir, const TestEntry& entry) {
  const rt::Model& model = session.model();
  std::vector<Tensor> inputs;
  std::vector<Tensor> expected;
  if (Failure failure = read_tensors(dir, "input", &inputs)) return failure;
  if (Failure failure = read_tensors(dir, "output", &expected)) return failure;
  if (inputs.size() != model.inputs().size() || expected.size() != model.outputs().size()) {
    return dir.filename().string() + ": " + std::to_string(inputs.size()) + " inputs and " +
           std::to_string(expected.size()) + " outputs, the model has " +
           std::to_string(model.inputs().size()) + " and " + std::to_string(model.outputs().size());
  }
  std::vector<rt::Shape> shapes;
  std::vector<const void*> input_ptrs;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape);
    input_ptrs.push_back(t.data.data());
  }
  auto plan = session.prepare(shapes);
  if (!plan) return "prepare: " + plan.error().message;
  std::vector<std::vector<float>> actual(expected.size());
  std::vector<void*> output_ptrs;
  for (std::size_t j = 0; j < expected.size(); ++j) {
    const rt::Shape& shape = (*plan)->output_shape(j);
    if (!(shape == expected[j].shape)) {
      return "output " + model.outputs()[j].name + " has shape " + shape.to_string() +
             ", expected " + expected[j].shape.to_string();
    }
    actual[j].resize((*plan)->output_bytes(j) / sizeof(float));
    output_ptrs.push_back(actual[j].data());
  }
  if (coproc::Status status = session.run(**plan, input_ptrs, output_ptrs); !status) {
    return "run: " + status.error().message;
  }
  for (std::size_t j = 0; j < expected.size(); ++j) {
    if (Failure failure = compare(model.outputs()[j].name, expected[j], actual[j], entry)) {
      return dir.filename().string() + ": " + *failure;
    }
  }
  return std::nullopt;
}

Failure run_test(const fs::path& data_dir, const TestEntry& entry) {
  const fs::path test_dir = data_dir / entry.name;
  auto model = rt::Model::load((test_dir / "model.onnx").string());
  if (!model) {
    return std::string("load: ") + coproc::error_code_name(model.error().code) + ": " +
           model.error().message;
  }
  std::vector<fs::path> data_sets;
  for (const auto& dirent : fs::directory_iterator(test_dir)) {
    if (dirent.is_directory() && dirent.path().filename().string().starts_with("test_data_set_")) {
      data_sets.push_back(dirent.path());
    }
  }
  if (data_sets.empty()) return "no test_data_set_* in " + test_dir.string();
  std::sort(data_sets.begin(), data_sets.end());
  rt::Session session(std::move(model).value());
  for (const fs::path& dir : data_sets) {
    if (Failure failure = run_data_set(session, dir, entry)) return failure;
  }
  return std::nullopt;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --data DIR --allow-list FILE\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  std::string data_dir;
  std::string allow_list;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data") {
      data_dir = argv[i + 1];
    } else if (flag == "--allow-list") {
      allow_list = argv[i + 1];
    } else {
      return usage(argv[0]);
    }
  }
  if (argc != 5 || data_dir.empty() || allow_list.empty()) return usage(argv[0]);

  std::vector<TestEntry> entries;
  if (Failure failure = parse_allow_list(allow_list, &entries)) {
    std::fprintf(stderr, "%s\n", failure->c_str());
    return 2;
  }
  int passed = 0;
  int failed = 0;
  for (const TestEntry& entry : entries) {
    if (Failure failure = run_test(data_dir, entry)) {
      std::printf("FAIL %s: %s\n", entry.name.c_str(), failure->c_str());
      ++failed;
    } else {
      std::printf("PASS %s\n", entry.name.c_str());
      ++passed;
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
