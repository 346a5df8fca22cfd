#include "common/private_daemon.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace coproc::bench {

namespace {
constexpr auto kStartTimeout = std::chrono::seconds(30);

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

std::string executable_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

PrivateDaemon::PrivateDaemon(const std::string& model_name, const std::string& model_path,
                             int cpu_threads, const std::string& batching, int intra_op_threads)
    : PrivateDaemon(std::vector<ServedModel>{{model_name, model_path}}, cpu_threads, batching,
                    intra_op_threads) {}

PrivateDaemon::PrivateDaemon(const std::vector<ServedModel>& models, int cpu_threads,
                             const std::string& batching, int intra_op_threads) {
  char tmpl[] = "/tmp/coproc-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  socket_path_ = dir_ + "/coprocd.sock";
  std::string daemon = executable_dir() + "/coprocd";
  const std::string config = dir_ + "/coprocd.toml";
  {
    std::ofstream out(config);
    for (const ServedModel& m : models) {
      out << "[[model]]\nname = \"" << m.name << "\"\npath = \"" << m.path << "\"\n" << batching
          << "\n";
    }
  }
  std::vector<std::string> args = {daemon,
                                   "--config", config,
                                   "--socket", socket_path_,
                                   "--http-listen", "127.0.0.1:0",
                                   "--cpu-threads", std::to_string(cpu_threads),
                                   "--intra-op-threads", std::to_string(intra_op_threads),
                                   "--log-level", "warn"};
  pid_ = ::fork();
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(daemon.c_str(), argv.data());
    std::perror("exec coprocd");
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "coprocd exited during start-up (see its log above)";
      return;
    }
    if (socket_accepts(socket_path_)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = "coprocd did not open its socket within 30 s";
}

PrivateDaemon::~PrivateDaemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace coproc::bench
