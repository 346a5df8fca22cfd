// coproc-stat against a real coprocd: requests go in through libcoproc, then
// the coproc-stat binary runs as a child and its table, --json, --prometheus,
// --health and --watch (driven in tmux) must show exactly those requests.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "coproc/segment.h"
#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kNoopRequests = 20;
constexpr int kMlpRequests = 3;
constexpr uint32_t kNoopMaxBatch = 8;

std::string stat_path() { return COPROC_TEST_BIN_DIR "/coproc-stat"; }

struct ChildRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// Runs a shell command line; its output and exit code.
ChildRun run(const std::string& command) {
  ChildRun r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

ChildRun stat(const std::string& socket, const std::string& flags) {
  return run(stat_path() + " --socket " + socket + " " + flags);
}

std::string write_config() {
  const std::string path = "/tmp/coproc-ops-test-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path) << "[[model]]\nname = \"noop\"\npath = \"" << models_dir()
                      << "/noop.onnx\"\nmax_batch = " << kNoopMaxBatch << "\n\n[[model]]\n"
                      << "name = \"mlp\"\npath = \"" << models_dir() << "/mlp.onnx\"\n";
  return path;
}

// Sends `count` requests to `model` one after the other, each answered.
void send_requests(const std::string& socket, const char* model, int64_t width, int count) {
  ClientHandle client(socket);
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  coproc_model* m = client.model(model);
  std::vector<float> x(static_cast<std::size_t>(width), 0.5f);
  coproc_tensor in = arena_tensor(client.c, {1, width}, x.data());
  coproc_tensor out = arena_tensor(client.c, {1, width == 256 ? 16 : width});
  for (int i = 0; i < count; ++i) {
    coproc_request* r = nullptr;
    ASSERT_EQ(coproc_submit(client.c, m, &in, 1, &out, 1, nullptr, &r), COPROC_OK)
        << coproc_last_error();
    ASSERT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK) << coproc_last_error();
    ASSERT_EQ(coproc_release(r), COPROC_OK);
  }
}

// "name{labels}" -> value, from Prometheus text; also the names with HELP and TYPE lines.
struct Exposition {
  std::map<std::string, double> samples;
  std::vector<std::string> order;  // sample keys in the order printed
  std::map<std::string, std::string> types;
  std::map<std::string, bool> helped;
};

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      e.helped[line.substr(7, line.find(' ', 7) - 7)] = true;
    } else if (line.rfind("# TYPE ", 0) == 0) {
      const std::size_t sp = line.find(' ', 7);
      e.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
    } else if (!line.empty()) {
      const std::size_t sp = line.rfind(' ');
      e.samples[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
      e.order.push_back(line.substr(0, sp));
    }
  }
  return e;
}

class CoprocStat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new DaemonProcess({"--config", write_config()});
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
    send_requests(daemon_->socket_path(), "noop", 16, kNoopRequests);
    send_requests(daemon_->socket_path(), "mlp", 256, kMlpRequests);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  static const std::string& socket() { return daemon_->socket_path(); }
  static DaemonProcess* daemon_;
};
DaemonProcess* CoprocStat::daemon_ = nullptr;

