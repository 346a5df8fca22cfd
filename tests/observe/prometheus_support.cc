#include "prometheus_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace coproc::test {

namespace {

using Clock = std::chrono::steady_clock;

// How often a waiting loop looks again: short next to the 1 s scrape interval, long enough not
// to busy a 2-core machine.
constexpr milliseconds kReadyPollInterval{50};
constexpr milliseconds kQueryPollInterval{200};
// One /-/ready probe; the server answers at once once it listens.
constexpr milliseconds kReadyProbeTimeout{1'000};
// Starts of the server before giving up, each on a fresh port (see free_tcp_port).
constexpr int kStartAttempts = 3;
// How much of the server's log an error message quotes.
constexpr std::size_t kLogTailBytes = 6'000;

// Milliseconds left until `deadline`, for poll(): 0 once it passed.
int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
}

std::string errno_text(int err) { return std::strerror(err); }

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Waits until `fd` has `events` or the deadline passes; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return true;  // let the following read or write report the error
  }
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value of header `name` (lower case) in a response head, or "" when absent.
std::string header_value(std::string_view headers, std::string_view name) {
  std::istringstream in{std::string(headers)};
  for (std::string line; std::getline(in, line);) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos || lower(line.substr(0, colon)) != name) continue;
    std::string value = line.substr(colon + 1);
    const auto first = value.find_first_not_of(" \t");
    const auto last = value.find_last_not_of(" \t\r");
    return first == std::string::npos ? "" : value.substr(first, last - first + 1);
  }
  return "";
}

Result<std::string> dechunk(std::string_view body) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      return make_error(ErrorCode::kInternal, "chunked body ends inside a chunk size line");
    }
    const std::string size_text(body.substr(pos, eol - pos));
    char* end = nullptr;
    const unsigned long size = std::strtoul(size_text.c_str(), &end, 16);
    if (end == size_text.c_str()) {
      return make_error(ErrorCode::kInternal, fmt::format("bad chunk size {:?}", size_text));
    }
    pos = eol + 2;
    if (size == 0) return out;
    if (body.size() < pos + size + 2) {
      return make_error(ErrorCode::kInternal, "chunked body ends inside a chunk");
    }
    out.append(body.substr(pos, size));
    pos += size + 2;
  }
}

Result<HttpResponse> parse_response(const std::string& raw) {
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("response without a complete head: {:?}", raw.substr(0, 200)));
  }
  HttpResponse r;
  const std::size_t status_end = raw.find("\r\n");
  const std::string status_line = raw.substr(0, status_end);
  if (std::sscanf(status_line.c_str(), "HTTP/1.%*d %d", &r.status) != 1) {
    return make_error(ErrorCode::kInternal, fmt::format("bad status line {:?}", status_line));
  }
  r.headers = raw.substr(status_end + 2, head_end - status_end - 2);
  r.body = raw.substr(head_end + 4);
  if (lower(header_value(r.headers, "transfer-encoding")) == "chunked") {
    Result<std::string> body = dechunk(r.body);
    if (!body) return body.error();
    r.body = std::move(body.value());
  } else if (const std::string length = header_value(r.headers, "content-length");
             !length.empty() && std::strtoull(length.c_str(), nullptr, 10) != r.body.size()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("Content-Length {} but {} body bytes", length, r.body.size()));
  }
  return r;
}

// The last kLogTailBytes of a file.
std::string file_tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  return all.size() <= kLogTailBytes ? all : "..." + all.substr(all.size() - kLogTailBytes);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("wait status {}", status);
}

std::vector<char*> argv_pointers(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// Waits for `pid` until the deadline; its wait status, or -1 if it is still running.
int wait_until(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // not our child any more: nothing left to wait for
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace

Result<uint16_t> free_tcp_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return make_error(ErrorCode::kInternal, "socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return make_error(ErrorCode::kUnavailable, "bind 127.0.0.1:0: " + errno_text(errno));
  }
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

std::string find_on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + std::string(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

Result<HttpResponse> http_get(uint16_t port, std::string_view target, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = fmt::format("GET http://127.0.0.1:{}{}", port, target);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return make_error(ErrorCode::kInternal, "socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      return make_error(ErrorCode::kUnavailable, where + ": connect: " + errno_text(errno));
    }
    if (!wait_fd(fd.get(), POLLOUT, deadline)) {
      return make_error(ErrorCode::kDeadlineExceeded, where + ": connect timed out");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return make_error(ErrorCode::kUnavailable, where + ": connect: " + errno_text(err));
    }
  }

  const std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: coproc-prometheus-test\r\n"
      "Accept: */*\r\nConnection: close\r\n\r\n",
      target, port);
  for (std::size_t sent = 0; sent < request.size();) {
    if (!wait_fd(fd.get(), POLLOUT, deadline)) {
      return make_error(ErrorCode::kDeadlineExceeded, where + ": sending the request timed out");
    }
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return make_error(ErrorCode::kUnavailable, where + ": send: " + errno_text(errno));
    }
    if (n > 0) sent += static_cast<std::size_t>(n);
  }

  // The server closes after its response (one request per connection), so the response ends
  // at end of stream.
  std::string raw;
  char buf[16 * 1024];
  for (;;) {
    if (!wait_fd(fd.get(), POLLIN, deadline)) {
      return make_error(ErrorCode::kDeadlineExceeded,
                        fmt::format("{}: no end of response within {} ms ({} bytes so far)", where,
                                    timeout.count(), raw.size()));
    }
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return make_error(ErrorCode::kUnavailable, where + ": recv: " + errno_text(errno));
    }
    raw.append(buf, static_cast<std::size_t>(n));
  }
  Result<HttpResponse> r = parse_response(raw);
  if (!r) return make_error(r.error().code, where + ": " + r.error().message);
  return r;
}

