#include "ort/coproc_runner.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "common/cpu_session.h"

namespace coproc::bench {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Bytes per element of `dtype` (numpy's names, which runtime::dtype_name shares); 0 when the
// comparison does not know it.
std::size_t element_bytes(std::string_view dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "int64") return 8;
  if (dtype == "int8" || dtype == "uint8" || dtype == "bool") return 1;
  return 0;
}

// Element i of a dense tensor of `dtype`, one element_bytes() knows.
double element(std::string_view dtype, const std::byte* data, std::size_t i) {
  auto read = [&]<typename T>(T) {
    T v;
    std::memcpy(&v, data + i * sizeof(T), sizeof(T));
    return static_cast<double>(v);
  };
  if (dtype == "float32") return read(float{});
  if (dtype == "int64") return read(int64_t{});
  if (dtype == "int32") return read(int32_t{});
  if (dtype == "int8") return read(int8_t{});
  return read(uint8_t{});
}

}  // namespace

CoprocRunner::CoprocRunner(std::shared_ptr<const runtime::Model> model,
                           const std::vector<InputTensor>& inputs)
    : session_(cpu_session(std::move(model))) {
  std::vector<runtime::Shape> shapes;
  for (const auto& t : inputs) {
    shapes.push_back(runtime::Shape::of(t.dims));
    in_.push_back(t.bytes.data());
  }
  auto plan = session_->prepare(shapes, in_);
  if (!plan.ok()) {
    error_ = plan.error().message;
    return;
  }
  plan_ = plan.value();
  for (std::size_t j = 0; j < plan_->num_outputs(); ++j) {
    out_.emplace_back(plan_->output_bytes(j));
    out_ptrs_.push_back(out_.back().data());
  }
}

bool CoprocRunner::run() {
  if (!plan_) return false;  // error_ says why prepare() failed
  Status s = session_->run(*plan_, in_, out_ptrs_);
  if (!s.ok()) error_ = s.error().message;
  return s.ok();
}

std::vector<int64_t> CoprocRunner::time(int64_t iterations, int64_t max_ns) {
  std::vector<int64_t> samples;
  const int64_t end = now_ns() + max_ns;
  for (;;) {
    int64_t t0 = now_ns();
    if (!run()) return {};
    int64_t t1 = now_ns();
    samples.push_back(t1 - t0);
    if (static_cast<int64_t>(samples.size()) >= iterations || t1 >= end) return samples;
  }
}

std::optional<Agreement> CoprocRunner::compare(const std::vector<OrtOutput>& ort,
                                               const std::string& dir) {
  const auto& specs = session_->model().outputs();
  if (ort.size() != out_.size()) {
    error_ = fmt::format("ORT gives {} outputs, coproc {}", ort.size(), out_.size());
    return std::nullopt;
  }
  Agreement a;
  for (std::size_t j = 0; j < out_.size(); ++j) {
    const runtime::Shape& ours = plan_->output_shape(j);
    if (runtime::Shape::of(ort[j].dims) != ours) {
      error_ = fmt::format("output {} ({}): coproc shape {}, ORT {}", j, specs[j].name,
                           ours.to_string(), runtime::Shape::of(ort[j].dims).to_string());
      return std::nullopt;
    }
    std::ifstream in(fmt::format("{}/ort.out{}.raw", dir, j), std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* theirs = reinterpret_cast<const std::byte*>(raw.data());
    const char* our_dtype = runtime::dtype_name(specs[j].dtype);
    const auto n = static_cast<std::size_t>(ours.elements());
    if (element_bytes(our_dtype) == 0 || element_bytes(ort[j].dtype) == 0) {
      error_ = fmt::format("output {} ({}): cannot compare dtypes {} and {}", j, specs[j].name,
                           our_dtype, ort[j].dtype);
      return std::nullopt;
    }
    if (raw.size() != n * element_bytes(ort[j].dtype)) {
      error_ = fmt::format("output {} ({}): ORT's file has {} bytes, not {}", j, specs[j].name,
                           raw.size(), n * element_bytes(ort[j].dtype));
      return std::nullopt;
    }
    for (std::size_t i = 0; i < n; ++i) {
      double x = element(our_dtype, out_[j].data(), i), y = element(ort[j].dtype, theirs, i);
      double diff = std::fabs(x - y);
      if (!(diff <= kAbsTolerance + kRelTolerance * std::fabs(y))) a.agree = false;  // NaN too
      a.max_abs_diff = std::max(a.max_abs_diff, std::isnan(diff) ? INFINITY : diff);
      a.ort_max_abs = std::max(a.ort_max_abs, std::fabs(y));
    }
  }
  return a;
}

}  // namespace coproc::bench
