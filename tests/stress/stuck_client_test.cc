// Stuck clients: one that stops reading its completions, one that submits past
// its window without reading, one that is stopped (SIGSTOP) with requests in
// flight. None may block the daemon or slow the other clients beyond a bound.
//
// Policy under test (client_session.h, poller.cc): the daemon never waits for
// a client. A client's completion ring holds its whole in-flight window, so a
// client that stops reading (or is stopped) with its window full keeps its
// results there and stays connected; its requests ran. A client that submits
// past its window and does not read overflows the ring: the completion is
// dropped and counted, and the client is disconnected.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "coproc.h"
#include "load_client.h"
#include "stress_support.h"
#include "support/daemon_process.h"
#include "support/raw_client.h"

namespace coproc::test {
namespace {

constexpr uint32_t kRingSlots = 16;  // the window; small so a raw client fills it fast
constexpr uint32_t kNoopModelId = 0;
// "Bounded" for a healthy client's latency while another client is stuck, on
// a loaded 2-core machine (sanitizer builds included).
constexpr uint64_t kBoundedLatencyNs = 2'000'000'000;
constexpr int kHealthyRunMs = 2000;

// Pushes noop requests ids [first, first + n) into the raw client's ring,
// retrying while the poller has not drained it yet.
bool push_noops(RawClient& raw, uint64_t first, uint32_t n) {
  for (uint64_t id = first; id < first + n; ++id) {
    const uint64_t slot = (id % kRingSlots) * 128;  // input at slot, output at slot + 64
    auto* in = reinterpret_cast<float*>(raw.arena() + slot);
    for (int k = 0; k < 16; ++k) in[k] = static_cast<float>(id * 100 + static_cast<uint64_t>(k));
    auto bytes = make_request(id, kNoopModelId, slot, 64, {1, 16}, slot + 64, 64);
    if (!eventually([&] { return raw.push(bytes); }, 5000)) return false;
  }
  return true;
}

// A healthy load client runs for kHealthyRunMs; its report says how it fared.
struct HealthyRun {
  int exit_code = -1;
  uint64_t submitted = 0, ok = 0, max_latency_ns = 0;
  std::string error;
};

HealthyRun run_healthy_client(
    const std::string& socket, bool mlp_only, const std::function<void()>& meanwhile = [] {}) {
  Shared<std::atomic<int>> stop;
  Shared<LoadReport> report;
  LoadOptions o;
  o.socket = socket;
  o.in_flight = 4;
  o.mlp_only = mlp_only;
  o.stop = &stop[0];
  pid_t pid = spawn([&] { return run_load_client(o, &report[0]); });
  eventually([&] { return report->connected.load() != 0; }, 30000);
  const auto until = Clock::now() + std::chrono::milliseconds(kHealthyRunMs);
  meanwhile();
  std::this_thread::sleep_until(until);
  stop[0].store(1);
  HealthyRun run;
  run.exit_code = reap(pid, 60000);
  run.submitted = report->submitted.load();
  run.ok = report->completed_ok.load();
  run.max_latency_ns = report->max_latency_ns.load();
  run.error = report->first_error;
  return run;
}

void expect_healthy(const HealthyRun& run) {
  EXPECT_EQ(run.exit_code, 0) << run.error;
  EXPECT_GT(run.submitted, 0u);
  EXPECT_EQ(run.ok, run.submitted) << run.error;
  EXPECT_LT(run.max_latency_ns, kBoundedLatencyNs);
  std::printf(
      "[ stuck client ] healthy client: %llu requests, all exactly once, max latency %.2f ms\n",
      static_cast<unsigned long long>(run.ok), run.max_latency_ns / 1e6);
}

std::vector<std::string> small_window_daemon() {
  auto args = standard_models();
  args.insert(args.end(), {"--ring-slots", std::to_string(kRingSlots)});
  return args;
}

TEST(StuckClient, shouldKeepServingOthersWhileAClientWithAFullCompletionRingNeverReads) {
  DaemonProcess daemon(small_window_daemon());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawClient stuck(daemon.socket_path());
  ASSERT_TRUE(stuck.connected());
  ASSERT_TRUE(push_noops(stuck, 1, kRingSlots));
  // Its whole window answered into its ring, which it does not read.
  Books books;
  ASSERT_TRUE(eventually(
      [&] { return read_books(daemon.socket_path(), &books) && books.completed_ok >= kRingSlots; },
      10000))
      << books.describe();

  expect_healthy(run_healthy_client(daemon.socket_path(), /*mlp_only=*/false));

  // Within its window it did nothing wrong: still connected, and every
  // answer is there, exactly once, right.
  EXPECT_FALSE(stuck.closed_by_daemon(0));
  std::set<uint64_t> ids;
  for (uint32_t i = 0; i < kRingSlots; ++i) {
    auto c = stuck.next_completion(5000);
    ASSERT_TRUE(c.has_value()) << i;
    EXPECT_EQ(c->status, 0) << c->message;
    EXPECT_TRUE(ids.insert(c->id).second) << "id " << c->id << " answered twice";
    const std::byte* slot = stuck.arena() + (c->id % kRingSlots) * 128;
    EXPECT_EQ(std::memcmp(slot, slot + 64, 64), 0) << "id " << c->id;
  }
  EXPECT_FALSE(stuck.next_completion(100).has_value()) << "more answers than requests";
  EXPECT_EQ(daemon.wait_exit(0), -1) << daemon.log();
}

TEST(StuckClient, shouldDisconnectAClientThatSubmitsPastItsWindowWithoutReading) {
  DaemonProcess daemon(small_window_daemon());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const int baseline = count_client_segment_mappings(daemon.pid());
  RawClient stuck(daemon.socket_path());
  ASSERT_TRUE(stuck.connected());

  expect_healthy(run_healthy_client(daemon.socket_path(), /*mlp_only=*/false, [&] {
    // Meanwhile: a full window and then more, never reading.
    EXPECT_TRUE(push_noops(stuck, 1, kRingSlots + 8));
    EXPECT_TRUE(stuck.closed_by_daemon(10000)) << "the overflowing client is disconnected";
  }));

  EXPECT_NE(daemon.log().find("completion ring overflowed"), std::string::npos) << daemon.log();
  EXPECT_TRUE(
      eventually([&] { return count_client_segment_mappings(daemon.pid()) == baseline; }, 10000));
  Books books;
  EXPECT_TRUE(eventually(
      [&] { return read_books(daemon.socket_path(), &books) && books.balanced(); }, 10000))
      << books.describe();
  EXPECT_EQ(daemon.wait_exit(0), -1) << daemon.log();
}

// A libcoproc client that submits `n` noop requests, says so, and waits for
// them (asleep on its futex: spin 0). Exit 0 when each came back once and right.
int submit_then_wait(const std::string& socket, int n, std::atomic<int>* submitted) {
  coproc_connect_options co;
  coproc_connect_options_init(&co);
  co.socket_path = socket.c_str();
  co.spin_ns = 0;
  coproc_client* c = nullptr;
  if (coproc_connect(&co, &c) != COPROC_OK) return 10;
  coproc_model* noop = nullptr;
  if (coproc_model_find(c, "noop", &noop) != COPROC_OK) return 11;
  std::vector<coproc_tensor> ins(static_cast<std::size_t>(n)), outs(static_cast<std::size_t>(n));
  std::vector<coproc_request*> requests(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < ins.size(); ++i) {
    ins[i] = {nullptr, 64, COPROC_DTYPE_FLOAT32, 2, {1, 16}};
    outs[i] = ins[i];
    if (coproc_alloc(c, 64, &ins[i].data) != COPROC_OK ||
        coproc_alloc(c, 64, &outs[i].data) != COPROC_OK)
      return 12;
    for (int k = 0; k < 16; ++k)
      static_cast<float*>(ins[i].data)[k] =
          static_cast<float>(i * 16 + static_cast<std::size_t>(k));
    if (coproc_submit(c, noop, &ins[i], 1, &outs[i], 1, nullptr, &requests[i]) != COPROC_OK)
      return 13;
  }
  submitted->store(1);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (coproc_wait(requests[i], 60'000'000'000) != COPROC_OK) return 14;
    if (std::memcmp(ins[i].data, outs[i].data, 64) != 0) return 15;
    if (coproc_release(requests[i]) != COPROC_OK) return 16;
  }
  coproc_disconnect(c);
  return 0;
}

bool process_stopped(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'T';
}

TEST(StuckClient, shouldKeepServingOthersWhileAClientIsStoppedWithRequestsInFlight) {
  // noop batches wait 300 ms to fill, so the stopped client's requests are
  // still queued when it stops and are answered while it is stopped; the
  // healthy client uses mlp, batched at once.
  TempDir dir;
  StressDaemon daemon(
      dir.path() + "/coprocd.sock",
      {"--config",
       write_two_model_config(dir, "mode = \"fixed\"\nmax_batch = 64\nmax_wait_us = 300000",
                              "mode = \"dynamic\"\nmax_batch = 16")});
  ASSERT_TRUE(daemon.start()) << daemon.log();
  constexpr int kInFlight = 8;
  Shared<std::atomic<int>> submitted;
  pid_t stopped =
      spawn([&] { return submit_then_wait(daemon.socket_path(), kInFlight, &submitted[0]); });
  ASSERT_TRUE(eventually([&] { return submitted[0].load() != 0; }, 30000));
  ::kill(stopped, SIGSTOP);
  ASSERT_TRUE(eventually([&] { return process_stopped(stopped); }, 5000));

  Books books;
  expect_healthy(run_healthy_client(daemon.socket_path(), /*mlp_only=*/true, [&] {
    // The stopped client's requests still run: its answers wait in its ring.
    EXPECT_TRUE(eventually(
        [&] { return read_books(daemon.socket_path(), &books) && books.completed_ok >= kInFlight; },
        5000))
        << books.describe();
  }));
  EXPECT_TRUE(process_stopped(stopped));
  EXPECT_TRUE(eventually([&] { return count_client_segment_mappings(daemon.pid()) == 1; }, 10000))
      << "the stopped client stays connected, the others' segments go";

  ::kill(stopped, SIGCONT);
  EXPECT_EQ(reap(stopped, 30000), 0) << "after SIGCONT it finds every answer, once and right";
  EXPECT_TRUE(daemon.alive()) << daemon.log();
}

}  // namespace
}  // namespace coproc::test