std::string url_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

Result<std::vector<double>> parse_vector_answer(std::string_view json) {
  // Prometheus writes compact JSON, but a reader that skips blanks costs nothing.
  std::string compact;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string && c == '\\' && i + 1 < json.size()) {
      compact += c;
      compact += json[++i];
      continue;
    }
    if (c == '"') in_string = !in_string;
    if (in_string || !std::isspace(static_cast<unsigned char>(c))) compact += c;
  }
  const auto refuse = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} in query answer {}", why, compact.substr(0, 2'000)));
  };
  if (compact.find(R"("status":"success")") == std::string::npos) return refuse("no success");
  if (compact.find(R"("resultType":"vector")") == std::string::npos) return refuse("no vector");
  const std::size_t result = compact.find(R"("result":[)");
  if (result == std::string::npos) return refuse("no result array");

  // A '"' inside a JSON string is always escaped, so `"value":[` can only be the key of a
  // series' sample, never part of a label value.
  std::vector<double> values;
  static constexpr std::string_view kValueKey = R"("value":[)";
  for (std::size_t at = compact.find(kValueKey, result); at != std::string::npos;
       at = compact.find(kValueKey, at + 1)) {
    const std::size_t comma = compact.find(",\"", at + kValueKey.size());
    const std::size_t close = compact.find("\"]", comma == std::string::npos ? at : comma + 2);
    if (comma == std::string::npos || close == std::string::npos) {
      return refuse("a value that is not [<time>,\"<number>\"]");
    }
    const std::string number = compact.substr(comma + 2, close - comma - 2);
    char* end = nullptr;
    const double v = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) {
      return refuse(fmt::format("sample value {:?} that is not a number", number));
    }
    values.push_back(v);
  }
  return values;
}

