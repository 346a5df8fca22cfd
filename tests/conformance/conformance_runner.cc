// Runs ONNX backend node tests (model.onnx plus test_data_set_*/{input,output}_<i>.pb, as shipped
// by Debian's libonnx-testdata) through coproc's runtime and checks every output against the
// test's reference with numpy's allclose: |actual - expected| <= atol + rtol * |expected|.
//
// Only the tests named in the allow-list run (a file, or every *.txt of a directory). A line is
// `test_name [rtol=X] [atol=Y]`; `# test_name: reason` leaves a test out and must give the reason;
// `%cover test_prefix ...` says every test in the data named test_prefix or test_prefix_* must be
// run or left out (else it FAILs); other `#` text is a comment. Prints `PASS name` or
// `FAIL name: reason` per test, then `N passed, M failed`; exits 0 only when nothing failed. A
// listed test whose directory or model is missing is a FAIL, so the list cannot silently shrink.
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

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"

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
  rt::DType dtype = rt::DType::kInvalid;
  rt::Shape shape;
  std::vector<std::byte> bytes;
  template <class T>
  T at(std::size_t k) const {
    T v;
    std::memcpy(&v, bytes.data() + k * sizeof(T), sizeof(T));
    return v;
  }
};

// Every outcome of one check: empty on success, else a reason a person can read.
using Failure = std::optional<std::string>;

// What the allow-list files say: the tests to run, the tests left out (each with its reason),
// and the name prefixes whose every test in the data must be one or the other.
struct AllowList {
  std::vector<TestEntry> entries;
  std::vector<std::pair<std::string, std::string>> left_out;  // (test, reason)
  std::vector<std::string> covered_prefixes;
};

Failure parse_allow_file(const std::string& path, AllowList* list) {
  std::ifstream in(path);
  if (!in) return "cannot open allow-list " + path;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    const std::string where = path + ":" + std::to_string(line_no);
    if (line.starts_with("%cover ")) {
      std::istringstream words(line.substr(7));
      for (std::string prefix; words >> prefix;) list->covered_prefixes.push_back(prefix);
      continue;
    }
    // "# test_name: reason" leaves a test out, and must say why.
    if (line.starts_with("# test_")) {
      const auto colon = line.find(':');
      const std::string name = line.substr(2, colon == std::string::npos ? colon : colon - 2);
      if (name.find(' ') == std::string::npos) {
        const std::string reason = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (reason.find_first_not_of(' ') == std::string::npos) {
          return where + ": '" + name + "' is left out without a reason";
        }
        list->left_out.emplace_back(name, reason);
        continue;
      }
    }
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
        return where + ": bad option '" + word + "' (expected rtol=X or atol=Y, X and Y >= 0)";
      }
      (key == "rtol" ? entry.rtol : entry.atol) = value;
    }
    list->entries.push_back(std::move(entry));
  }
  return std::nullopt;
}

