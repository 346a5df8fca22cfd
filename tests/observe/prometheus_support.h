// Test support for checking coprocd's HTTP endpoint with the real Prometheus tools: a plain
// HTTP/1.1 GET over loopback TCP, a child process run with bounded time, and a private
// Prometheus server (its own config, data directory, port and process group) that scrapes one
// target and answers PromQL through its query API.
//
// Every call that waits takes a bound or uses a named one, so a missing or broken tool fails a
// test instead of hanging it. Failures come back as Result values whose message says what was
// tried and what happened (and, for the server, the tail of its log).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coproc/base/result.h"

namespace coproc::test {

using std::chrono::milliseconds;

inline constexpr milliseconds kHttpTimeout{5'000};

// A loopback TCP port that was free a moment ago: bound to 127.0.0.1:0, read back and closed.
// Another process may take it before the caller binds it; callers that start a server on it
// retry (PrometheusServer::start does).
Result<uint16_t> free_tcp_port();

// The absolute path of `name` in a PATH directory, or "" when there is none.
std::string find_on_path(std::string_view name);

struct HttpResponse {
  int status = 0;       // from the status line, e.g. 200
  std::string headers;  // everything between the status line and the blank line
  std::string body;     // de-chunked when the server sent Transfer-Encoding: chunked
};

// GET http://127.0.0.1:port<target> on a fresh connection with "Connection: close"; reads the
// response to the end. kUnavailable when nothing accepts on the port, kDeadlineExceeded when
// the whole exchange takes longer than `timeout`, kInternal for a malformed response.
Result<HttpResponse> http_get(uint16_t port, std::string_view target,
                              milliseconds timeout = kHttpTimeout);

// Percent-encodes everything but RFC 3986 unreserved characters, for a query-string value.
std::string url_encode(std::string_view text);

// The sample values of a Prometheus instant-query answer
// ({"status":"success","data":{"resultType":"vector","result":[...]}}), one per series in the
// order given, "NaN" and "+Inf" included. An answer with "status":"error", another resultType
// or a shape this reader does not know is kInvalidArgument, quoting the answer.
Result<std::vector<double>> parse_vector_answer(std::string_view json);

struct ChildOutput {
  int exit_code = -1;  // 128 + signal when the child was killed
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (an absolute path) with `input` on its stdin; kDeadlineExceeded (with the output
// so far) when it does not exit within `timeout`, after which it has been killed.
Result<ChildOutput> run_with_input(const std::vector<std::string>& argv, std::string_view input,
                                   milliseconds timeout);

// A Prometheus server scraping http://127.0.0.1:<target_port>/metrics every second as job
// `job`, in a private temporary directory. The destructor stops it (SIGTERM to its process
// group, then SIGKILL after kStopTimeout) and removes the directory, so a failing test leaves
// nothing running.
class PrometheusServer {
 public:
  static constexpr milliseconds kReadyTimeout{30'000};
  static constexpr milliseconds kStopTimeout{10'000};

  // Writes the config, starts `prometheus_binary` on a free loopback port and waits (up to
  // kReadyTimeout) until GET /-/ready answers 200. If the server exits first (its port was
  // taken in between) it is started again on another port, a few times.
  static Result<std::unique_ptr<PrometheusServer>> start(const std::string& prometheus_binary,
                                                         const std::string& job,
                                                         uint16_t target_port);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  uint16_t port() const { return port_; }
  std::string log() const;  // its stdout and stderr so far

  // GET /api/v1/query?query=<promql>, parsed with parse_vector_answer.
  Result<std::vector<double>> query(std::string_view promql) const;

  // Polls query(promql) until it answers exactly one series whose value is `expected`, or
  // `timeout` passes; the error then quotes the last answer (or the last failure).
  Status wait_for_value(std::string_view promql, double expected, milliseconds timeout) const;

 private:
  PrometheusServer() = default;
  Status spawn(const std::string& binary);
  // OK once /-/ready answers 200; kUnavailable when the process exited first.
  Status wait_ready();
  void stop();

  std::string dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace coproc::test
