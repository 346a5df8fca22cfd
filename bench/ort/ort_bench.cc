#include "ort/ort_bench.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/machine.h"
#include "coproc/kernels/cpu.h"
#include "ort/ort_process.h"

namespace coproc::bench {

TempDir::TempDir() {
  char tmpl[] = "/tmp/coproc-ort-XXXXXX";
  if (::mkdtemp(tmpl)) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<InputTensor> make_inputs(const runtime::Model& model, const ShapeRule& rule) {
  std::vector<InputTensor> inputs;
  for (std::size_t i = 0; i < model.inputs().size(); ++i) {
    const auto& spec = model.inputs()[i];
    InputTensor t{spec.name, spec.dtype, resolve_dims(spec.dims, rule), {}};
    int64_t elements = 1;
    for (int64_t d : t.dims) elements *= d;
    t.bytes.resize(static_cast<std::size_t>(elements) * runtime::dtype_bytes(spec.dtype));
    fill_input(static_cast<int>(spec.dtype), spec.name, i, t.bytes);
    inputs.push_back(std::move(t));
  }
  return inputs;
}

std::string shapes_text(const std::vector<InputTensor>& inputs) {
  std::string text;
  for (const auto& t : inputs)
    text += fmt::format("{}{}[{}]", text.empty() ? "" : ", ", t.name, fmt::join(t.dims, ", "));
  return text;
}

namespace {
std::string input_path(const std::string& dir, const std::string& prefix, std::size_t i) {
  return fmt::format("{}/{}.in{}.raw", dir, prefix, i);
}
}  // namespace

bool write_inputs(const std::vector<InputTensor>& inputs, const std::string& dir,
                  const std::string& prefix, std::string* error) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::string path = input_path(dir, prefix, i);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(inputs[i].bytes.data()),
              static_cast<std::streamsize>(inputs[i].bytes.size()));
    out.close();
    if (!out) {
      *error = "cannot write " + path;
      return false;
    }
  }
  return true;
}

bool send_inputs(OrtProcess& worker, const std::vector<InputTensor>& inputs, const std::string& dir,
                 const std::string& prefix, std::string* error) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& t = inputs[i];
    if (!worker.set_input(t.name, runtime::dtype_name(t.dtype), t.dims,
                          input_path(dir, prefix, i))) {
      *error = worker.error();
      return false;
    }
  }
  return true;
}

bool model_has_seq(const runtime::Model& model) {
  for (const auto& spec : model.inputs()) {
    if (has_seq_dim(spec.dims)) return true;
  }
  return false;
}

std::string machine_text() {
  return fmt::format("{}, {} cores, coproc GEMM kernel {}", cpu_model(),
                     std::thread::hardware_concurrency(),
                     kernels::cpu::gemm_kernel_name(kernels::cpu::best_gemm_kernel()));
}

std::string machine_json() {
  return fmt::format(R"("cpu":{},"cores":{},"coproc_gemm_kernel":"{}")", json_string(cpu_model()),
                     std::thread::hardware_concurrency(),
                     kernels::cpu::gemm_kernel_name(kernels::cpu::best_gemm_kernel()));
}

std::string fmt_us(int64_t ns) { return fmt::format("{:.2f}", static_cast<double>(ns) / 1000.0); }

}  // namespace coproc::bench