Result<ChildOutput> run_with_input(const std::vector<std::string>& argv_in, std::string_view input,
                                   milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // stdin is a memfd holding all the input, so the child never waits on us to write while we
  // wait on it to read.
  Fd in(::memfd_create("coproc-test-stdin", MFD_CLOEXEC));
  if (in.get() < 0) return make_error(ErrorCode::kInternal, "memfd_create: " + errno_text(errno));
  for (std::size_t done = 0; done < input.size();) {
    const ssize_t n = ::write(in.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno != EINTR) {
      return make_error(ErrorCode::kInternal, "write to memfd: " + errno_text(errno));
    }
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  ::lseek(in.get(), 0, SEEK_SET);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kInternal, "pipe2: " + errno_text(errno));
  }
  Fd out_read(pipe_fds[0]);
  Fd out_write(pipe_fds[1]);

  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = argv_pointers(args);
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(ErrorCode::kInternal, "fork: " + errno_text(errno));
  if (pid == 0) {
    ::dup2(in.get(), STDIN_FILENO);
    ::dup2(out_write.get(), STDOUT_FILENO);
    ::dup2(out_write.get(), STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  out_write.reset();

  ChildOutput r;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    if (!wait_fd(out_read.get(), POLLIN, deadline)) {
      timed_out = true;
      break;
    }
    const ssize_t n = ::read(out_read.get(), buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  int status = timed_out ? -1 : wait_until(pid, deadline);
  if (status == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return make_error(ErrorCode::kDeadlineExceeded,
                      fmt::format("{} did not exit within {} ms; its output so far:\n{}",
                                  argv_in[0], timeout.count(), r.output));
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Result<std::unique_ptr<PrometheusServer>> PrometheusServer::start(
    const std::string& prometheus_binary, const std::string& job, uint16_t target_port) {
  // The destructor stops the server and removes the directory on every path out of here.
  std::unique_ptr<PrometheusServer> server(new PrometheusServer());
  char tmpl[] = "/tmp/coproc-prometheus-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return make_error(ErrorCode::kInternal, "mkdtemp: " + errno_text(errno));
  }
  server->dir_ = tmpl;
  server->log_path_ = server->dir_ + "/prometheus.log";
  // A 1 s interval keeps the test short; evaluation_interval only matters to rules, but is
  // given so the config states every interval it depends on.
  std::ofstream(server->dir_ + "/prometheus.yml")
      << "global:\n"
      << "  scrape_interval: 1s\n"
      << "  scrape_timeout: 1s\n"
      << "  evaluation_interval: 1s\n"
      << "scrape_configs:\n"
      << "  - job_name: " << job << "\n"
      << "    metrics_path: /metrics\n"
      << "    static_configs:\n"
      << "      - targets: [\"127.0.0.1:" << target_port << "\"]\n";

  Status status;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    status = server->spawn(prometheus_binary);
    if (status) status = server->wait_ready();
    if (status) return server;
    if (status.error().code != ErrorCode::kUnavailable) break;  // it runs but is not ready
  }
  return make_error(status.error().code, status.error().message);
}

PrometheusServer::~PrometheusServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PrometheusServer::log() const { return file_tail(log_path_); }

Status PrometheusServer::spawn(const std::string& binary) {
  Result<uint16_t> port = free_tcp_port();
  if (!port) return port.error();
  port_ = *port;
  std::vector<std::string> args = {
      binary,
      "--config.file=" + dir_ + "/prometheus.yml",
      "--storage.tsdb.path=" + dir_ + "/data",
      fmt::format("--web.listen-address=127.0.0.1:{}", port_),
      "--log.level=info",
  };
  std::vector<char*> argv = argv_pointers(args);
  const std::string log_path = log_path_;
  const pid_t test_pid = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) return make_error(ErrorCode::kInternal, "fork: " + errno_text(errno));
  if (pid_ == 0) {
    // Its own process group, so stop() reaches anything it starts.
    ::setpgid(0, 0);
    // A test killed outright (ctest's timeout sends SIGKILL) must not leave a server running:
    // SIGTERM when the forking thread (the test's main thread) goes. The check after it
    // covers a test that died before the prctl.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != test_pid) ::_exit(1);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::dup2(null, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    // The test's own descriptors (the daemon's socket, client memfds) are none of its business.
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // Also from the parent, so the group exists before stop() could signal it.
  ::setpgid(pid_, pid_);
  return {};
}

Status PrometheusServer::wait_ready() {
  const auto deadline = Clock::now() + kReadyTimeout;
  std::string last;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("prometheus {} before it was ready; its log:\n{}",
                                    describe_wait_status(status), log()));
    }
    Result<HttpResponse> r = http_get(port_, "/-/ready", kReadyProbeTimeout);
    if (r && r->status == 200) return {};
    last = r ? fmt::format("HTTP {} {}", r->status, r->body) : r.error().message;
    if (Clock::now() >= deadline) {
      return make_error(ErrorCode::kDeadlineExceeded,
                        fmt::format("prometheus not ready within {} ms (last: {}); its log:\n{}",
                                    kReadyTimeout.count(), last, log()));
    }
    std::this_thread::sleep_for(kReadyPollInterval);
  }
}

void PrometheusServer::stop() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGTERM);
  if (wait_until(pid_, Clock::now() + kStopTimeout) == -1) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

Result<std::vector<double>> PrometheusServer::query(std::string_view promql) const {
  Result<HttpResponse> r = http_get(port_, "/api/v1/query?query=" + url_encode(promql));
  if (!r) return r.error();
  Result<std::vector<double>> values = parse_vector_answer(r->body);
  if (values && r->status != 200) {
    return make_error(ErrorCode::kInternal, fmt::format("HTTP {}: {}", r->status, r->body));
  }
  return values;
}

Status PrometheusServer::wait_for_value(std::string_view promql, double expected,
                                        milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    Result<std::vector<double>> values = query(promql);
    if (values && values->size() == 1 && (*values)[0] == expected) return {};
    if (!values) {
      last = values.error().message;
    } else {
      last = fmt::format("{} series with values [{}]", values->size(), fmt::join(*values, ", "));
    }
    if (Clock::now() >= deadline) {
      return make_error(ErrorCode::kDeadlineExceeded,
                        fmt::format("{} did not become {} within {} ms; last answer: {}", promql,
                                    expected, timeout.count(), last));
    }
    std::this_thread::sleep_for(kQueryPollInterval);
  }
}

}  // namespace coproc::test
