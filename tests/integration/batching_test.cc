// Batching (the dispatcher and its scheduler) with a real daemon and real clients:
// variable-length batches padded and cropped, admission limits, prompt deadlines, cancellation,
// SIGHUP policy reload, and exactly-once completion under load from many processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>

#include "coproc/segment.h"
#include "support/daemon_process.h"
#include "support/raw_client.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

using Clock = std::chrono::steady_clock;

TEST(Batching, shouldBatchVariableLengthRequestsPaddingToTheBucketAndCroppingEachOutput) {
  DaemonProcess daemon({"--config", write_config("seq", model_block("seq", R"(
mode = "fixed"
max_batch = 4
max_wait_us = 200000
length_buckets = [4, 8]
)"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* seq = client.model("seq");
  const std::vector<int64_t> lengths = {5, 6, 7, 8};
  std::vector<coproc_tensor> ins, outs;
  std::vector<coproc_request*> requests(lengths.size());
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    std::vector<float> x(static_cast<std::size_t>(lengths[i]) * 8);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<float>(k % 7) - 3.f + static_cast<float>(i);
    ins.push_back(arena_tensor(client.c, {1, lengths[i], 8}, x.data()));
    outs.push_back(arena_tensor(client.c, {1, lengths[i], 8}));
  }
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    ASSERT_EQ(coproc_submit(client.c, seq, &ins[i], 1, &outs[i], 1, nullptr, &requests[i]), COPROC_OK);
  }
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    ASSERT_EQ(coproc_wait(requests[i], 5'000'000'000), COPROC_OK) << coproc_last_error();
    int32_t rank = 0;
    int64_t shape[COPROC_MAX_RANK];
    ASSERT_EQ(coproc_request_output_shape(requests[i], 0, &rank, shape), COPROC_OK);
    EXPECT_EQ(rank, 3);
    EXPECT_EQ(shape[1], lengths[i]) << "output cropped to the request's own length";
    coproc_timing timing;
    ASSERT_EQ(coproc_request_timing(requests[i], &timing), COPROC_OK);
    EXPECT_EQ(timing.batch_size, 4u) << "all four rode in one batch";
    for (std::size_t k = 0; k < static_cast<std::size_t>(lengths[i]) * 8; ++k) {
      float expect = std::max(0.f, 2.f * floats(ins[i])[k]);
      ASSERT_EQ(floats(outs[i])[k], expect) << "request " << i << " element " << k;
    }
    EXPECT_EQ(coproc_release(requests[i]), COPROC_OK);
  }
}

TEST(Batching, shouldCapBatchesByTheEstimatedActivationMemory) {
  // One row of seq at length 8 needs its input and its output, 8 x 8 x 4
  // bytes each (the runtime writes the Mul straight into the output and runs
  // Relu in place: no scratch), so 512 bytes a row: 1100 allow two, not four.
  DaemonProcess daemon({"--config", write_config("memory", model_block("seq", R"(
mode = "fixed"
max_batch = 4
max_wait_us = 200000
memory_limit = 1100
length_buckets = [8]
)"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* seq = client.model("seq");
  std::vector<coproc_tensor> ins, outs;
  std::vector<coproc_request*> requests(4);
  for (int i = 0; i < 4; ++i) {
    ins.push_back(arena_tensor(client.c, {1, 8, 8}));
    outs.push_back(arena_tensor(client.c, {1, 8, 8}));
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(coproc_submit(client.c, seq, &ins[i], 1, &outs[i], 1, nullptr, &requests[i]), COPROC_OK);
  }
  for (auto* r : requests) {
    ASSERT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK) << coproc_last_error();
    coproc_timing timing;
    ASSERT_EQ(coproc_request_timing(r, &timing), COPROC_OK);
    EXPECT_EQ(timing.batch_size, 2u);
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
}

TEST(Batching, shouldRefuseAMemoryLimitOnAVariableLengthModelWithoutBuckets) {
  DaemonProcess daemon({"--config", write_config("memory-nobuckets",
                                                 model_block("seq", "memory_limit = 2000"))});
  EXPECT_FALSE(daemon.started());
  int status = daemon.wait_exit(30000);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  EXPECT_NE(daemon.log().find("model 'seq': memory_limit needs length_buckets"), std::string::npos)
      << daemon.log();
}

TEST(Batching, shouldAnswerResourceExhaustedAtOnceWhenTheQueueIsFull) {
  DaemonProcess daemon({"--config", write_config("full", model_block("noop", R"(
mode = "fixed"
max_batch = 64
max_wait_us = 300000
queue_limit = 3
)"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  std::vector<coproc_request*> requests(5);
  for (auto*& r : requests) ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  int ok = 0, exhausted = 0;
  for (auto* r : requests) {
    coproc_status s = coproc_wait(r, 5'000'000'000);
    ok += s == COPROC_OK;
    exhausted += s == COPROC_ERR_RESOURCE_EXHAUSTED;
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(exhausted, 2);
}

TEST(Batching, shouldExpireAQueuedRequestAtItsDeadlineNotWhenTheNextBatchForms) {
  DaemonProcess daemon({"--config", write_config("deadline", model_block("noop", R"(
mode = "fixed"
max_batch = 64
max_wait_us = 5000000
timeout_ms = 40
)"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  coproc_submit_options o;
  coproc_submit_options_init(&o);
  o.deadline_ns = coproc_now_ns() + 30'000'000;
  coproc_request* explicit_deadline = nullptr;
  coproc_request* default_timeout = nullptr;
  auto start = Clock::now();
  ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, &o, &explicit_deadline), COPROC_OK);
  ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &default_timeout), COPROC_OK);
  EXPECT_EQ(coproc_wait(explicit_deadline, 10'000'000'000), COPROC_ERR_DEADLINE_EXCEEDED);
  EXPECT_EQ(coproc_wait(default_timeout, 10'000'000'000), COPROC_ERR_DEADLINE_EXCEEDED);
  // The batch would have formed after max_wait (5 s); the deadlines answer first.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  coproc_release(explicit_deadline);
  coproc_release(default_timeout);
}

TEST(Batching, shouldCancelAQueuedRequestSoItNeverRuns) {
  DaemonProcess daemon({"--config", write_config("cancel", model_block("noop", R"(
mode = "fixed"
max_batch = 64
max_wait_us = 5000000
)"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  coproc_request* r = nullptr;
  ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  ASSERT_EQ(coproc_cancel(r), COPROC_OK);
  EXPECT_EQ(coproc_wait(r, 2'000'000'000), COPROC_ERR_CANCELLED);
  EXPECT_EQ(coproc_release(r), COPROC_OK);
}

TEST(Batching, shouldApplyAChangedBatchingPolicyOnSighup) {
  std::string path = write_config("reload", model_block("noop", "max_batch = 8"));
  DaemonProcess daemon({"--config", path});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  std::ofstream(path) << model_block("noop", "max_batch = 16\nmode = \"fixed\"");
  daemon.signal(SIGHUP);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (daemon.log().find("batching policy of model 'noop' applied") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(daemon.log().find("batching policy of model 'noop' applied"), std::string::npos) << daemon.log();
  EXPECT_EQ(daemon.wait_exit(0), -1) << "SIGHUP must not stop the daemon";
}

// A batch of 32 MLP rows split over two intra-op threads (the packed GEMM's rows go to the pool)
// must match ONNX Runtime row for row. Under ThreadSanitizer this checks the pool too.
TEST(Batching, shouldMatchOnnxRuntimeWithABatchSplitOverIntraOpThreads) {
  DaemonProcess daemon({"--intra-op-threads", "2", "--config",
                        write_config("intra", model_block("mlp", "mode = \"fixed\"\nmax_batch = 32\n"
                                                                 "max_wait_us = 2000000"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::vector<float> x = read_f32(models_dir() + "/ref/mlp.b32.in0.f32");
  const std::vector<float> ref = read_f32(models_dir() + "/ref/mlp.b32.out0.f32");
  ASSERT_EQ(x.size(), 32u * 256);
  ASSERT_EQ(ref.size(), 32u * 16);
  float scale = 0;
  for (const float v : ref) scale = std::max(scale, std::fabs(v));
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  std::vector<coproc_tensor> ins, outs;
  std::vector<coproc_request*> requests(32);
  for (std::size_t r = 0; r < 32; ++r) {
    ins.push_back(arena_tensor(client.c, {1, 256}, x.data() + r * 256));
    outs.push_back(arena_tensor(client.c, {1, 16}));
  }
  for (std::size_t r = 0; r < 32; ++r) {
    ASSERT_EQ(coproc_submit(client.c, mlp, &ins[r], 1, &outs[r], 1, nullptr, &requests[r]), COPROC_OK);
  }
  for (std::size_t r = 0; r < 32; ++r) {
    ASSERT_EQ(coproc_wait(requests[r], 30'000'000'000), COPROC_OK) << coproc_last_error();
    coproc_timing timing;
    ASSERT_EQ(coproc_request_timing(requests[r], &timing), COPROC_OK);
    EXPECT_EQ(timing.batch_size, 32u);
    for (std::size_t k = 0; k < 16; ++k) {
      ASSERT_NEAR(floats(outs[r])[k], ref[r * 16 + k], 1e-4 * scale) << "row " << r << " element " << k;
    }
    EXPECT_EQ(coproc_release(requests[r]), COPROC_OK);
  }
}

// One client process: `rounds` requests with `in_flight` outstanding; some
// get tight deadlines, some are cancelled. Every request must end exactly
// once, OK ones with the right numbers. Returns 0 when all held.
int exactly_once_client(const std::string& socket, int seed, int rounds, int in_flight) {
  ClientHandle client(socket, /*spin_ns=*/0);
  if (client.status != COPROC_OK) return 10;
  coproc_model* mlp = nullptr;
  if (coproc_model_find(client.c, "mlp", &mlp) != COPROC_OK) return 11;
  std::vector<float> x = read_f32(models_dir() + "/ref/mlp.b1.in0.f32");
  std::vector<float> ref = read_f32(models_dir() + "/ref/mlp.b1.out0.f32");
  float scale = 0;
  for (float v : ref) scale = std::max(scale, std::abs(v));
  std::mt19937 rng(static_cast<uint32_t>(seed));
  struct Slot {
    coproc_tensor in, out;
    coproc_request* r = nullptr;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(in_flight));
  for (auto& s : slots) {
    s.in = arena_tensor(client.c, {1, 256}, x.data());
    s.out = arena_tensor(client.c, {1, 16});
  }
  int submitted = 0, finished = 0;
  while (finished < rounds) {
    for (auto& s : slots) {
      if (s.r == nullptr && submitted < rounds) {
        coproc_submit_options o;
        coproc_submit_options_init(&o);
        o.priority = static_cast<coproc_priority>(rng() % 4);
        if (rng() % 5 == 0) o.deadline_ns = coproc_now_ns() + rng() % 2'000'000;
        if (coproc_submit(client.c, mlp, &s.in, 1, &s.out, 1, &o, &s.r) != COPROC_OK) return 12;
        ++submitted;
        if (rng() % 10 == 0 && coproc_cancel(s.r) != COPROC_OK) return 13;
      }
    }
    for (auto& s : slots) {
      if (s.r == nullptr) continue;
      coproc_status st = coproc_wait(s.r, 10'000'000'000);
      if (st == COPROC_OK) {
        for (int k = 0; k < 16; ++k) {
          if (std::abs(floats(s.out)[k] - ref[static_cast<std::size_t>(k)]) > 1e-5f * scale) return 14;
        }
      } else if (st != COPROC_ERR_CANCELLED && st != COPROC_ERR_DEADLINE_EXCEEDED) {
        return 15;
      }
      // Exactly once: the outcome is final and does not change afterwards.
      if (coproc_request_status(s.r) != st) return 16;
      if (coproc_release(s.r) != COPROC_OK) return 17;
      s.r = nullptr;
      ++finished;
    }
  }
  return 0;
}

TEST(Batching, shouldAnswerEveryRequestExactlyOnceUnderLoadWithCancelsAndDeadlines) {
  DaemonProcess daemon({"--config", write_config("load", model_block("mlp", "max_batch = 16"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  constexpr int kClients = 6, kRounds = 300, kInFlight = 4;
  // Forked one after the other from this thread, then waited for (daemon_process.h, start_child).
  std::vector<pid_t> children;
  for (int c = 0; c < kClients; ++c) {
    children.push_back(start_child(
        [&] { return exactly_once_client(daemon.socket_path(), c + 1, kRounds, kInFlight); }));
  }
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(wait_child(children[static_cast<std::size_t>(c)]), 0) << "client " << c;
  }

  // The daemon's own books: every accepted request left exactly one way.
  RawClient raw(daemon.socket_path());
  ASSERT_TRUE(raw.connected());
  const wire::RegistryHeader& h = raw.registry();
  const auto* stats = reinterpret_cast<const wire::ModelStats*>(
      reinterpret_cast<const std::byte*>(&h) + h.stats_offset);
  uint64_t accepted = 0, rejected = 0, ended = 0, batches = 0, rows = 0;
  for (uint32_t b = 0; b < h.stats_count; ++b) {
    accepted += stats[b].accepted.load();
    rejected += stats[b].rejected_queue_full.load() + stats[b].rejected_invalid.load();
    for (const auto& c : stats[b].completed) ended += c.load();
    ended += stats[b].dropped_client_gone.load();
    batches += stats[b].batches.load();
    rows += stats[b].batch_rows.load();
  }
  EXPECT_EQ(accepted, static_cast<uint64_t>(kClients * kRounds));
  EXPECT_EQ(rejected, 0u);
  EXPECT_EQ(ended, accepted + rejected);
  EXPECT_GT(rows, batches) << "some batches held more than one request";
}

}  // namespace
}  // namespace coproc::test
