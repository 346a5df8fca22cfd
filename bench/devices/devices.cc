// coproc-bench devices: the OpenCL device against the CPU on one model at one batch size, and the
// device's GEMM throughput, in one run.
//
// Model throughput: the CPU device (`threads` intra-op threads) and the OpenCL device, each through
// its runtime::Session (device.h), run the same batch on the same inputs (inputs.h), outputs
// compared first; then `rounds` rounds in turn, each side running back to back for `seconds`.
// Throughput is rows (the batch dim) per second over all rounds; the device's includes its
// transfers, since its Session::run does them.
//
// GEMM (--gemm N): an N x N x N float32 GEMM on the device through CLBlast, timed over repeated
// calls between waits, against the same product on the CPU device (the packed GEMM). GFLOP/s =
// 2 N^3 / time. With --peak-gflops the device's share of its FP32 peak is printed too: OpenCL
// reports no FLOPs per clock, so the peak is the user's to give.
#include "devices/devices.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/inputs.h"
#include "coproc/kernels/cpu.h"
#include "coproc/kernels/opencl.h"
#include "coproc/kernels/parallel.h"
#include "coproc/runtime/device.h"
#include "device/opencl/cl_session.h"

namespace coproc::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Inputs and outputs of one batch for a model, as inputs.h lays them out.
struct Batch {
  std::vector<runtime::Shape> shapes;
  std::vector<std::vector<std::byte>> inputs;
  std::vector<const void*> in;
};

Batch make_batch(const runtime::Model& model, int64_t batch, int64_t seq) {
  Batch b;
  for (std::size_t i = 0; i < model.inputs().size(); ++i) {
    const runtime::TensorSpec& spec = model.inputs()[i];
    const auto dims = resolve_dims(spec.dims, ShapeRule{batch, seq});
    b.shapes.push_back(runtime::Shape::of(dims));
    b.inputs.emplace_back(static_cast<std::size_t>(b.shapes.back().elements()) *
                          runtime::dtype_bytes(spec.dtype));
    fill_input(static_cast<int>(spec.dtype), spec.name, i, b.inputs.back());
    b.in.push_back(b.inputs.back().data());
  }
  return b;
}

// One side: its plan, its output buffers, and the runs it made.
struct Side {
  runtime::Session& session;
  const runtime::Plan* plan = nullptr;
  std::vector<std::vector<float>> outputs;
  std::vector<void*> out;
  int64_t runs = 0;
  double seconds = 0;

  std::string prepare(const Batch& b) {
    auto p = session.prepare(b.shapes, b.in);
    if (!p.ok()) return p.error().message;
    plan = *p;
    for (std::size_t j = 0; j < plan->num_outputs(); ++j) {
      outputs.emplace_back((plan->output_bytes(j) + sizeof(float) - 1) / sizeof(float));
      out.push_back(outputs.back().data());
    }
    return {};
  }
  std::string run(const Batch& b) {
    Status s = session.run(*plan, b.in, out);
    return s.ok() ? std::string() : s.error().message;
  }
  // Runs back to back for `limit` seconds (one run at least).
  std::string round(const Batch& b, double limit) {
    const auto t0 = Clock::now();
    do {
      if (std::string e = run(b); !e.empty()) return e;
      ++runs;
    } while (seconds_since(t0) < limit);
    seconds += seconds_since(t0);
    return {};
  }
};

// Largest |a - b| over the first output, and the largest |b|, both as floats.
std::pair<double, double> compare_first(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return {diff, scale};
}

struct GemmResult {
  double device_gflops = 0;
  double cpu_gflops = 0;
};

// N^3 GEMMs on both devices, repeated for at least `seconds` each.
std::string time_gemm(kernels::opencl::Device& device, int64_t n, double seconds,
                      GemmResult* result) {
  namespace ocl = kernels::opencl;
  const auto bytes = static_cast<std::size_t>(n * n) * sizeof(float);
  std::string error;
  ocl::Buffer a = device.alloc(bytes, &error), b = device.alloc(bytes, &error),
              c = device.alloc(bytes, &error);
  if (c.get() == nullptr) return error;
  std::vector<float> host(static_cast<std::size_t>(n * n), 0.5f);
  device.write(a.at(), host.data(), bytes);
  device.write(b.at(), host.data(), bytes);
  if (!device.reserve_gemm(false, false, n, n, n, n, n, n, &error)) return error;
  if (const ocl::Failure f = device.finish(); f.failed) return f.message;
  const double flops = 2.0 * static_cast<double>(n) * n * n;
  int64_t calls = 0;
  const auto t0 = Clock::now();
  do {
    for (int k = 0; k < 4; ++k) {
      device.gemm(false, false, n, n, n, 1.0f, a.at(), n, b.at(), n, 0.0f, c.at(), n);
    }
    if (const ocl::Failure f = device.finish(); f.failed) return f.message;
    calls += 4;
  } while (seconds_since(t0) < seconds);
  result->device_gflops = flops * static_cast<double>(calls) / seconds_since(t0) / 1e9;

  const kernels::cpu::PackedB packed = kernels::cpu::PackedB::pack(host.data(), n, n, false);
  std::vector<float> out(host.size());
  calls = 0;
  const auto t1 = Clock::now();
  do {
    kernels::cpu::gemm_packed(n, host.data(), n, packed, out.data(), n, 1.0f, 0.0f);
    ++calls;
  } while (seconds_since(t1) < seconds);
  result->cpu_gflops = flops * static_cast<double>(calls) / seconds_since(t1) / 1e9;
  return {};
}

}  // namespace

