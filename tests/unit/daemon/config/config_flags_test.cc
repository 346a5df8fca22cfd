// The command-line path of coprocd's config: parse_command_line() with
// --config files on disk and flag overrides, and the shipped example file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace coproc::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using CommandLine = Result<std::optional<Config>>;

CommandLine run(std::vector<const char*> args, std::string* out = nullptr) {
  args.insert(args.begin(), "coprocd");
  return parse_command_line(static_cast<int>(args.size()), args.data(), out);
}

// The message of a command line that must fail with kInvalidArgument.
std::string error_of(std::vector<const char*> args) {
  const CommandLine result = run(std::move(args));
  if (result.ok()) {
    ADD_FAILURE() << "expected an error";
    return {};
  }
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  return result.error().message;
}

// A fresh folder per test holding the config files it writes.
class ConfigFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("coproc_config_test_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_config(std::string_view text) {
    const fs::path path = dir_ / "coprocd.toml";
    std::ofstream(path) << text;
    return path.string();
  }

  fs::path dir_;
};

TEST_F(ConfigFlags, shouldUseDefaultsWhenNoArguments) {
  const CommandLine result = run({});

  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_TRUE(result->has_value());
  const Config& config = result.value().value();
  EXPECT_EQ(config.socket_path, default_socket_path());
  EXPECT_TRUE(config.numa_auto);
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  EXPECT_EQ(config.poller_spin_us, 50u);
  EXPECT_EQ(config.arena_bytes, uint64_t{64} << 20);
  EXPECT_TRUE(config.models.empty());
}

TEST_F(ConfigFlags, shouldReadConfigFile) {
  const std::string path = write_config("[poller]\nspin_us = 7\n");

  const CommandLine result = run({"--config", path.c_str()});

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()->poller_spin_us, 7u);
}

