#include "stress_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "coproc/segment.h"
#include "launcher/private_daemon.h"
#include "support/daemon_process.h"
#include "support/raw_client.h"

namespace coproc::test {

namespace {

constexpr int kDaemonStartMs = 30000;

}  // namespace

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

StressDaemon::StressDaemon(std::string socket_path, std::vector<std::string> args)
    : socket_path_(std::move(socket_path)), args_(std::move(args)) {
  log_path_ = socket_path_ + ".log";
}

StressDaemon::~StressDaemon() {
  if (pid_ > 0) kill_now();
}

bool StressDaemon::start() {
  // Daemons run side by side: the HTTP endpoint on any free port.
  std::vector<std::string> argv_text = {coprocd_path(), "--socket", socket_path_, "--http-listen",
                                        "127.0.0.1:0"};
  argv_text.insert(argv_text.end(), args_.begin(), args_.end());
  std::fflush(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(kDaemonStartMs);
  while (Clock::now() < deadline) {
    if (!alive()) return false;
    if (launcher::socket_accepts(socket_path_)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

std::string StressDaemon::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string StressDaemon::log_tail(std::size_t bytes) const {
  std::string all = log();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

void StressDaemon::kill_now() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int StressDaemon::terminate(int timeout_ms) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = -1;
  const bool exited =
      eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout_ms);
  if (!exited) return -1;
  pid_ = -1;
  return status;
}

bool StressDaemon::alive() {
  if (pid_ <= 0) return false;
  int status;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

bool StressDaemon::stop_and_wait(int timeout_ms) const {
  ::kill(pid_, SIGSTOP);
  namespace fs = std::filesystem;
  return eventually(
      [&] {
        bool all_stopped = true;
        std::error_code ec;
        for (const auto& task :
             fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
          std::ifstream stat(task.path() / "stat");
          std::string content((std::istreambuf_iterator<char>(stat)),
                              std::istreambuf_iterator<char>());
          auto close = content.rfind(')');
          char state =
              close != std::string::npos && close + 2 < content.size() ? content[close + 2] : '?';
          all_stopped = all_stopped && (state == 'T' || state == 't');
        }
        return all_stopped && !ec;
      },
      timeout_ms);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/coproc-stress-XXXXXX";
  path_ = ::mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string write_two_model_config(const TempDir& dir, const std::string& noop_keys,
                                   const std::string& mlp_keys) {
  std::string path = dir.path() + "/coprocd.toml";
  std::ofstream out(path);
  out << "[[model]]\nname = \"noop\"\npath = \"" << models_dir() << "/noop.onnx\"\n"
      << noop_keys << "\n\n"
      << "[[model]]\nname = \"mlp\"\npath = \"" << models_dir() << "/mlp.onnx\"\n"
      << mlp_keys << "\n";
  return path;
}

void* map_shared(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return p;
}

void unmap_shared(void* p, std::size_t bytes) { ::munmap(p, bytes); }

pid_t spawn(const std::function<int()>& body) {
  // Whatever the test printed stays with the test: a child must not inherit
  // (and, exiting, flush) a copy of an unflushed buffer.
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  return pid;
}

int reap(pid_t pid, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int count_fds(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

bool eventually(const std::function<bool()>& done, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string Books::describe() const {
  std::ostringstream s;
  s << "accepted " << accepted << " + rejected " << rejected << " vs completed " << completed
    << " (ok " << completed_ok << ") + dropped_client_gone " << dropped_client_gone << "; batches "
    << batches << ", rows " << batch_rows;
  return s.str();
}

bool read_books(const std::string& socket_path, Books* out) {
  RawClient raw(socket_path);
  if (!raw.connected()) return false;
  const wire::RegistryHeader& h = raw.registry();
  const auto* stats = reinterpret_cast<const wire::ModelStats*>(
      reinterpret_cast<const std::byte*>(&h) + h.stats_offset);
  Books b;
  for (uint32_t i = 0; i < h.stats_count; ++i) {
    b.accepted += stats[i].accepted.load();
    b.rejected += stats[i].rejected_queue_full.load() + stats[i].rejected_invalid.load();
    for (const auto& c : stats[i].completed) b.completed += c.load();
    b.completed_ok += stats[i].completed[0].load();
    b.dropped_client_gone += stats[i].dropped_client_gone.load();
    b.batches += stats[i].batches.load();
    b.batch_rows += stats[i].batch_rows.load();
  }
  *out = b;
  return true;
}

}  // namespace coproc::test
