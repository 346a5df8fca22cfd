// Starting and running the daemon: bad configs and models are refused with
// clear messages, NUMA placement, an idle daemon uses no CPU.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

// Starts coprocd expecting it to exit; returns (exit code, its log).
std::pair<int, std::string> run_failing_daemon(std::vector<std::string> args) {
  DaemonProcess daemon(std::move(args));
  EXPECT_FALSE(daemon.started());
  int status = daemon.wait_exit(30000);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, daemon.log()};
}

TEST(DaemonOps, shouldRefuseOutOfRangeConfigValueNamingKeyValueAndRange) {
  auto [code, log] = run_failing_daemon({"--poller-spin-us", "-5"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("--poller-spin-us = -5 is out of range [0, 1000000]"), std::string::npos) << log;
}

TEST(DaemonOps, shouldRefuseModelWithUnsupportedOperatorsNamingThem) {
  auto [code, log] = run_failing_daemon({"--model", "bad=" + models_dir() + "/bad_unsupported.onnx"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(log.find("Cos"), std::string::npos) << log;
  EXPECT_NE(log.find("LSTM"), std::string::npos) << log;
  EXPECT_NE(log.find("'bad'"), std::string::npos) << log;
}

TEST(DaemonOps, shouldRefuseGarbageModelFileNamingIt) {
  auto [code, log] = run_failing_daemon({"--model", "junk=" + models_dir() + "/bad_garbage.onnx"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(log.find("bad_garbage.onnx"), std::string::npos) << log;
}

TEST(DaemonOps, shouldRefuseNumaNodeThatDoesNotExist) {
  auto [code, log] = run_failing_daemon({"--numa-node", "1000"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("numa_node = 1000 does not exist"), std::string::npos) << log;
}

TEST(DaemonOps, shouldRunPinnedToAnExplicitNumaNode) {
  DaemonProcess daemon({"--numa-node", "0", "--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  EXPECT_NE(daemon.log().find("placement: node 0"), std::string::npos) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  EXPECT_EQ(coproc_infer(client.c, noop, &in, 1, &out, 1, 5'000'000'000), COPROC_OK);
}

TEST(DaemonOps, shouldRefuseToStartOnASocketAnotherDaemonServes) {
  DaemonProcess first({"--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(first.started()) << first.log();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(coprocd_path().c_str(), "coprocd", "--socket", first.socket_path().c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

// utime + stime of a process, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(content.substr(content.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return utime + stime;
}

TEST(DaemonOps, shouldUseNoCpuWhenIdleWithAConnectedClient) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  ASSERT_EQ(coproc_infer(client.c, noop, &in, 1, &out, 1, 5'000'000'000), COPROC_OK);
  // Let the poller's spin window (50 us) pass and it fall asleep.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  long before = cpu_ticks(daemon.pid());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long used = cpu_ticks(daemon.pid()) - before;
  // A spinning poller would burn ~100 ticks (one core for a second).
  EXPECT_LE(used, 2) << "idle daemon used " << used << " ticks in 1 s";
  // And it still wakes for the next request.
  EXPECT_EQ(coproc_infer(client.c, noop, &in, 1, &out, 1, 5'000'000'000), COPROC_OK);
}

}  // namespace
}  // namespace coproc::test
