// coproc-bench devices: its flags, registered here so main.cc only wires the subcommands.
#include "devices/devices_command.h"

#include <cstdio>
#include <memory>
#include <string>

#include "devices/devices.h"

namespace coproc::bench {

Command add_devices_command(CLI::App& app) {
  auto s = std::make_shared<DevicesOptions>();
  auto* devices = app.add_subcommand(
      "devices",
      "the OpenCL device against the CPU on one model at one batch size (rows per second, "
      "outputs compared first), and with --gemm N the device's N^3 SGEMM GFLOP/s against the "
      "CPU's, in one run");
  devices->add_option("--model", s->model_path, "ONNX file (or a bundled model's name)")
      ->required();
  devices->add_option("--opencl-device", s->opencl_device,
                      "part of the device's name (default: the first GPU, else the first device)");
  devices->add_option("--batch", s->batch, "the first dynamic dim")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  devices->add_option("--seq", s->seq, "the second dynamic dim")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  devices->add_option("--threads", s->threads, "the CPU side's intra-op threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  devices->add_option("--rounds", s->rounds, "the two sides take turns this many times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  devices->add_option("--seconds", s->round_s, "seconds per side per round")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  devices->add_option("--gemm", s->gemm_n, "also time an N x N x N SGEMM (0: no)")
      ->check(CLI::Range(int64_t{0}, int64_t{65536}))
      ->capture_default_str();
  devices
      ->add_option("--peak-gflops", s->peak_gflops,
                   "the device's FP32 peak, to print the GEMM's share of it")
      ->check(CLI::Range(0.0, 1e7));
  devices->add_flag("--json", s->json, "print one JSON object");
  return {devices, [s] {
            ModelChoice choice;
            std::string error;
            if (!resolve_model(s->model_path, &choice, &error)) {
              std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
              return 2;
            }
            s->model_path = choice.path;
            return run_devices(*s);
          }};
}

}  // namespace coproc::bench