TEST_F(CoprocStat, shouldPrintATableNamingEveryModelWithItsCounts) {
  const ChildRun r = stat(socket(), "");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("  ready  up "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("numa node "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("http 127.0.0.1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\ndevices\n  cpu  busy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  gpu  not in use"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("end to end, per request"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nclients\n  none connected"), std::string::npos)
      << "coproc-stat's own hello is not a client\n"
      << r.out;
  EXPECT_NE(r.out.find("model noop"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model mlp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accepted 20  completed 20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accepted 3  completed 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("of max 8"), std::string::npos) << "max_batch from the model table\n"
                                                       << r.out;
  EXPECT_NE(r.out.find("bucket estimates"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("depth critical 0 high 0 normal 0 low 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("suggestions:"), std::string::npos) << r.out;
}

TEST_F(CoprocStat, shouldPrintJsonWithTheExactCounters) {
  const std::string path = "/tmp/coproc-ops-test-" + std::to_string(::getpid()) + ".json";
  const ChildRun r = stat(socket(), "--json > " + path);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const ChildRun check =
      run(std::string(COPROC_TEST_PYTHON) +
          " -c 'import json,sys\n"
          "d = json.load(open(sys.argv[1]))\n"
          "m = {x[\"name\"]: x for x in d[\"models\"]}\n"
          "n = m[\"noop\"]\n"
          "print(d[\"daemon\"][\"state\"], n[\"accepted\"], n[\"completed\"][\"ok\"], "
          "n[\"completed_total\"],"
          " n[\"max_batch\"], sum(n[\"queue_ns_histogram\"]), sum(n[\"batch_size_histogram\"]) =="
          " n[\"batches\"], n[\"queue_depth\"], m[\"mlp\"][\"accepted\"], "
          "m[\"mlp\"][\"completed\"][\"ok\"],"
          " len(n[\"exec_ns_histogram\"]), sum(n[\"e2e_ns_histogram\"]), n[\"device\"],"
          " d[\"daemon\"][\"clients_total\"], d[\"devices\"][0][\"device\"], "
          "d[\"devices\"][0][\"present\"],"
          " d[\"daemon\"][\"http_port\"] > 0, d[\"daemon\"][\"rss_bytes\"] > 0, "
          "d[\"daemon\"][\"threads\"] >= 3,"
          " type(d[\"suggestions\"]).__name__)' " +
          path);
  std::remove(path.c_str());
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(
      check.out,
      "ready 20 20 20 8 20 True [0, 0, 0, 0] 3 3 160 20 cpu 2 cpu True True True True list\n");
}

TEST_F(CoprocStat, shouldExposePrometheusMetricsWithCumulativeHistograms) {
  const ChildRun r = stat(socket(), "--prometheus");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Exposition e = parse_exposition(r.out);
  EXPECT_EQ(e.samples.at("coproc_up"), 1.0);
  EXPECT_LT(e.samples.at("coproc_heartbeat_age_seconds"), 3.0);
  EXPECT_EQ(e.samples.at(R"(coproc_requests_total{model="noop",status="ok"})"), kNoopRequests);
  EXPECT_EQ(e.samples.at(R"(coproc_requests_total{model="mlp",status="ok"})"), kMlpRequests);
  EXPECT_EQ(e.samples.at(R"(coproc_requests_total{model="noop",status="deadline_exceeded"})"), 0);
  EXPECT_EQ(e.samples.at(R"(coproc_requests_rejected_total{model="noop",reason="queue_full"})"), 0);
  EXPECT_EQ(e.samples.at(R"(coproc_request_duration_seconds_count{model="noop"})"), kNoopRequests);
  EXPECT_EQ(e.samples.at(R"(coproc_queue_depth{model="noop",priority="normal"})"), 0);
  const double batches = e.samples.at(R"(coproc_batches_total{model="noop",device="cpu"})") +
                         e.samples.at(R"(coproc_batches_total{model="noop",device="gpu"})");
  EXPECT_EQ(e.samples.at(R"(coproc_batch_size_count{model="noop"})"), batches);
  EXPECT_EQ(e.samples.at(R"(coproc_request_queue_seconds_count{model="noop"})"), kNoopRequests);
  EXPECT_EQ(e.samples.at(R"(coproc_request_queue_seconds_count{model="mlp"})"), kMlpRequests);

  const std::map<std::string, std::string> expected_types = {
      {"coproc_up", "gauge"},
      {"coproc_heartbeat_age_seconds", "gauge"},
      {"coproc_requests_total", "counter"},
      {"coproc_requests_rejected_total", "counter"},
      {"coproc_request_duration_seconds", "histogram"},
      {"coproc_device_busy_seconds_total", "counter"},
      {"coproc_client_in_flight", "gauge"},
      {"coproc_queue_depth", "gauge"},
      {"coproc_batches_total", "counter"},
      {"coproc_batch_size", "histogram"},
      {"coproc_request_queue_seconds", "histogram"},
      {"coproc_batch_execution_seconds", "histogram"}};
  for (const auto& [name, type] : expected_types) {
    EXPECT_EQ(e.types.count(name) ? e.types.at(name) : "", type) << name;
    EXPECT_TRUE(e.helped.count(name)) << name << " has no HELP line";
  }
  // Every histogram of every model: buckets never decrease, +Inf comes last and equals _count.
  for (const char* h : {"coproc_batch_size", "coproc_request_queue_seconds",
                        "coproc_batch_execution_seconds", "coproc_request_duration_seconds"}) {
    for (const char* model : {"noop", "mlp"}) {
      const std::string prefix = std::string(h) + "_bucket{model=\"" + model + "\",le=\"";
      double last = 0;
      std::string last_le;
      int buckets = 0;
      for (const std::string& key : e.order) {
        if (key.rfind(prefix, 0) != 0) continue;
        ASSERT_NE(last_le, "+Inf") << key << " after +Inf";
        EXPECT_GE(e.samples.at(key), last) << key;
        last = e.samples.at(key);
        last_le = key.substr(prefix.size(), key.size() - prefix.size() - 2);
        ++buckets;
      }
      EXPECT_GT(buckets, 1) << h << " " << model;
      EXPECT_EQ(last_le, "+Inf") << h << " " << model;
      const std::string labels = std::string("{model=\"") + model + "\"}";
      EXPECT_EQ(last, e.samples.at(std::string(h) + "_count" + labels)) << h << " " << model;
      EXPECT_TRUE(e.samples.count(std::string(h) + "_sum" + labels)) << h << " " << model;
    }
  }
  EXPECT_EQ(e.samples.at(R"(coproc_batch_size_sum{model="noop"})"), kNoopRequests)
      << "one row per noop request";
}

TEST_F(CoprocStat, shouldPassPromtoolCheckMetrics) {
  // tools/install-deps.sh installs Debian's prometheus package, which carries promtool.
  ASSERT_EQ(run("promtool --version").exit_code, 0)
      << "promtool is not installed (make test installs it)";
  const ChildRun r =
      run(stat_path() + " --socket " + socket() + " --prometheus | promtool check metrics");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "") << "promtool's lint findings";
}

TEST(CoprocStatClients, shouldListAConnectedClientWithItsCountsAndDropItWhenItLeaves) {
  DaemonProcess daemon({"--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string socket = daemon.socket_path();
  auto client = std::make_unique<ClientHandle>(socket);
  ASSERT_EQ(client->status, COPROC_OK) << coproc_last_error();
  coproc_model* m = client->model("noop");
  coproc_tensor in = arena_tensor(client->c, {1, 16});
  coproc_tensor out = arena_tensor(client->c, {1, 16});
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(coproc_infer(client->c, m, &in, 1, &out, 1, 5'000'000'000), COPROC_OK);
  }
  coproc_tensor bad = arena_tensor(client->c, {1, 15});  // wrong width: answered with an error
  EXPECT_NE(coproc_infer(client->c, m, &bad, 1, &out, 1, 5'000'000'000), COPROC_OK);

  const std::string me = std::to_string(::getpid());
  const ChildRun r = stat(socket, "--json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string row = "\"pid\":" + me + ",";
  const std::size_t at = r.out.find(row);
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string client_json = r.out.substr(at, r.out.find('}', at) - at);
  EXPECT_NE(
      client_json.find("\"requests\":8,\"completed_ok\":7,\"completed_error\":1,\"in_flight\":0"),
      std::string::npos)
      << client_json;
  const ChildRun table = stat(socket, "");
  EXPECT_NE(table.out.find("completed   errors in flight"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" " + me + " "), std::string::npos) << table.out;

  client.reset();
  const auto until = Clock::now() + std::chrono::seconds(5);
  std::string after;
  while (Clock::now() < until) {
    after = stat(socket, "--json").out;
    if (after.find(row) == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(after.find(row), std::string::npos) << "a client that left is still listed\n" << after;
}

TEST(CoprocStatClients, shouldNotCountObserversAgainstMaxClients) {
  DaemonProcess daemon({"--model", "noop=" + models_dir() + "/noop.onnx", "--max-clients", "1"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  // The daemon is full with this client. Connections still waiting to say hello count against
  // the same limit, and the harness's start-up probe may be one for a moment: retry briefly.
  std::unique_ptr<ClientHandle> client;
  const auto until = Clock::now() + std::chrono::seconds(5);
  do {
    client = std::make_unique<ClientHandle>(daemon.socket_path());
    if (client->status == COPROC_OK) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (Clock::now() < until);
  ASSERT_EQ(client->status, COPROC_OK) << coproc_last_error();
  const ChildRun health = stat(daemon.socket_path(), "--health");
  EXPECT_EQ(health.exit_code, 0) << health.out;
  const ChildRun table = stat(daemon.socket_path(), "");
  EXPECT_NE(table.out.find("clients 1 of 1 (accepted 1 since start)"), std::string::npos)
      << table.out;
}

// A client that says hello and hangs up before the reply: the count of connected clients goes
// back to 0, never below (it once wrapped to 2^64 - 1 when the reply failed).
TEST(CoprocStatClients, shouldCountNoClientsAfterHellosThatHangUpAtOnce) {
  DaemonProcess daemon({"--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  for (int i = 0; i < 50; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, daemon.socket_path().c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const wire::HelloRequest hello{wire::kHelloMagic, wire::kProtocolVersion,
                                   wire::HelloKind::kClient, 0};
    ASSERT_EQ(::send(fd, &hello, sizeof(hello), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));
    ::close(fd);
  }
  const auto until = Clock::now() + std::chrono::seconds(5);
  std::string json;
  while (Clock::now() < until) {
    json = stat(daemon.socket_path(), "--json").out;
    if (json.find("\"clients_connected\":0,") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(json.find("\"clients_connected\":0,\"clients_total\":"), std::string::npos) << json;
}

TEST_F(CoprocStat, shouldReportHealthyForALiveDaemon) {
  const ChildRun r = stat(socket(), "--health");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("ok: "), std::string::npos) << r.out;
}

TEST(CoprocStatHealth, shouldFailWithAReasonWhenNoDaemonListensAtTheSocket) {
  const ChildRun r =
      run(stat_path() + " --socket /tmp/coproc-ops-no-such-dir/coprocd.sock --health");
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("unhealthy: no daemon at /tmp/coproc-ops-no-such-dir/coprocd.sock"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line\n" << r.out;
}

TEST(CoprocStatHealth, shouldFailAfterTheDaemonStops) {
  DaemonProcess daemon({"--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ASSERT_EQ(stat(daemon.socket_path(), "--health").exit_code, 0);
  daemon.signal(SIGTERM);
  ASSERT_NE(daemon.wait_exit(10'000), -1) << daemon.log();
  const ChildRun r = stat(daemon.socket_path(), "--health");
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("unhealthy: "), std::string::npos) << r.out;
}

// A private tmux server for one test, killed with it.
class Tmux {
 public:
  Tmux() : server_("coproc-ops-" + std::to_string(::getpid())) {}
  ~Tmux() { run(tmux("kill-server")); }
  std::string tmux(const std::string& args) const { return "tmux -L " + server_ + " " + args; }
  std::string screen() const { return run(tmux("capture-pane -p -t stat")).out; }
  // Polls the screen until it contains `text` (up to 5 s).
  bool wait_for(const std::string& text) const {
    const auto until = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < until) {
      if (screen().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string server_;
};

TEST_F(CoprocStat, shouldRefreshTheWatchScreenWithNewCountsAndExitOnInterrupt) {
  // tools/install-deps.sh installs tmux: without it this test fails rather than skips.
  ASSERT_EQ(run("tmux -V").exit_code, 0) << "tmux is not installed (make test installs it)";
  Tmux tmux;
  const ChildRun started = run(tmux.tmux("new-session -d -s stat -x 120 -y 60 '" + stat_path() +
                                         " --socket " + socket() + " --watch --interval-ms 100'"));
  ASSERT_EQ(started.exit_code, 0) << started.out;
  ASSERT_TRUE(tmux.wait_for("model mlp")) << tmux.screen();
  const std::string before = tmux.screen();
  EXPECT_NE(before.find("model noop"), std::string::npos) << before;
  EXPECT_NE(before.find("accepted 20  completed 20"), std::string::npos) << before;

  send_requests(socket(), "noop", 16, 5);
  EXPECT_TRUE(tmux.wait_for("accepted 25  completed 25")) << tmux.screen();
  EXPECT_TRUE(tmux.wait_for("req/s")) << tmux.screen();

  ASSERT_EQ(run(tmux.tmux("send-keys -t stat C-c")).exit_code, 0);
  const auto until = Clock::now() + std::chrono::seconds(5);
  bool exited = false;
  while (!exited && Clock::now() < until) {
    exited = run(tmux.tmux("has-session -t stat")).exit_code != 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(exited) << "coproc-stat --watch still runs after Ctrl-C\n" << tmux.screen();
}

}  // namespace
}  // namespace coproc::test
