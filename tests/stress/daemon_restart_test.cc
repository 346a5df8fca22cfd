// Daemon restart: the daemon is SIGKILLed under its clients. A waiting call
// returns COPROC_ERR_DAEMON_GONE within 100 ms, every later call returns
// promptly, and once a new daemon runs on the same socket path the client
// disconnects, connects again and is served.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "coproc.h"
#include "stress_support.h"
#include "support/daemon_process.h"

namespace coproc::test {
namespace {

constexpr int64_t kGoneBoundMs = 100;
// Every call after the daemon died: "promptly" on a loaded machine.
constexpr int64_t kPromptMs = 2000;

coproc_client* connect_to(const std::string& socket, coproc_status* status) {
  coproc_connect_options co;
  coproc_connect_options_init(&co);
  co.socket_path = socket.c_str();
  co.spin_ns = 50'000;
  coproc_client* c = nullptr;
  *status = coproc_connect(&co, &c);
  return c;
}

coproc_tensor arena_floats(coproc_client* c, int64_t rows, int64_t cols) {
  coproc_tensor t{nullptr,
                  static_cast<uint64_t>(rows * cols) * sizeof(float),
                  COPROC_DTYPE_FLOAT32,
                  2,
                  {rows, cols}};
  EXPECT_EQ(coproc_alloc(c, t.bytes, &t.data), COPROC_OK) << coproc_last_error();
  return t;
}

// Runs `call`, expects `want` from it within kPromptMs.
template <class Call>
void expect_prompt(const char* what, coproc_status want, Call&& call) {
  const auto start = Clock::now();
  const coproc_status got = call();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  EXPECT_EQ(got, want) << what << ": " << coproc_strerror(got) << " (" << coproc_last_error()
                       << ")";
  EXPECT_LT(ms, kPromptMs) << what << " took " << ms << " ms";
}

// noop and mlp through a fresh connection, results checked.
void expect_served(coproc_client* c) {
  coproc_model *noop = nullptr, *mlp = nullptr;
  ASSERT_EQ(coproc_model_find(c, "noop", &noop), COPROC_OK);
  ASSERT_EQ(coproc_model_find(c, "mlp", &mlp), COPROC_OK);
  coproc_tensor in = arena_floats(c, 1, 16), out = arena_floats(c, 1, 16);
  for (int k = 0; k < 16; ++k) static_cast<float*>(in.data)[k] = static_cast<float>(k) * 0.5f;
  ASSERT_EQ(coproc_infer(c, noop, &in, 1, &out, 1, 10'000'000'000), COPROC_OK)
      << coproc_last_error();
  EXPECT_EQ(std::memcmp(in.data, out.data, 64), 0);

  const std::vector<float> x = read_f32(models_dir() + "/ref/mlp.b1.in0.f32");
  const std::vector<float> ref = read_f32(models_dir() + "/ref/mlp.b1.out0.f32");
  ASSERT_EQ(x.size(), 256u);
  ASSERT_EQ(ref.size(), 16u);
  float scale = 0;
  for (float v : ref) scale = std::max(scale, std::fabs(v));
  coproc_tensor xin = arena_floats(c, 1, 256), y = arena_floats(c, 1, 16);
  std::memcpy(xin.data, x.data(), 256 * sizeof(float));
  std::vector<coproc_request*> rs(8);
  for (auto*& r : rs)
    ASSERT_EQ(coproc_submit(c, mlp, &xin, 1, &y, 1, nullptr, &r), COPROC_OK) << coproc_last_error();
  for (auto* r : rs) {
    ASSERT_EQ(coproc_wait(r, 10'000'000'000), COPROC_OK) << coproc_last_error();
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
  for (int k = 0; k < 16; ++k)
    EXPECT_NEAR(static_cast<const float*>(y.data)[k], ref[static_cast<std::size_t>(k)],
                1e-5 * scale);
}

TEST(DaemonRestart, shouldFailEveryCallPromptlyAfterTheDaemonDiesAndServeAgainOnceANewOneRuns) {
  TempDir dir;
  const std::string socket = dir.path() + "/coprocd.sock";
  StressDaemon first(socket, standard_models());
  ASSERT_TRUE(first.start()) << first.log();

  coproc_status status;
  coproc_client* busy = connect_to(socket, &status);  // waits when the daemon dies
  ASSERT_EQ(status, COPROC_OK) << coproc_last_error();
  coproc_client* idle = connect_to(socket, &status);  // makes no call until after
  ASSERT_EQ(status, COPROC_OK) << coproc_last_error();
  expect_served(busy);

  coproc_model* noop = nullptr;
  ASSERT_EQ(coproc_model_find(busy, "noop", &noop), COPROC_OK);
  coproc_tensor in = arena_floats(busy, 1, 16), out = arena_floats(busy, 1, 16);
  // Frozen, the daemon answers nothing: these stay in flight until it dies.
  ASSERT_TRUE(first.stop_and_wait(5000));
  coproc_request *waited = nullptr, *other = nullptr;
  ASSERT_EQ(coproc_submit(busy, noop, &in, 1, &out, 1, nullptr, &waited), COPROC_OK);
  ASSERT_EQ(coproc_submit(busy, noop, &in, 1, &out, 1, nullptr, &other), COPROC_OK);
  std::atomic<int64_t> returned_ns{0};
  std::atomic<int> wait_status{-1};
  std::thread waiter([&] {
    wait_status = coproc_wait(waited, -1);  // forever: only the daemon's death ends it
    returned_ns = now_ns();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int64_t killed_ns = now_ns();
  first.kill_now();
  waiter.join();
  EXPECT_EQ(wait_status.load(), COPROC_ERR_DAEMON_GONE);
  EXPECT_LT((returned_ns.load() - killed_ns) / 1'000'000, kGoneBoundMs);

  // Every call afterwards returns, promptly, with what it can say.
  expect_prompt("wait forever", COPROC_ERR_DAEMON_GONE, [&] { return coproc_wait(other, -1); });
  coproc_request* both[] = {waited, other};
  expect_prompt("poll forever", COPROC_ERR_DAEMON_GONE,
                [&] { return coproc_poll(busy, both, 2, -1, nullptr); });
  coproc_request* late = nullptr;
  expect_prompt("submit", COPROC_ERR_DAEMON_GONE,
                [&] { return coproc_submit(busy, noop, &in, 1, &out, 1, nullptr, &late); });
  expect_prompt("infer", COPROC_ERR_DAEMON_GONE,
                [&] { return coproc_infer(busy, noop, &in, 1, &out, 1, -1); });
  expect_prompt("cancel", COPROC_ERR_DAEMON_GONE, [&] { return coproc_cancel(other); });
  expect_prompt("status", COPROC_ERR_IN_FLIGHT, [&] { return coproc_request_status(other); });
  // Never answered, so never released: disconnecting frees it.
  expect_prompt("release", COPROC_ERR_IN_FLIGHT, [&] { return coproc_release(other); });
  int event_fd = -1;
  expect_prompt("event_fd", COPROC_OK, [&] { return coproc_event_fd(busy, &event_fd); });
  void* scratch = nullptr;
  expect_prompt("alloc", COPROC_OK, [&] { return coproc_alloc(busy, 4096, &scratch); });
  expect_prompt("free", COPROC_OK, [&] { return coproc_free(busy, scratch); });
  coproc_model* found = nullptr;
  expect_prompt("model_find", COPROC_OK, [&] { return coproc_model_find(busy, "mlp", &found); });

  // A client that was idle when the daemon died learns it at the latest when
  // its window fills: never WOULD_BLOCK forever.
  coproc_model* idle_noop = nullptr;
  ASSERT_EQ(coproc_model_find(idle, "noop", &idle_noop), COPROC_OK);
  coproc_tensor idle_in = arena_floats(idle, 1, 16), idle_out = arena_floats(idle, 1, 16);
  expect_prompt("submit until the daemon is seen gone", COPROC_ERR_DAEMON_GONE, [&] {
    for (int i = 0; i < 100000; ++i) {
      coproc_request* r = nullptr;
      coproc_status s = coproc_submit(idle, idle_noop, &idle_in, 1, &idle_out, 1, nullptr, &r);
      if (s != COPROC_OK) return s;
    }
    return COPROC_OK;
  });

  // No daemon on the path: connecting fails at once.
  coproc_client* nobody = nullptr;
  expect_prompt("connect without a daemon", COPROC_ERR_CONNECT, [&] {
    coproc_status s;
    nobody = connect_to(socket, &s);
    return s;
  });
  EXPECT_EQ(nobody, nullptr);

  // A new daemon takes over the (stale) socket path; the clients reconnect.
  StressDaemon second(socket, standard_models());
  ASSERT_TRUE(second.start()) << second.log();
  coproc_disconnect(busy);
  coproc_disconnect(idle);
  busy = connect_to(socket, &status);
  ASSERT_EQ(status, COPROC_OK) << coproc_last_error();
  expect_served(busy);
  coproc_disconnect(busy);
  EXPECT_TRUE(second.alive()) << second.log();
}

}  // namespace
}  // namespace coproc::test
