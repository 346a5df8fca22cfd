// GEMM benchmark: the MLP test model (256 -> 1024 -> 1024 -> 16) through the CPU Session on one
// thread, per batch size, with weights packed at load (gemm_packed) against OpenBLAS (B repacked
// on every call); then gemm_packed alone on the MLP's layer shapes, per micro-kernel variant;
// then what planning costs: a fresh Session's first prepare() of the MLP and of MiniLM.
// Not a test: it prints percentiles and asserts nothing.
//
//   runtime_gemm_bench [model.onnx]   (default: the build's models/mlp.onnx)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "coproc/kernels/cpu.h"
#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"

namespace {

namespace cpu = coproc::kernels::cpu;
using coproc::runtime::concrete_shape;
using coproc::runtime::CpuSession;
using coproc::runtime::LoadOptions;
using coproc::runtime::Model;
using coproc::runtime::Session;
using coproc::runtime::Shape;
using Clock = std::chrono::steady_clock;

constexpr int64_t kBatches[] = {1, 2, 4, 8, 16, 32, 64};
constexpr int64_t kInputWidth = 256;
// 2 * (256 * 1024 + 1024 * 1024 + 1024 * 16): multiply-adds of one row through the MLP.
constexpr double kFlopsPerRow = 2.0 * (256 * 1024 + 1024 * 1024 + 1024 * 16);
constexpr int kWarmupCalls = 20;
constexpr int kMinCalls = 200;
constexpr double kMinSeconds = 0.3;  // per measurement, after warm-up

struct Percentiles {
  double p50_us = 0, p90_us = 0, p99_us = 0;
};

// Warms up, then times single calls until both minimums are met.
Percentiles measure(const std::function<void()>& call) {
  for (int i = 0; i < kWarmupCalls; ++i) call();
  std::vector<double> samples_us;
  const auto start = Clock::now();
  while (static_cast<int>(samples_us.size()) < kMinCalls ||
         std::chrono::duration<double>(Clock::now() - start).count() < kMinSeconds) {
    const auto t0 = Clock::now();
    call();
    samples_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(samples_us.begin(), samples_us.end());
  const auto at = [&](double q) {
    return samples_us[static_cast<std::size_t>(q * static_cast<double>(samples_us.size() - 1))];
  };
  return {at(0.50), at(0.90), at(0.99)};
}

std::vector<float> random_floats(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// One call of the model at `batch` rows through a Session.
Percentiles run_model(Session& session, int64_t batch) {
  const Shape shape = Shape::of(std::vector<int64_t>{batch, kInputWidth});
  auto plan = session.prepare({&shape, 1});
  if (!plan.ok()) {
    std::fprintf(stderr, "prepare: %s\n", plan.error().message.c_str());
    std::exit(1);
  }
  const auto x = random_floats(static_cast<std::size_t>(batch * kInputWidth), 1);
  std::vector<float> y((*plan)->output_bytes(0) / sizeof(float));
  const void* in = x.data();
  void* out = y.data();
  return measure([&] { (void)session.run(**plan, {&in, 1}, {&out, 1}); });
}

std::shared_ptr<const Model> load(const std::string& path, bool pack) {
  auto model = Model::load(path, LoadOptions{.pack_weights = pack});
  if (!model.ok()) {
    std::fprintf(stderr, "load: %s\n", model.error().message.c_str());
    std::exit(1);
  }
  return *model;
}

void model_table(const std::string& path) {
  CpuSession blas(load(path, false));
  CpuSession packed(load(path, true));
  fmt::print("{} through runtime::Session, 1 thread; p50 per call (p90), us\n", path);
  fmt::print("packed kernel: {}\n\n", cpu::gemm_kernel_name(cpu::best_gemm_kernel()));
  fmt::print("{:>5} | {:>16} {:>7} | {:>16} {:>7} | {:>7}\n", "batch", "OpenBLAS", "us/row",
             "packed", "us/row", "speedup");
  for (const int64_t batch : kBatches) {
    const Percentiles b = run_model(blas, batch);
    const Percentiles p = run_model(packed, batch);
    const auto rows = static_cast<double>(batch);
    fmt::print("{:>5} | {:>7.1f} ({:>6.1f}) {:>7.1f} | {:>7.1f} ({:>6.1f}) {:>7.1f} | {:>6.2f}x\n",
               batch, b.p50_us, b.p90_us, b.p50_us / rows, p.p50_us, p.p90_us, p.p50_us / rows,
               b.p50_us / p.p50_us);
    if (batch == 32) {
      fmt::print("      | batch 32: OpenBLAS {:.1f} GFLOP/s, packed {:.1f} GFLOP/s\n",
                 kFlopsPerRow * rows / (b.p50_us * 1e3), kFlopsPerRow * rows / (p.p50_us * 1e3));
    }
  }
}

// gemm_packed alone over the MLP's three layers (no bias, no Relu), per supported variant.
void kernel_table() {
  struct Layer {
    int64_t k, n;
  };
  constexpr Layer kLayers[] = {{256, 1024}, {1024, 1024}, {1024, 16}};
  fmt::print("\ngemm_packed alone, the MLP's three layers; p50 per call, us (GFLOP/s)\n");
  fmt::print("{:>9}", "kernel");
  for (const int64_t batch : kBatches) fmt::print(" | {:>14}", fmt::format("batch {}", batch));
  fmt::print("\n");
  for (const cpu::GemmKernel kernel : cpu::kAllGemmKernels) {
    if (!cpu::gemm_kernel_supported(kernel)) continue;
    std::vector<cpu::PackedB> weights;
    for (const Layer& l : kLayers) {
      const auto b = random_floats(static_cast<std::size_t>(l.k * l.n), 2);
      weights.push_back(cpu::PackedB::pack(b.data(), l.k, l.n, true, kernel));
    }
    fmt::print("{:>9}", cpu::gemm_kernel_name(kernel));
    for (const int64_t batch : kBatches) {
      const auto x = random_floats(static_cast<std::size_t>(batch * 1024), 3);
      std::vector<float> h1(static_cast<std::size_t>(batch * 1024));
      std::vector<float> h2(h1.size());
      const Percentiles p = measure([&] {
        cpu::gemm_packed(batch, x.data(), 256, weights[0], h1.data(), 1024, 1.0f, 0.0f);
        cpu::gemm_packed(batch, h1.data(), 1024, weights[1], h2.data(), 1024, 1.0f, 0.0f);
        cpu::gemm_packed(batch, h2.data(), 1024, weights[2], h1.data(), 16, 1.0f, 0.0f);
      });
      const double gflops = kFlopsPerRow * static_cast<double>(batch) / (p.p50_us * 1e3);
      fmt::print(" | {:>7.1f} ({:>4.0f})", p.p50_us, gflops);
    }
    fmt::print("\n");
  }
}

// A fresh Session's first prepare(): planning every node, folding, the memory plan and the
// scratch. Every dynamic dim takes `dynamic`.
void plan_row(const std::string& path, int64_t dynamic) {
  auto model = Model::load(path);
  if (!model.ok()) {
    fmt::print("{:>28} | not here ({})\n", path.substr(path.rfind('/') + 1), model.error().message);
    return;
  }
  std::vector<Shape> shapes;
  for (const auto& spec : (*model)->inputs()) shapes.push_back(concrete_shape(spec, dynamic));
  const Percentiles p = measure([&] {
    CpuSession session(*model);
    auto plan = session.prepare(shapes);
    if (!plan.ok()) {
      std::fprintf(stderr, "prepare: %s\n", plan.error().message.c_str());
      std::exit(1);
    }
  });
  fmt::print("{:>28} | {:>7} | {:>7.1f} ({:>7.1f})\n", path.substr(path.rfind('/') + 1), dynamic,
             p.p50_us, p.p90_us);
}

void plan_table() {
  fmt::print("\nplanning: a fresh Session's first prepare(); p50 (p90), us\n");
  fmt::print("{:>28} | {:>7} | {:>17}\n", "model", "dynamic", "prepare");
  const std::string dir = COPROC_MODELS_DIR;
  for (const int64_t dynamic : {1, 32}) plan_row(dir + "/mlp.onnx", dynamic);
  for (const int64_t dynamic : {1, 128}) plan_row(dir + "/all-MiniLM-L6-v2.onnx", dynamic);
}

}  // namespace

int main(int argc, char** argv) {
  cpu::set_threads(1);
  const std::string path = argc > 1 ? argv[1] : std::string(COPROC_MODELS_DIR) + "/mlp.onnx";
  model_table(path);
  kernel_table();
  plan_table();
  return 0;
}