int run_devices(const DevicesOptions& o) {
  kernels::cpu::set_threads(1);
  kernels::cpu::set_intra_op_threads(o.threads);
  kernels::opencl::Selector selector;
  selector.device = o.opencl_device;
  auto device = runtime::ClDevice::open(selector);
  if (!device.ok()) {
    std::fprintf(stderr, "coproc-bench: %s\n", device.error().message.c_str());
    return 1;
  }
  runtime::LoadOptions load;
  load.keep_unpacked = true;
  auto model = runtime::Model::load(o.model_path, load);
  if (!model.ok()) {
    std::fprintf(stderr, "coproc-bench: %s\n", model.error().message.c_str());
    return 1;
  }
  auto host = runtime::open_device(runtime::DeviceKind::kCpu);
  if (!host.ok()) {
    std::fprintf(stderr, "coproc-bench: %s\n", host.error().message.c_str());
    return 1;
  }
  auto on_cpu = host.value()->place(model.value());
  auto on_device = device.value()->place(model.value());
  for (const auto* placed : {&on_cpu, &on_device}) {
    if (!placed->ok()) {
      std::fprintf(stderr, "coproc-bench: %s\n", placed->error().message.c_str());
      return 1;
    }
  }
  const std::unique_ptr<runtime::Session> cpu_session = on_cpu.value()->open_session();
  const std::unique_ptr<runtime::Session> gpu_session = on_device.value()->open_session();
  Side cpu{*cpu_session};
  Side gpu{*gpu_session};
  const Batch batch = make_batch(*model.value(), o.batch, o.seq);
  for (const std::string& e :
       {cpu.prepare(batch), gpu.prepare(batch), cpu.run(batch), gpu.run(batch)}) {
    if (!e.empty()) {
      std::fprintf(stderr, "coproc-bench: %s\n", e.c_str());
      return 1;
    }
  }
  const auto [diff, scale] = compare_first(gpu.outputs[0], cpu.outputs[0]);
  for (int r = 0; r < o.rounds; ++r) {
    for (const std::string& e : {cpu.round(batch, o.round_s), gpu.round(batch, o.round_s)}) {
      if (!e.empty()) {
        std::fprintf(stderr, "coproc-bench: %s\n", e.c_str());
        return 1;
      }
    }
  }
  const double cpu_rows = static_cast<double>(cpu.runs * o.batch) / cpu.seconds;
  const double gpu_rows = static_cast<double>(gpu.runs * o.batch) / gpu.seconds;
  GemmResult gemm;
  if (o.gemm_n > 0) {
    if (std::string e = time_gemm(device.value()->device(), o.gemm_n, o.round_s, &gemm);
        !e.empty()) {
      std::fprintf(stderr, "coproc-bench: GEMM: %s\n", e.c_str());
      return 1;
    }
  }
  const auto& info = device.value()->info();
  if (o.json) {
    std::printf(
        R"({{"device":"%s","platform":"%s","model":"%s","batch":%lld,"seq":%lld,"cpu_threads":%d,"cpu_rows_per_s":%.2f,"device_rows_per_s":%.2f,"device_over_cpu":%.4f,"max_abs_diff":%.3g,"max_abs_cpu":%.3g,"gemm_n":%lld,"device_gemm_gflops":%.2f,"cpu_gemm_gflops":%.2f,"peak_gflops":%.1f}})"
        "\n",
        info.name.c_str(), info.platform.c_str(), o.model_path.c_str(),
        static_cast<long long>(o.batch), static_cast<long long>(o.seq), o.threads, cpu_rows,
        gpu_rows, gpu_rows / cpu_rows, diff, scale, static_cast<long long>(o.gemm_n),
        gemm.device_gflops, gemm.cpu_gflops, o.peak_gflops);
    return 0;
  }
  std::printf("device: %s (%s)\n", info.name.c_str(), info.platform.c_str());
  std::printf("model %s, batch %lld, seq %lld; outputs max |diff| %.3g (max |cpu| %.3g)\n",
              o.model_path.c_str(), static_cast<long long>(o.batch), static_cast<long long>(o.seq),
              diff, scale);
  std::printf("  cpu (%d threads): %10.1f rows/s over %lld runs\n", o.threads, cpu_rows,
              static_cast<long long>(cpu.runs));
  std::printf("  opencl device:    %10.1f rows/s over %lld runs\n", gpu_rows,
              static_cast<long long>(gpu.runs));
  std::printf("  device / cpu throughput = %.3f\n", gpu_rows / cpu_rows);
  if (o.gemm_n > 0) {
    std::printf("GEMM %lld^3: device %.1f GFLOP/s, cpu %.1f GFLOP/s (device / cpu %.2f)",
                static_cast<long long>(o.gemm_n), gemm.device_gflops, gemm.cpu_gflops,
                gemm.device_gflops / gemm.cpu_gflops);
    if (o.peak_gflops > 0) {
      std::printf(", %.1f%% of the given FP32 peak %.0f GFLOP/s",
                  100.0 * gemm.device_gflops / o.peak_gflops, o.peak_gflops);
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace coproc::bench