// A file, or every *.txt in a directory (sorted by name).
Failure parse_allow_list(const std::string& path, AllowList* list) {
  if (!fs::is_directory(path)) return parse_allow_file(path, list);
  std::vector<std::string> files;
  for (const auto& dirent : fs::directory_iterator(path)) {
    if (dirent.path().extension() == ".txt") files.push_back(dirent.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    if (Failure failure = parse_allow_file(file, list)) return failure;
  }
  return std::nullopt;
}

// Every test in the data whose name is a covered prefix, or the prefix plus "_...", must be run
// or left out with a reason: the list cannot silently miss a test of a supported operator.
std::vector<std::string> uncovered_tests(const std::string& data_dir, const AllowList& list) {
  std::vector<std::string> names;
  for (const auto& dirent : fs::directory_iterator(data_dir)) {
    names.push_back(dirent.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> uncovered;
  for (const std::string& name : names) {
    const bool covered_prefix =
        std::any_of(list.covered_prefixes.begin(), list.covered_prefixes.end(),
                    [&](const std::string& p) {
                      return name == p || (name.starts_with(p) && name[p.size()] == '_');
                    });
    if (!covered_prefix) continue;
    const bool listed =
        std::any_of(list.entries.begin(), list.entries.end(),
                    [&](const TestEntry& e) { return e.name == name; }) ||
        std::any_of(list.left_out.begin(), list.left_out.end(),
                    [&](const auto& l) { return l.first == name; });
    if (!listed) uncovered.push_back(name);
  }
  return uncovered;
}

template <class T, class Repeated>
Failure copy_typed(const Repeated& typed, std::size_t count, const std::string& what,
                   Tensor* tensor) {
  if (static_cast<std::size_t>(typed.size()) != count) return what + ": typed data size";
  for (std::size_t k = 0; k < count; ++k) {
    const T v = static_cast<T>(typed.Get(static_cast<int>(k)));
    std::memcpy(tensor->bytes.data() + k * sizeof(T), &v, sizeof(T));
  }
  return std::nullopt;
}

// Reads a serialized onnx::TensorProto of a dtype the runtime computes on (float32, int64, int32,
// bool), from raw_data (little-endian, as is every host we build for) or the typed field.
Failure read_tensor(const fs::path& path, Tensor* tensor) {
  std::ifstream in(path, std::ios::binary);
  onnx::TensorProto proto;
  const std::string what = path.filename().string();
  if (!in || !proto.ParseFromIstream(&in)) return "cannot parse TensorProto " + path.string();
  switch (proto.data_type()) {
    case onnx::TensorProto::FLOAT:
      tensor->dtype = rt::DType::kFloat32;
      break;
    case onnx::TensorProto::INT64:
      tensor->dtype = rt::DType::kInt64;
      break;
    case onnx::TensorProto::INT32:
      tensor->dtype = rt::DType::kInt32;
      break;
    case onnx::TensorProto::BOOL:
      tensor->dtype = rt::DType::kBool;
      break;
    default:
      return what + " has data type " + onnx::TensorProto_DataType_Name(proto.data_type()) +
             ", which the runtime does not compute on";
  }
  if (proto.dims_size() > rt::kMaxRank) return what + ": rank too large";
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  const int64_t elements = rt::bounded_elements(dims);
  if (elements < 0) return what + ": bad dims";
  tensor->shape = rt::Shape::of(dims);
  const auto count = static_cast<std::size_t>(elements);
  const std::size_t size = rt::dtype_bytes(tensor->dtype);
  tensor->bytes.assign(count * size, std::byte{0});
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    if (raw.size() != count * size) return what + ": raw_data size";
    if (!raw.empty()) std::memcpy(tensor->bytes.data(), raw.data(), raw.size());
    return std::nullopt;
  }
  switch (tensor->dtype) {
    case rt::DType::kFloat32:
      return copy_typed<float>(proto.float_data(), count, what, tensor);
    case rt::DType::kInt64:
      return copy_typed<int64_t>(proto.int64_data(), count, what, tensor);
    case rt::DType::kInt32:
      return copy_typed<int32_t>(proto.int32_data(), count, what, tensor);
    default:
      return copy_typed<uint8_t>(proto.int32_data(), count, what, tensor);
  }
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

// Floats: numpy.allclose with equal_nan (NaN matches NaN, infinities must match exactly).
// Integers and bools: exact.
Failure compare(const std::string& output_name, const Tensor& expected, const Tensor& actual,
                const TestEntry& entry) {
  if (actual.dtype != expected.dtype) {
    return "output " + output_name + " has dtype " + rt::dtype_name(actual.dtype) + ", expected " +
           rt::dtype_name(expected.dtype);
  }
  const auto count = static_cast<std::size_t>(expected.shape.elements());
  for (std::size_t k = 0; k < count; ++k) {
    double want = 0;
    double got = 0;
    bool ok = false;
    switch (expected.dtype) {
      case rt::DType::kFloat32:
        want = expected.at<float>(k);
        got = actual.at<float>(k);
        ok = (std::isnan(want) && std::isnan(got)) ||
             (std::isinf(want) ? got == want
                               : std::fabs(got - want) <= entry.atol + entry.rtol * std::fabs(want));
        break;
      case rt::DType::kInt64:
        ok = expected.at<int64_t>(k) == actual.at<int64_t>(k);
        want = static_cast<double>(expected.at<int64_t>(k));
        got = static_cast<double>(actual.at<int64_t>(k));
        break;
      case rt::DType::kInt32:
        ok = expected.at<int32_t>(k) == actual.at<int32_t>(k);
        want = expected.at<int32_t>(k);
        got = actual.at<int32_t>(k);
        break;
      default:
        want = expected.at<uint8_t>(k) != 0;
        got = actual.at<uint8_t>(k) != 0;
        ok = want == got;
        break;
    }
    if (ok) continue;
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
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype != model.inputs()[i].dtype) {
      return "input " + model.inputs()[i].name + " is " + rt::dtype_name(inputs[i].dtype) +
             ", the model says " + rt::dtype_name(model.inputs()[i].dtype);
    }
    shapes.push_back(inputs[i].shape);
    input_ptrs.push_back(inputs[i].bytes.data());
  }
  // Values too: some tests feed a shape (Reshape's, Expand's) or axes as an input.
  auto plan = session.prepare(shapes, input_ptrs);
  if (!plan) return "prepare: " + plan.error().message;
  std::vector<Tensor> actual(expected.size());
  std::vector<void*> output_ptrs;
  for (std::size_t j = 0; j < expected.size(); ++j) {
    const rt::Shape& shape = (*plan)->output_shape(j);
    if (!(shape == expected[j].shape)) {
      return "output " + model.outputs()[j].name + " has shape " + shape.to_string() +
             ", expected " + expected[j].shape.to_string();
    }
    actual[j].dtype = model.outputs()[j].dtype;
    actual[j].shape = shape;
    actual[j].bytes.assign((*plan)->output_bytes(j), std::byte{0});
    output_ptrs.push_back(actual[j].bytes.data());
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
  rt::CpuSession session(std::move(model).value());
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

  AllowList list;
  if (Failure failure = parse_allow_list(allow_list, &list)) {
    std::fprintf(stderr, "%s\n", failure->c_str());
    return 2;
  }
  int passed = 0;
  int failed = 0;
  for (const std::string& name : uncovered_tests(data_dir, list)) {
    std::printf("FAIL %s: a test of a covered operator that the allow-list neither runs nor "
                "leaves out with a reason\n",
                name.c_str());
    ++failed;
  }
  for (const TestEntry& entry : list.entries) {
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
