#include "daemon_process.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace coproc::test {

namespace {
bool socket_accepts(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

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

DaemonProcess::DaemonProcess(std::vector<std::string> args) {
  char tmpl[] = "/tmp/coproc-test-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  socket_path_ = dir_ + "/coprocd.sock";
  log_path_ = dir_ + "/coprocd.log";
  // Tests run daemons side by side: the HTTP endpoint on any free port unless a test picks one.
  if (std::find(args.begin(), args.end(), "--http-listen") == args.end()) {
    args.insert(args.begin(), {"--http-listen", "127.0.0.1:0"});
  }
  args.insert(args.begin(), {coprocd_path(), "--socket", socket_path_});
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_status_ = status;
      return;
    }
    if (socket_accepts(socket_path_)) {
      started_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

DaemonProcess::~DaemonProcess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

const std::string& DaemonProcess::log() {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  log_ = ss.str();
  return log_;
}

void DaemonProcess::signal(int sig) const { ::kill(pid_, sig); }

bool DaemonProcess::stop_and_wait(int timeout_ms) const {
  ::kill(pid_, SIGSTOP);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  namespace fs = std::filesystem;
  while (std::chrono::steady_clock::now() < deadline) {
    bool all_stopped = true;
    std::error_code ec;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
      std::ifstream stat(task.path() / "stat");
      std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      auto close = content.rfind(')');
      char state = close != std::string::npos && close + 2 < content.size() ? content[close + 2] : '?';
      all_stopped = all_stopped && (state == 'T' || state == 't');
    }
    if (all_stopped && !ec) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

int DaemonProcess::wait_exit(int timeout_ms) {
  if (reaped_) return exit_status_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_status_ = status;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

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
