// The client library's contract: thread safety, poll for many,
// cancel and release rules, the in-flight window.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

class ClientApi : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(daemon_.started()) << daemon_.log(); }
  DaemonProcess daemon_{standard_models()};
};

TEST_F(ClientApi, shouldServeManyThreadsSharingOneClient) {
  ClientHandle client(daemon_.socket_path());
  ASSERT_EQ(client.status, COPROC_OK);
  coproc_model* noop = client.model("noop");
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      coproc_tensor in = arena_tensor(client.c, {2, 16});
      coproc_tensor out = arena_tensor(client.c, {2, 16});
      for (int i = 0; i < kRounds; ++i) {
        auto* x = static_cast<float*>(in.data);
        for (int k = 0; k < 32; ++k) x[k] = static_cast<float>(t * 100000 + i * 32 + k);
        coproc_request* r = nullptr;
        if (coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r) != COPROC_OK ||
            coproc_wait(r, 5'000'000'000) != COPROC_OK ||
            std::memcmp(in.data, out.data, in.bytes) != 0 || coproc_release(r) != COPROC_OK) {
          ++failures;
        }
        // Allocation is thread-safe too: churn it alongside.
        void* scratch = nullptr;
        if (coproc_alloc(client.c, 128 + static_cast<size_t>(i % 7) * 64, &scratch) != COPROC_OK ||
            coproc_free(client.c, scratch) != COPROC_OK) {
          ++failures;
        }
      }
      coproc_free(client.c, in.data);
      coproc_free(client.c, out.data);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(ClientApi, shouldPollManyRequestsUntilAllComplete) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* mlp = client.model("mlp");
  constexpr int kN = 16;
  std::vector<coproc_request*> requests(kN);
  coproc_tensor in = arena_tensor(client.c, {4, 256});
  std::vector<coproc_tensor> outs;
  for (int i = 0; i < kN; ++i) outs.push_back(arena_tensor(client.c, {4, 16}));
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &outs[i], 1, nullptr, &requests[i]), COPROC_OK);
  }
  // The usual loop: poll the ones still pending, drop those that completed.
  std::vector<coproc_request*> pending = requests;
  while (!pending.empty()) {
    size_t done = 0;
    ASSERT_EQ(coproc_poll(client.c, pending.data(), pending.size(), 5'000'000'000, &done), COPROC_OK);
    ASSERT_GE(done, 1u);
    std::erase_if(pending, [](coproc_request* r) { return coproc_request_status(r) != COPROC_ERR_IN_FLIGHT; });
  }
  for (auto* r : requests) {
    int32_t rank = 0;
    int64_t shape[COPROC_MAX_RANK];
    EXPECT_EQ(coproc_request_output_shape(r, 0, &rank, shape), COPROC_OK);
    EXPECT_EQ(rank, 2);
    EXPECT_EQ(shape[0], 4);
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
}

TEST_F(ClientApi, shouldCompleteEveryCancelledRequestExactlyOnce) {
  // inline_max 0: every request goes through the executor queue, so some
  // cancels find their target still queued.
  DaemonProcess daemon({"--inline-max-us", "0", "--model",
                        "mlp=" + models_dir() + "/mlp.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  constexpr int kN = 64;
  coproc_tensor in = arena_tensor(client.c, {32, 256});
  std::vector<coproc_tensor> outs;
  std::vector<coproc_request*> requests(kN);
  for (int i = 0; i < kN; ++i) outs.push_back(arena_tensor(client.c, {32, 16}));
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &outs[i], 1, nullptr, &requests[i]), COPROC_OK);
  }
  for (int i = kN / 2; i < kN; ++i) ASSERT_EQ(coproc_cancel(requests[i]), COPROC_OK);
  int ok = 0, cancelled = 0;
  for (int i = 0; i < kN; ++i) {
    coproc_status s = coproc_wait(requests[i], 10'000'000'000);
    if (s == COPROC_OK) ++ok;
    if (s == COPROC_ERR_CANCELLED) ++cancelled;
    EXPECT_TRUE(s == COPROC_OK || (s == COPROC_ERR_CANCELLED && i >= kN / 2)) << i << ": " << s;
    EXPECT_EQ(coproc_release(requests[i]), COPROC_OK);
  }
  EXPECT_EQ(ok + cancelled, kN);
  EXPECT_GT(cancelled, 0) << "no cancel reached a queued request";
}

TEST_F(ClientApi, shouldRefuseReleaseOfARequestInFlight) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* mlp = client.model("mlp");
  coproc_tensor in = arena_tensor(client.c, {32, 256});
  coproc_tensor out = arena_tensor(client.c, {32, 16});
  coproc_request* r = nullptr;
  ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  coproc_status early = coproc_release(r);
  EXPECT_TRUE(early == COPROC_ERR_IN_FLIGHT || early == COPROC_OK);
  if (early == COPROC_ERR_IN_FLIGHT) {
    EXPECT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK);
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
}

TEST_F(ClientApi, shouldReturnWouldBlockWhenTheInFlightWindowIsFull) {
  DaemonProcess daemon({"--ring-slots", "8", "--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  std::vector<coproc_request*> requests;
  coproc_status s = COPROC_OK;
  while (requests.size() < 100) {
    coproc_request* r = nullptr;
    s = coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r);
    if (s != COPROC_OK) break;
    requests.push_back(r);
  }
  EXPECT_EQ(s, COPROC_ERR_WOULD_BLOCK);
  EXPECT_EQ(requests.size(), 8u);
  for (auto* r : requests) {
    EXPECT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK);
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
}

TEST_F(ClientApi, shouldTimeOutInferAndFreeTheAbandonedRequestsWhenTheyComplete) {
  DaemonProcess daemon({"--ring-slots", "8", "--model", "noop=" + models_dir() + "/noop.onnx"});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  ASSERT_TRUE(daemon.stop_and_wait(5000));
  // While the daemon is frozen each infer times out, leaving its request and
  // its cancel in the 8-slot ring, until the ring is full.
  int timeouts = 0;
  coproc_status s = COPROC_OK;
  while ((s = coproc_infer(client.c, noop, &in, 1, &out, 1, 10'000'000)) == COPROC_ERR_IN_FLIGHT) {
    ++timeouts;
  }
  EXPECT_EQ(s, COPROC_ERR_WOULD_BLOCK);
  EXPECT_EQ(timeouts, 4);
  daemon.signal(SIGCONT);
  // Once their completions arrive the abandoned requests are freed: the
  // window opens again and nothing leaked.
  s = COPROC_ERR_WOULD_BLOCK;
  for (int i = 0; i < 1000 && s != COPROC_OK; ++i) {
    s = coproc_infer(client.c, noop, &in, 1, &out, 1, 1'000'000'000);
    if (s != COPROC_OK) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(s, COPROC_OK) << coproc_last_error();
  std::vector<coproc_request*> requests;
  for (int i = 0; i < 8; ++i) {
    coproc_request* r = nullptr;
    ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_OK) << i;
    requests.push_back(r);
  }
  for (auto* r : requests) {
    EXPECT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK);
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
}

TEST_F(ClientApi, shouldReportConnectFailureWithThePath) {
  coproc_connect_options o;
  coproc_connect_options_init(&o);
  o.socket_path = "/nonexistent/coproc.sock";
  coproc_client* c = nullptr;
  EXPECT_EQ(coproc_connect(&o, &c), COPROC_ERR_CONNECT);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(coproc_last_error()).find("/nonexistent/coproc.sock"), std::string::npos);
}

}  // namespace
}  // namespace coproc::test
