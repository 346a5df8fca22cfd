#include "daemon_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

namespace coproc::test {

std::string models_dir() { return COPROC_TEST_MODELS_DIR; }
std::string coprocd_path() { return COPROC_TEST_BIN_DIR "/coprocd"; }

std::vector<std::string> standard_models() {
  return {"--model", "noop=" + models_dir() + "/noop.onnx", "--model",
          "mlp=" + models_dir() + "/mlp.onnx"};
}

std::string write_config(const std::string& name, const std::string& text) {
  std::string path = "/tmp/coproc-test-" + std::to_string(::getpid()) + "-" + name + ".toml";
  std::ofstream(path) << text;
  return path;
}

std::string model_block(const std::string& name, const std::string& keys) {
  return "[[model]]\nname = \"" + name + "\"\npath = \"" + models_dir() + "/" + name + ".onnx\"\n" +
         keys + "\n";
}

DaemonProcess::DaemonProcess(std::vector<std::string> args)
    : launcher::PrivateDaemon({.coprocd = coprocd_path(),
                               .args = std::move(args),
                               .dir_prefix = "coproc-test",
                               .capture_log = true,
                               .stop_signal = SIGKILL}) {}

int run_in_child(const std::function<int()>& body, int timeout_ms) {
  return wait_child(start_child(body), timeout_ms);
}

pid_t start_child(const std::function<int()>& body) {
  std::fflush(nullptr);  // or the child flushes the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  return pid;
}

int wait_child(pid_t pid, int timeout_ms) {
  if (pid < 0) return 255;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return 255;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int count_client_segment_mappings(pid_t daemon_pid) {
  std::ifstream maps("/proc/" + std::to_string(daemon_pid) + "/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find("memfd:coproc-client") != std::string::npos;
  return n;
}

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

}  // namespace coproc::test
