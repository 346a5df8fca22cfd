// coproc-bench devices: the OpenCL device against the CPU device on one model and batch, and the
// device's GEMM throughput (devices.cc says how each is measured).
#pragma once

#include <cstdint>
#include <string>

namespace coproc::bench {

struct DevicesOptions {
  std::string model_path;
  std::string opencl_device;  // part of a device name; "": the first GPU, else the first device
  int64_t batch = 64;
  int64_t seq = 128;
  int threads = 2;  // the CPU side's intra-op threads
  int rounds = 3;
  double round_s = 2.0;
  int64_t gemm_n = 0;  // 0: no GEMM measurement
  double peak_gflops = 0;
  bool json = false;
};

int run_devices(const DevicesOptions& options);

}  // namespace coproc::bench
