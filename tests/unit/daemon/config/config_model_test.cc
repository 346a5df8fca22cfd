// [[model]] batching keys: every key parsed, every bound and cross-key rule
// refused with the key, the value and what is allowed.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace coproc::daemon {
namespace {

Result<Config> parse_model(const std::string& keys) {
  return parse_config_text("[[model]]\nname = \"m\"\npath = \"/m.onnx\"\n" + keys, "test.toml",
                           "/etc");
}

std::string error_of(const std::string& keys) {
  auto c = parse_model(keys);
  return c.ok() ? std::string("(accepted)") : c.error().message;
}

TEST(ConfigModel, shouldDefaultToDynamicBatchingOf32) {
  auto c = parse_model("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const BatchingConfig& b = c.value().models[0].batching;
  EXPECT_EQ(b.mode, BatchMode::kDynamic);
  EXPECT_EQ(b.max_batch, 32u);
  EXPECT_EQ(b.min_batch, 1u);
  EXPECT_EQ(b.max_wait_us, 1000u);
  EXPECT_EQ(b.queue_limit, 1024u);
  EXPECT_EQ(b.memory_limit_bytes, 0u);
}

TEST(ConfigModel, shouldParseEveryBatchingKey) {
  auto c = parse_model(R"(
mode = "adaptive"
max_batch = 64
min_batch = 4
max_wait_us = 250
preferred_batch_sizes = [8, 16, 32]
target = "throughput"
p99_goal_us = 9000
queue_limit = 500
timeout_ms = 20
aging_ms = 5
length_buckets = [16, 32, 64, 128]
memory_limit = "256MiB"
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const BatchingConfig& b = c.value().models[0].batching;
  EXPECT_EQ(b.mode, BatchMode::kAdaptive);
  EXPECT_EQ(b.max_batch, 64u);
  EXPECT_EQ(b.min_batch, 4u);
  EXPECT_EQ(b.max_wait_us, 250u);
  EXPECT_EQ(b.preferred_batch_sizes, (std::vector<uint32_t>{8, 16, 32}));
  EXPECT_EQ(b.target, BatchTarget::kThroughput);
  EXPECT_EQ(b.p99_goal_us, 9000u);
  EXPECT_EQ(b.queue_limit, 500u);
  EXPECT_EQ(b.timeout_ms, 20u);
  EXPECT_EQ(b.aging_ms, 5u);
  EXPECT_EQ(b.length_buckets, (std::vector<int64_t>{16, 32, 64, 128}));
  EXPECT_EQ(b.memory_limit_bytes, uint64_t{256} << 20);
}

TEST(ConfigModel, shouldRefuseOutOfRangeBatchingValuesNamingKeyValueAndRange) {
  EXPECT_EQ(error_of("max_batch = 0"),
            "config: model[0].max_batch = 0 must be an integer in [1, 4096]");
  EXPECT_EQ(error_of("max_wait_us = -1"),
            "config: model[0].max_wait_us = -1 must be an integer in [0, 10000000]");
  EXPECT_EQ(error_of("queue_limit = 2000000"),
            "config: model[0].queue_limit = 2000000 must be an integer in [1, 1000000]");
  EXPECT_EQ(error_of("timeout_ms = \"5\""),
            "config: model[0].timeout_ms = \"5\" must be an integer in [0, 3600000]");
  EXPECT_EQ(error_of("memory_limit = \"1GB\""),
            "config: model[0].memory_limit = \"1GB\" must be a byte count or a size such as "
            "\"256MiB\" in [0, 1099511627776]");
}

TEST(ConfigModel, shouldRefuseUnknownModeAndReservedContinuousMode) {
  EXPECT_EQ(error_of("mode = \"greedy\""),
            "config: model[0].mode = \"greedy\" must be one of fixed|dynamic|adaptive|continuous");
  EXPECT_EQ(
      error_of("mode = \"continuous\""),
      "config: model[0].mode = \"continuous\" is reserved for generation and not supported yet");
  EXPECT_EQ(error_of("target = \"fast\""),
            "config: model[0].target = \"fast\" must be one of latency|throughput|balanced");
}

TEST(ConfigModel, shouldParseTheDeviceAsAnEnumDefaultingToCpu) {
  auto plain = parse_model("");
  auto on_gpu = parse_model("device = \"gpu\"");
  auto on_auto = parse_model("device = \"auto\"");
  ASSERT_TRUE(plain.ok() && on_gpu.ok() && on_auto.ok());
  EXPECT_EQ(plain.value().models[0].device, DeviceMode::kCpu);
  EXPECT_EQ(on_gpu.value().models[0].device, DeviceMode::kGpu);
  EXPECT_EQ(on_auto.value().models[0].device, DeviceMode::kAuto);
}

TEST(ConfigModel, shouldRefuseAnUnknownDeviceNamingKeyValueAndChoices) {
  EXPECT_EQ(error_of("device = \"tpu\""),
            "config: model[0].device = \"tpu\" must be one of cpu|gpu|auto");
  EXPECT_EQ(error_of("device = 1"), "config: model[0].device = 1 must be one of cpu|gpu|auto");
}

TEST(ConfigModel, shouldSetTheDeviceFromTheFlagAndRefuseAnUnknownOne) {
  const char* good[] = {"coprocd", "--config", COPROC_TEST_MODEL_CONFIG, "--model-device",
                        "m=auto"};
  const char* bad[] = {"coprocd", "--config", COPROC_TEST_MODEL_CONFIG, "--model-device", "m=tpu"};
  std::string out;
  auto c = parse_command_line(5, good, &out);
  auto refused = parse_command_line(5, bad, &out);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c.value().has_value());
  EXPECT_EQ(c.value()->models.at(0).device, DeviceMode::kAuto);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "config: --model-device = m=tpu must be NAME=DEVICE with DEVICE one of cpu|gpu|auto");
}

TEST(ConfigModel, shouldNameEveryEnumValueWithTheWordThatParsesToIt) {
  for (std::string_view word : EnumWords<BatchMode>::kWords) {
    EXPECT_EQ(name_of(*enum_from_word<BatchMode>(word)), word);
  }
  for (std::string_view word : EnumWords<DeviceMode>::kWords) {
    EXPECT_EQ(name_of(*enum_from_word<DeviceMode>(word)), word);
  }
  EXPECT_EQ(name_of(BatchTarget::kLatency), "latency");
  EXPECT_EQ(name_of(LogLevel::kWarn), "warn");
  EXPECT_FALSE(enum_from_word<LogLevel>("WARN").has_value());
}

TEST(ConfigModel, shouldRefuseInconsistentBatchSizes) {
  EXPECT_EQ(error_of("max_batch = 8\nmin_batch = 9"),
            "config: model[0].min_batch = 9 must not exceed max_batch = 8");
  EXPECT_EQ(error_of("max_batch = 8\npreferred_batch_sizes = [4, 16]"),
            "config: model[0].preferred_batch_sizes must not exceed max_batch = 8");
}

TEST(ConfigModel, shouldRefuseListsThatAreNotAscendingIntegersInRange) {
  EXPECT_EQ(error_of("length_buckets = [64, 32]"),
            "config: model[0].length_buckets = [ 64, 32 ] must be an ascending list of integers "
            "in [1, 1048576]");
  EXPECT_EQ(error_of("preferred_batch_sizes = [0]"),
            "config: model[0].preferred_batch_sizes = [ 0 ] must be an ascending list of integers "
            "in [1, 4096]");
  EXPECT_EQ(error_of("length_buckets = 16"),
            "config: model[0].length_buckets = 16 must be an ascending list of integers in [1, "
            "1048576]");
}

TEST(ConfigModel, shouldKeepFileBatchingWhenModelFlagReplacesThePath) {
  const char* argv[] = {"coprocd", "--config", COPROC_TEST_MODEL_CONFIG, "--model",
                        "m=/other.onnx"};
  std::string out;
  auto c = parse_command_line(5, argv, &out);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c.value().has_value());
  const auto& models = c.value()->models;
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].path, "/other.onnx");
  EXPECT_EQ(models[0].batching.max_batch, 7u);
}

}  // namespace
}  // namespace coproc::daemon
