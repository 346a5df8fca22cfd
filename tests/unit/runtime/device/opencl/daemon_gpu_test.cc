// Through coprocd: one model file served three times, pinned to the CPU, pinned to the OpenCL
// device (PoCL in CI) and on auto. The same requests give the same results within the cross-device
// tolerance, the daemon says where each runs, and batches on the device are answered like the
// CPU's. Label opencl.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "coproc.h"
#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> three_mlps() {
  const std::string mlp = models_dir() + "/mlp.onnx";
  return {"--model",         "mlp_cpu=" + mlp, "--model",     "mlp_gpu=" + mlp, "--model",
          "mlp_auto=" + mlp, "--model-device", "mlp_gpu=gpu", "--model-device", "mlp_auto=auto"};
}

// One inference of `rows` rows of `input` on `model`; the output.
std::vector<float> infer(ClientHandle& client, const char* model, const std::vector<float>& input,
                         int64_t rows) {
  coproc_tensor in = arena_tensor(client.c, {rows, 256}, input.data());
  coproc_tensor out = arena_tensor(client.c, {rows, 16});
  const coproc_status s =
      coproc_infer(client.c, client.model(model), &in, 1, &out, 1, 30'000'000'000);
  EXPECT_EQ(s, COPROC_OK) << model << ": " << coproc_last_error();
  std::vector<float> result(static_cast<const float*>(out.data),
                            static_cast<const float*>(out.data) + rows * 16);
  coproc_free(client.c, in.data);
  coproc_free(client.c, out.data);
  return result;
}

// coproc-stat --json for the daemon at `socket`.
std::string stat_json(const std::string& socket) {
  std::string out;
  FILE* p = ::popen(
      (std::string(COPROC_TEST_BIN_DIR) + "/coproc-stat --json --socket " + socket).c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    err += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return err / std::max(norm, 1e-30);
}

TEST(DaemonOnOpenCl, shouldAnswerAModelPinnedToTheDeviceAsTheCpuDoes) {
  DaemonProcess daemon(three_mlps());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("OpenCL device: "));
  EXPECT_THAT(daemon.log(), HasSubstr("model 'mlp_auto' on auto, measured at length 1: batch 1:"));
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const int64_t rows : {1, 5, 32}) {
    std::vector<float> input(static_cast<std::size_t>(rows * 256));
    for (float& x : input) x = dist(rng);
    const auto cpu = infer(client, "mlp_cpu", input, rows);
    const auto gpu = infer(client, "mlp_gpu", input, rows);
    const auto automatic = infer(client, "mlp_auto", input, rows);
    EXPECT_LE(nmse(gpu, cpu), 1e-10) << rows << " rows";
    EXPECT_LE(nmse(automatic, cpu), 1e-10) << rows << " rows";
  }
  EXPECT_EQ(daemon.wait_exit(0), -1) << "daemon died: " << daemon.log();

  // The stats page says which device ran what: mlp_gpu's three batches on the device, which was
  // busy for them and holds their weights.
  const std::string json = stat_json(daemon.socket_path());
  std::smatch gpu;
  ASSERT_TRUE(std::regex_search(
      json, gpu,
      std::regex(
          R"("device":"gpu","name":"[^"]*","present":true,"busy_ns":(\d+),"batches":(\d+),"busy_fraction":[^,]*,"memory_bytes":(\d+))")))
      << json;
  EXPECT_GT(std::stoull(gpu[1]), 0u) << json;
  EXPECT_GE(std::stoull(gpu[2]), 3u) << json;
  EXPECT_GT(std::stoull(gpu[3]), 0u) << json;
  std::smatch model;
  ASSERT_TRUE(std::regex_search(
      json, model,
      std::regex(R"("name":"mlp_gpu","device":"gpu".*?"batches":(\d+),"batches_on_gpu":(\d+))")))
      << json;
  EXPECT_EQ(model[1], "3");
  EXPECT_EQ(model[2], "3");
}

TEST(DaemonOnOpenCl, shouldRunEveryModelOnTheCpuWithOneLogLineWhenNoDeviceMatches) {
  auto args = three_mlps();
  args.insert(args.end(), {"--opencl-device", "no-such-device-anywhere"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("no OpenCL device (no OpenCL device matches platform '', "
                                      "device 'no-such-device-anywhere'"));
  EXPECT_THAT(daemon.log(),
              HasSubstr("models 'mlp_gpu' (gpu), 'mlp_auto' (auto) run on the CPU only"));
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  const std::vector<float> input(256, 0.5f);
  EXPECT_EQ(infer(client, "mlp_gpu", input, 1), infer(client, "mlp_cpu", input, 1));
  EXPECT_EQ(infer(client, "mlp_auto", input, 1), infer(client, "mlp_cpu", input, 1));
}

}  // namespace
}  // namespace coproc::test
