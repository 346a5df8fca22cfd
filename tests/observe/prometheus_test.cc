// coprocd's HTTP endpoint against the real Prometheus tools: requests go in through libcoproc,
// then /metrics must pass `promtool check metrics` without a word, a real Prometheus server must
// scrape it and answer exactly those requests through its query API, and the health endpoints
// must answer while the daemon serves, report "draining" while SIGTERM waits for queued work, and
// go away with the daemon.
//
// promtool and prometheus come from the Debian package `prometheus`; without them these tests
// fail (they are what is being tested against), they never skip.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "prometheus_support.h"
#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kNoopRequests = 20;
constexpr int64_t kNoopWidth = 16;
constexpr int64_t kRequestTimeoutNs = 5'000'000'000;
// Prometheus 2.x applies a new target list at most every 5 s, so the first scrape lands 5-7 s
// after start; 30 s leaves room for a loaded machine.
constexpr milliseconds kFirstScrapeTimeout{30'000};
// Once `up` is 1, every other series of that scrape is already stored.
constexpr milliseconds kSameScrapeTimeout{5'000};
constexpr milliseconds kPromtoolTimeout{30'000};
// The daemon's HTTP listener may open just after its socket (DaemonProcess waits for that).
constexpr milliseconds kHttpUpTimeout{10'000};
constexpr milliseconds kHttpUpPollInterval{20};
constexpr int kDaemonExitTimeoutMs = 10'000;
constexpr int kDaemonStartAttempts = 3;

constexpr char kJob[] = "coproc";
// The per-model request latency histogram of the daemon's /metrics.
constexpr char kRequestHistogram[] = "coproc_request_duration_seconds";
constexpr char kInstallHint[] =
    "install the Debian package `prometheus` (tools/install-deps.sh installs it)";

// The absolute path of a tool from the `prometheus` package; empty when it is missing.
std::string prometheus_tool(const char* name) {
  std::string path = find_on_path(name);
  if (path.empty()) ADD_FAILURE() << name << " is not on PATH: " << kInstallHint;
  return path;
}

// The value of the sample `series` (name and labels exactly as printed) in a text exposition.
std::optional<double> sample_value(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

// Waits until GET /health/live answers 200, or the last failure once kHttpUpTimeout passed.
Status wait_until_http_answers(uint16_t port) {
  const auto deadline = Clock::now() + kHttpUpTimeout;
  for (;;) {
    Result<HttpResponse> r = http_get(port, "/health/live");
    if (r && r->status == 200) return {};
    if (Clock::now() >= deadline) {
      return make_error(
          ErrorCode::kDeadlineExceeded,
          r ? "GET /health/live answered " + std::to_string(r->status) + ": " + r->body
            : r.error().message);
    }
    std::this_thread::sleep_for(kHttpUpPollInterval);
  }
}

// Sends `count` requests to model noop one after the other, each waited for.
Status send_noop_requests(const std::string& socket, int count) {
  ClientHandle client(socket);
  if (client.status != COPROC_OK) {
    return make_error(ErrorCode::kUnavailable, std::string("connect: ") + coproc_last_error());
  }
  coproc_model* model = client.model("noop");
  std::vector<float> x(static_cast<std::size_t>(kNoopWidth), 0.5f);
  coproc_tensor in = arena_tensor(client.c, {1, kNoopWidth}, x.data());
  coproc_tensor out = arena_tensor(client.c, {1, kNoopWidth});
  for (int i = 0; i < count; ++i) {
    coproc_request* r = nullptr;
    if (coproc_submit(client.c, model, &in, 1, &out, 1, nullptr, &r) != COPROC_OK ||
        coproc_wait(r, kRequestTimeoutNs) != COPROC_OK) {
      return make_error(ErrorCode::kInternal,
                        "request " + std::to_string(i) + ": " + coproc_last_error());
    }
    coproc_release(r);
  }
  return {};
}

// A daemon with `args` plus --http-listen on a port chosen here, so a Prometheus config can name
// it. The port may be taken between free_tcp_port() and the daemon's bind, so a daemon that does
// not start is started again on another port, a few times; the last attempt is returned.
std::unique_ptr<DaemonProcess> start_daemon(const std::vector<std::string>& args,
                                            uint16_t* http_port) {
  std::unique_ptr<DaemonProcess> daemon;
  for (int attempt = 0; attempt < kDaemonStartAttempts; ++attempt) {
    Result<uint16_t> port = free_tcp_port();
    if (!port) continue;
    *http_port = *port;
    std::vector<std::string> with_http = args;
    with_http.insert(with_http.end(), {"--http-listen", "127.0.0.1:" + std::to_string(*port)});
    daemon = std::make_unique<DaemonProcess>(with_http);
    if (daemon->started()) break;
  }
  return daemon;
}

// One daemon for the suite, with its HTTP endpoint on a known port, that has answered kNoopRequests
// requests to noop. A failure to get there is kept and fails every test (SetUpTestSuite cannot fail
// a test by itself).
class CoprocdHttpEndpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = start_daemon(standard_models(), &port_).release();
    if (daemon_ == nullptr || !daemon_->started()) {
      setup_error_ = "coprocd did not start:\n" + (daemon_ ? daemon_->log() : "");
      return;
    }
    Status status = wait_until_http_answers(port_);
    if (status) status = send_noop_requests(daemon_->socket_path(), kNoopRequests);
    if (!status) setup_error_ = status.error().message + "\ncoprocd log:\n" + daemon_->log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static uint16_t port_;
  static DaemonProcess* daemon_;
  static std::string setup_error_;
};
uint16_t CoprocdHttpEndpoint::port_ = 0;
DaemonProcess* CoprocdHttpEndpoint::daemon_ = nullptr;
std::string CoprocdHttpEndpoint::setup_error_;

TEST_F(CoprocdHttpEndpoint, shouldServeMetricsThatPromtoolAcceptsWithoutAWarning) {
  const std::string promtool = prometheus_tool("promtool");
  ASSERT_FALSE(promtool.empty());

  Result<HttpResponse> metrics = http_get(port_, "/metrics");
  ASSERT_TRUE(metrics) << metrics.error().message;
  ASSERT_EQ(metrics->status, 200) << metrics->headers << "\n" << metrics->body;
  EXPECT_NE(metrics->headers.find("text/plain; version=0.0.4"), std::string::npos)
      << metrics->headers;
  EXPECT_EQ(sample_value(metrics->body, R"(coproc_requests_total{model="noop",status="ok"})"),
            kNoopRequests)
      << metrics->body;

  Result<ChildOutput> check =
      run_with_input({promtool, "check", "metrics"}, metrics->body, kPromtoolTimeout);
  ASSERT_TRUE(check) << check.error().message;
  // promtool prints lint findings (counter naming, missing HELP, units) and a parse error alike;
  // either is a failure.
  EXPECT_EQ(check->exit_code, 0) << check->output;
  EXPECT_EQ(check->output, "") << "promtool check metrics said something about:\n" << metrics->body;
}

TEST_F(CoprocdHttpEndpoint, shouldBeScrapedByPrometheusWithEveryRequestCounted) {
  const std::string binary = prometheus_tool("prometheus");
  ASSERT_FALSE(binary.empty());
  Result<std::unique_ptr<PrometheusServer>> started = PrometheusServer::start(binary, kJob, port_);
  ASSERT_TRUE(started) << started.error().message;
  const PrometheusServer& prometheus = **started;

  // up is Prometheus's own verdict on the scrape: 1 means it fetched and parsed /metrics.
  const Status up = prometheus.wait_for_value(R"(up{job="coproc"})", 1, kFirstScrapeTimeout);
  ASSERT_TRUE(up) << up.error().message << "\nprometheus log:\n" << prometheus.log();

  for (const std::string& series : {
           std::string(R"(coproc_requests_total{job="coproc",model="noop",status="ok"})"),
           std::string(kRequestHistogram) + R"(_count{job="coproc",model="noop"})",
           std::string(kRequestHistogram) + R"(_bucket{job="coproc",model="noop",le="+Inf"})",
       }) {
    const Status counted = prometheus.wait_for_value(series, kNoopRequests, kSameScrapeTimeout);
    EXPECT_TRUE(counted) << counted.error().message;
  }
  const Status ready =
      prometheus.wait_for_value(R"(coproc_up{job="coproc"})", 1, kSameScrapeTimeout);
  EXPECT_TRUE(ready) << ready.error().message;
}

TEST_F(CoprocdHttpEndpoint, shouldAnswerLiveAndReadyWhileServing) {
  Result<HttpResponse> live = http_get(port_, "/health/live");
  ASSERT_TRUE(live) << live.error().message;
  EXPECT_EQ(live->status, 200) << live->body;
  EXPECT_NE(live->body.find("live"), std::string::npos) << live->body;

  Result<HttpResponse> ready = http_get(port_, "/health/ready");
  ASSERT_TRUE(ready) << ready.error().message;
  EXPECT_EQ(ready->status, 200) << ready->body;
}

// A daemon whose model "held" keeps a lone request queued for kHoldUs (fixed batching waits
// for max_batch rows or max_wait_us), so SIGTERM finds work to drain for that long: the draining
// window is seconds wide, not a race.
constexpr int64_t kHoldUs = 3'000'000;
constexpr int64_t kHoldWaitNs = 3 * kHoldUs * 1'000;

std::string write_held_model_config() {
  const std::string path =
      "/tmp/coproc-prometheus-test-" + std::to_string(::getpid()) + "-held.toml";
  std::ofstream(path) << "[[model]]\nname = \"held\"\npath = \"" << models_dir()
                      << "/noop.onnx\"\nmode = \"fixed\"\nmax_batch = 8\nmax_wait_us = " << kHoldUs
                      << "\n";
  return path;
}

// Polls GET `target` until it answers `status` (bounded by kHttpUpTimeout); the last answer.
Result<HttpResponse> wait_for_status(uint16_t port, std::string_view target, int status) {
  const auto deadline = Clock::now() + kHttpUpTimeout;
  for (;;) {
    Result<HttpResponse> r = http_get(port, target);
    if ((r && r->status == status) || Clock::now() >= deadline) return r;
    std::this_thread::sleep_for(kHttpUpPollInterval);
  }
}

TEST(CoprocdHttpShutdown, shouldReportDrainingUntilTheQueuedRequestIsAnsweredThenStopListening) {
  const std::string config = write_held_model_config();
  uint16_t port = 0;
  std::unique_ptr<DaemonProcess> daemon = start_daemon({"--config", config}, &port);
  std::remove(config.c_str());  // read at start
  ASSERT_TRUE(daemon && daemon->started()) << (daemon ? daemon->log() : "");
  const Status up = wait_until_http_answers(port);
  ASSERT_TRUE(up) << up.error().message << "\n" << daemon->log();

  ClientHandle client(daemon->socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  std::vector<float> x(static_cast<std::size_t>(kNoopWidth), 0.5f);
  coproc_tensor in = arena_tensor(client.c, {1, kNoopWidth}, x.data());
  coproc_tensor out = arena_tensor(client.c, {1, kNoopWidth});
  coproc_request* request = nullptr;
  ASSERT_EQ(coproc_submit(client.c, client.model("held"), &in, 1, &out, 1, nullptr, &request),
            COPROC_OK)
      << coproc_last_error();
  // Queued in the daemon (not still in the ring) before SIGTERM, so the drain has to wait for it.
  const auto queued_until = Clock::now() + kHttpUpTimeout;
  std::optional<double> depth;
  while (depth != 1 && Clock::now() < queued_until) {
    Result<HttpResponse> metrics = http_get(port, "/metrics");
    if (metrics) {
      depth = sample_value(metrics->body, R"(coproc_queue_depth{model="held",priority="normal"})");
    }
    if (depth != 1) std::this_thread::sleep_for(kHttpUpPollInterval);
  }
  ASSERT_EQ(depth, 1) << "the request never showed as queued\n" << daemon->log();

  daemon->signal(SIGTERM);
  Result<HttpResponse> ready = wait_for_status(port, "/health/ready", 503);
  ASSERT_TRUE(ready) << ready.error().message;
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_EQ(ready->body, "not ready: draining\n");
  Result<HttpResponse> live = http_get(port, "/health/live");
  ASSERT_TRUE(live) << live.error().message;
  EXPECT_EQ(live->status, 200) << "the loop still turns while draining: " << live->body;

  EXPECT_EQ(coproc_wait(request, kHoldWaitNs), COPROC_OK) << coproc_last_error();
  coproc_release(request);
  ASSERT_NE(daemon->wait_exit(kDaemonExitTimeoutMs), -1) << daemon->log();
  Result<HttpResponse> after = http_get(port, "/health/live");
  ASSERT_FALSE(after) << "HTTP " << after->status << " after the daemon exited";
  EXPECT_EQ(after.error().code, ErrorCode::kUnavailable) << after.error().message;
}

}  // namespace
}  // namespace coproc::test
