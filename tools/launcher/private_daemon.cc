#include "launcher/private_daemon.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace coproc::launcher {

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStartPoll = std::chrono::milliseconds(5);

}  // namespace

bool socket_accepts(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

PrivateDaemon::PrivateDaemon(LaunchOptions options) : stop_signal_(options.stop_signal) {
  start(options);
}

void PrivateDaemon::start(LaunchOptions& o) {
  std::string tmpl = "/tmp/" + o.dir_prefix + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    error_ = std::string("mkdtemp failed: ") + std::strerror(errno);
    return;
  }
  dir_ = tmpl;
  socket_path_ = dir_ + "/coprocd.sock";
  if (o.capture_log) log_path_ = dir_ + "/coprocd.log";

  std::vector<std::string> args = {o.coprocd};
  if (!o.config_toml.empty()) {
    const std::string config = dir_ + "/coprocd.toml";
    std::ofstream(config) << o.config_toml;
    args.insert(args.end(), {"--config", config});
  }
  args.insert(args.end(), {"--socket", socket_path_});
  if (std::find(o.args.begin(), o.args.end(), "--http-listen") == o.args.end()) {
    args.insert(args.end(), {"--http-listen", "127.0.0.1:0"});
  }
  args.insert(args.end(), o.args.begin(), o.args.end());

  pid_ = ::fork();
  if (pid_ < 0) {
    error_ = std::string("fork failed: ") + std::strerror(errno);
    return;
  }
  if (pid_ == 0) {
    if (!log_path_.empty()) {
      int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("exec coprocd");
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_status_ = status;
      error_ = log_path_.empty() ? "coprocd exited during start-up (see its log above)"
                                 : "coprocd exited during start-up (see its log)";
      return;
    }
    if (socket_accepts(socket_path_)) {
      started_ = true;
      return;
    }
    std::this_thread::sleep_for(kStartPoll);
  }
  error_ = "coprocd did not open its socket within 30 s";
}

PrivateDaemon::~PrivateDaemon() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, stop_signal_);
    ::waitpid(pid_, nullptr, 0);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

const std::string& PrivateDaemon::log() {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  log_ = ss.str();
  return log_;
}

void PrivateDaemon::signal(int sig) const { ::kill(pid_, sig); }

bool PrivateDaemon::stop_and_wait(int timeout_ms) const {
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
      char state =
          close != std::string::npos && close + 2 < content.size() ? content[close + 2] : '?';
      all_stopped = all_stopped && (state == 'T' || state == 't');
    }
    if (all_stopped && !ec) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

int PrivateDaemon::wait_exit(int timeout_ms) {
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

}  // namespace coproc::launcher