TEST_F(ConfigFlags, shouldLetEveryFlagOverrideTheFile) {
  const std::string path = write_config(R"(
    daemon = { socket = "/run/file.sock", numa_node = 1, log_level = "error" }
    poller.spin_us = 10
    executor = { inline_max_us = 10, cpu_threads = 2 }
    limits = { max_clients = 2, arena_bytes = "1MiB", ring_slots = 16, slot_bytes = 512 }
  )");

  const CommandLine result = run({"--config",
                                  path.c_str(),
                                  "--socket",
                                  "/run/flag.sock",
                                  "--numa-node",
                                  "auto",
                                  "--log-level",
                                  "trace",
                                  "--poller-spin-us",
                                  "20",
                                  "--inline-max-us",
                                  "30",
                                  "--cpu-threads",
                                  "4",
                                  "--max-clients",
                                  "128",
                                  "--arena-bytes",
                                  "1GiB",
                                  "--ring-slots",
                                  "1024",
                                  "--slot-bytes",
                                  "2048",
                                  "--max-pending-hellos",
                                  "100",
                                  "--max-pending-hellos-per-uid",
                                  "50"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  const Config& config = result.value().value();
  EXPECT_EQ(config.socket_path, "/run/flag.sock");
  EXPECT_TRUE(config.numa_auto);
  EXPECT_EQ(config.numa_node, -1);
  EXPECT_EQ(config.log_level, LogLevel::kTrace);
  EXPECT_EQ(config.poller_spin_us, 20u);
  EXPECT_EQ(config.inline_max_us, 30u);
  EXPECT_EQ(config.cpu_threads, 4u);
  EXPECT_EQ(config.max_clients, 128u);
  EXPECT_EQ(config.arena_bytes, uint64_t{1} << 30);
  EXPECT_EQ(config.ring_slots, 1024u);
  EXPECT_EQ(config.slot_bytes, 2048u);
  EXPECT_EQ(config.max_pending_hellos, 100u);
  EXPECT_EQ(config.max_pending_hellos_per_uid, 50u);
}

TEST_F(ConfigFlags, shouldKeepFileValuesForFlagsNotGiven) {
  const std::string path = write_config("poller.spin_us = 10\nexecutor.cpu_threads = 8\n");

  const CommandLine result = run({"--config", path.c_str(), "--poller-spin-us", "20"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()->poller_spin_us, 20u);
  EXPECT_EQ(result.value()->cpu_threads, 8u);
}

TEST_F(ConfigFlags, shouldTakeIntegerNumaNodeFromFlag) {
  const CommandLine result = run({"--numa-node", "3", "--arena-bytes", "131072"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_FALSE(result.value()->numa_auto);
  EXPECT_EQ(result.value()->numa_node, 3);
  EXPECT_EQ(result.value()->arena_bytes, 131072u);
}

TEST_F(ConfigFlags, shouldLetLastOfRepeatedFlagWin) {
  const CommandLine result = run({"--cpu-threads", "2", "--cpu-threads", "3"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()->cpu_threads, 3u);
}

TEST_F(ConfigFlags, shouldRefuseOutOfRangeFlagNamingTheFlag) {
  EXPECT_EQ(error_of({"--poller-spin-us", "-5"}),
            "config: --poller-spin-us = -5 is out of range [0, 1000000]");
  EXPECT_EQ(error_of({"--ring-slots", "100"}),
            "config: --ring-slots = 100 must be a power of two in [8, 65536]");
  EXPECT_EQ(error_of({"--arena-bytes", "32GiB"}),
            "config: --arena-bytes = 32GiB is out of range [65536, 17179869184]");
  EXPECT_EQ(error_of({"--max-clients", "99999999999999999999"}),
            "config: --max-clients = 99999999999999999999 is out of range [1, 4096]");
  EXPECT_EQ(error_of({"--max-request-rows", "0"}),
            "config: --max-request-rows = 0 is out of range [1, 2147483648]");
}

TEST_F(ConfigFlags, shouldRefuseFlagValueOfWrongType) {
  EXPECT_EQ(error_of({"--cpu-threads", "four"}),
            "config: --cpu-threads = four must be an integer in [1, 256]");
  EXPECT_EQ(error_of({"--numa-node", "1.5"}),
            "config: --numa-node = 1.5 must be an integer in [0, 1023] or \"auto\"");
  EXPECT_EQ(error_of({"--log-level", "loud"}),
            "config: --log-level = loud must be one of trace|debug|info|warn|error|off");
  EXPECT_EQ(error_of({"--slot-bytes", "1k"}),
            "config: --slot-bytes = 1k must be a multiple of 64 in [256, 65536]");
}

TEST_F(ConfigFlags, shouldRefuseSocketFlagTooLongForSunPath) {
  const std::string socket = "/" + std::string(120, 's');

  const std::string message = error_of({"--socket", socket.c_str()});

  EXPECT_EQ(message, "config: --socket = " + socket + " is 121 bytes; at most 107 fit in sun_path");
}

TEST_F(ConfigFlags, shouldAddModelFromFlag) {
  const std::string path = write_config("[[model]]\nname = \"noop\"\npath = \"/m/noop.onnx\"\n");

  const CommandLine result = run({"--config", path.c_str(), "--model", "mlp=/m/mlp.onnx"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  const std::vector<ModelConfig>& models = result.value()->models;
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].name, "noop");
  EXPECT_EQ(models[0].path, "/m/noop.onnx");
  EXPECT_EQ(models[1].name, "mlp");
  EXPECT_EQ(models[1].path, "/m/mlp.onnx");
}

TEST_F(ConfigFlags, shouldReplaceFileModelOfSameNameFromFlag) {
  const std::string path = write_config(
      "[[model]]\nname = \"mlp\"\npath = \"/old/mlp.onnx\"\n"
      "[[model]]\nname = \"noop\"\npath = \"/old/noop.onnx\"\n");

  const CommandLine result =
      run({"--config", path.c_str(), "--model", "mlp=/new/mlp.onnx", "--model", "x=/new/x.onnx"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  const std::vector<ModelConfig>& models = result.value()->models;
  ASSERT_EQ(models.size(), 3u);
  EXPECT_EQ(models[0].name, "mlp");
  EXPECT_EQ(models[0].path, "/new/mlp.onnx");
  EXPECT_EQ(models[1].path, "/old/noop.onnx");
  EXPECT_EQ(models[2].name, "x");
}

TEST_F(ConfigFlags, shouldResolveRelativeModelFlagAgainstWorkingDirectory) {
  const CommandLine result = run({"--model", "mlp=models/mlp.onnx"});

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()->models.at(0).path, (fs::current_path() / "models/mlp.onnx").string());
}

TEST_F(ConfigFlags, shouldRefuseMalformedModelFlag) {
  EXPECT_EQ(error_of({"--model", "mlp"}), "config: --model = mlp must be NAME=PATH");
  EXPECT_EQ(error_of({"--model", "=/m.onnx"}), "config: --model = =/m.onnx must be NAME=PATH");
  EXPECT_EQ(error_of({"--model", "mlp="}), "config: --model = mlp= must be NAME=PATH");
  EXPECT_EQ(error_of({"--model", "my model=/m.onnx"}),
            "config: --model = my model=/m.onnx: the name must be 1-63 characters of "
            "[A-Za-z0-9_.-]");
}

TEST_F(ConfigFlags, shouldNameMissingConfigFile) {
  const std::string path = (dir_ / "absent.toml").string();

  const std::string message = error_of({"--config", path.c_str()});

  EXPECT_EQ(message, "config: cannot open config file '" + path + "': No such file or directory");
}

TEST_F(ConfigFlags, shouldReportFileAndLineOfSyntaxError) {
  const std::string path = write_config("[limits]\nmax_clients = 4\nring_slots = [\n");

  const std::string message = error_of({"--config", path.c_str()});

  EXPECT_THAT(message, StartsWith("config: " + path + ":3:"));
}

TEST_F(ConfigFlags, shouldNameFileInUnknownKeyError) {
  const std::string path = write_config("[poller]\nspinn = 5\n");

  const std::string message = error_of({"--config", path.c_str()});

  EXPECT_EQ(message, "config: unknown key 'poller.spinn' in " + path + ":2");
}

TEST_F(ConfigFlags, shouldResolveRelativeModelPathAgainstConfigFileFolder) {
  const std::string path = write_config("[[model]]\nname = \"mlp\"\npath = \"models/mlp.onnx\"\n");

  const CommandLine result = run({"--config", path.c_str()});

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value()->models.at(0).path, (dir_ / "models/mlp.onnx").string());
}

TEST_F(ConfigFlags, shouldReturnNulloptWithHelpTextForHelp) {
  std::string out;

  const CommandLine result = run({"--help"}, &out);

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_FALSE(result->has_value());
  EXPECT_THAT(out, HasSubstr("--config"));
  EXPECT_THAT(out, HasSubstr("--model"));
  EXPECT_THAT(out, HasSubstr("--poller-spin-us"));
  EXPECT_THAT(out, HasSubstr("poller.spin_us"));
  EXPECT_THAT(out, HasSubstr("[0, 1000000]"));
}

TEST_F(ConfigFlags, shouldReturnNulloptWithHelpTextEvenWhenOtherFlagsAreBad) {
  std::string out;

  const CommandLine result = run({"--cpu-threads", "0", "--help"}, &out);

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_FALSE(result->has_value());
  EXPECT_THAT(out, HasSubstr("--cpu-threads"));
}

TEST_F(ConfigFlags, shouldReturnNulloptWithVersionForVersion) {
  std::string out;

  const CommandLine result = run({"--version"}, &out);

  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_FALSE(result->has_value());
  EXPECT_THAT(out, StartsWith("coprocd "));
}

TEST_F(ConfigFlags, shouldRefuseUnknownFlag) {
  const std::string message = error_of({"--poller-spin", "5"});

  EXPECT_THAT(message, StartsWith("config: "));
  EXPECT_THAT(message, HasSubstr("--poller-spin"));
}

TEST_F(ConfigFlags, shouldRefuseFlagWithoutValue) {
  const std::string message = error_of({"--cpu-threads"});

  EXPECT_THAT(message, StartsWith("config: "));
  EXPECT_THAT(message, HasSubstr("cpu-threads"));
}

TEST_F(ConfigFlags, shouldParseExampleConfigToDefaultsAndTwoModels) {
  const CommandLine result = run({"--config", COPROC_EXAMPLE_CONFIG});

  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_TRUE(result->has_value());
  const Config& example = result.value().value();
  Config defaults;
  defaults.socket_path = default_socket_path();
  defaults.models = example.models;
  EXPECT_EQ(describe(example), describe(defaults));
  ASSERT_EQ(example.models.size(), 2u);
  EXPECT_EQ(example.models[0].name, "noop");
  EXPECT_EQ(example.models[0].path, "/var/lib/coproc/models/noop.onnx");
  EXPECT_EQ(example.models[1].name, "mlp");
  EXPECT_EQ(example.models[1].path, "/var/lib/coproc/models/mlp.onnx");
}

}  // namespace
}  // namespace coproc::daemon
