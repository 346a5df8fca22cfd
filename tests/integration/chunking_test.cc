// Requests with more rows than the model's max_batch, with a real daemon and
// real client processes: they run in chunks, so a critical request waits for
// about one chunk, not for the whole big request; the chunks write their rows
// in place; a cancel, a deadline or the client's death stops the request
// between chunks with exactly one completion; limits.max_request_rows caps a
// request's rows.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "coproc/segment.h"
#include "support/daemon_process.h"
#include "support/raw_client.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

constexpr int64_t kMlpIn = 256, kMlpOut = 16;
constexpr int64_t kHeavyRows = 30'000;  // 30 MB of inputs, the size the issue measured
constexpr uint32_t kMaxBatch = 32;

// `rows` rows of MLP input: row r is row r % 32 of ONNX Runtime's reference batch.
std::vector<float> tiled_input(int64_t rows) {
  const std::vector<float> ref_in = read_f32(models_dir() + "/ref/mlp.b32.in0.f32");
  std::vector<float> x(static_cast<std::size_t>(rows * kMlpIn));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(ref_in.begin() + (r % 32) * kMlpIn, kMlpIn, x.begin() + r * kMlpIn);
  }
  return x;
}

struct Books {
  uint64_t accepted = 0, rejected = 0, completed = 0, dropped = 0, cancelled = 0, expired = 0;
  bool balanced() const { return accepted + rejected == completed + dropped; }
};

// The daemon's books, summed over its stats blocks.
Books read_books(const std::string& socket) {
  RawClient raw(socket);
  EXPECT_TRUE(raw.connected());
  Books books;
  if (!raw.connected()) return books;
  const wire::RegistryHeader& h = raw.registry();
  const auto* stats = reinterpret_cast<const wire::ModelStats*>(
      reinterpret_cast<const std::byte*>(&h) + h.stats_offset);
  for (uint32_t b = 0; b < h.stats_count; ++b) {
    books.accepted += stats[b].accepted.load();
    books.rejected += stats[b].rejected_queue_full.load() + stats[b].rejected_invalid.load();
    for (const auto& c : stats[b].completed) books.completed += c.load();
    books.dropped += stats[b].dropped_client_gone.load();
    books.cancelled += stats[b].cancelled.load();
    books.expired += stats[b].expired.load();
  }
  return books;
}

// Polls until the books balance with `settled` true of them, or 5 s pass.
Books wait_for_books(const std::string& socket, const std::function<bool(const Books&)>& settled) {
  Books books;
  for (int i = 0; i < 500; ++i) {
    books = read_books(socket);
    if (books.balanced() && settled(books)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return books;
}

// A client that allocates and submits one request of kHeavyRows MLP rows.
struct HeavyRequest {
  explicit HeavyRequest(ClientHandle& client) {
    const std::vector<float> x = tiled_input(kHeavyRows);
    in = arena_tensor(client.c, {kHeavyRows, kMlpIn}, x.data());
    out = arena_tensor(client.c, {kHeavyRows, kMlpOut});
  }
  coproc_status submit(ClientHandle& client, coproc_model* mlp, coproc_submit_options* o) {
    return coproc_submit(client.c, mlp, &in, 1, &out, 1, o, &request);
  }
  coproc_tensor in{}, out{};
  coproc_request* request = nullptr;
};

// The heavy neighbour: keeps one low-priority kHeavyRows request in flight until `stop_fd`
// becomes readable; writes one byte to `started_fd` once the first is submitted.
int heavy_neighbour(const std::string& socket, int started_fd, int stop_fd) {
  ClientHandle client(socket, /*spin_ns=*/0);
  if (client.status != COPROC_OK) return 10;
  coproc_model* mlp = nullptr;
  if (coproc_model_find(client.c, "mlp", &mlp) != COPROC_OK) return 11;
  HeavyRequest heavy(client);
  if (heavy.in.data == nullptr || heavy.out.data == nullptr) return 12;
  coproc_submit_options o;
  coproc_submit_options_init(&o);
  o.priority = COPROC_PRIORITY_LOW;
  for (bool first = true;; first = false) {
    if (heavy.submit(client, mlp, &o) != COPROC_OK) return 13;
    if (first && ::write(started_fd, "s", 1) != 1) return 14;
    if (coproc_wait(heavy.request, 60'000'000'000) != COPROC_OK) return 15;
    coproc_release(heavy.request);
    pollfd p{stop_fd, POLLIN, 0};
    if (::poll(&p, 1, 0) == 1) return 0;
  }
}

uint64_t median(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(Chunks, shouldRunACriticalRequestWithinAboutOneChunkOfABigLowRequest) {
  DaemonProcess daemon({"--config", write_config("critical", model_block("mlp", "max_batch = 32"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  const std::vector<float> x = tiled_input(kMaxBatch);
  coproc_tensor chunk_in = arena_tensor(client.c, {kMaxBatch, kMlpIn}, x.data());
  coproc_tensor chunk_out = arena_tensor(client.c, {kMaxBatch, kMlpOut});
  coproc_tensor in = arena_tensor(client.c, {1, kMlpIn}, x.data());
  coproc_tensor out = arena_tensor(client.c, {1, kMlpOut});

  // One chunk's execution, as the daemon reports it for a max_batch-row request.
  std::vector<uint64_t> chunk_exec_ns;
  for (int i = 0; i < 7; ++i) {
    coproc_request* r = nullptr;
    ASSERT_EQ(coproc_submit(client.c, mlp, &chunk_in, 1, &chunk_out, 1, nullptr, &r), COPROC_OK);
    ASSERT_EQ(coproc_wait(r, 10'000'000'000), COPROC_OK) << coproc_last_error();
    coproc_timing t;
    ASSERT_EQ(coproc_request_timing(r, &t), COPROC_OK);
    chunk_exec_ns.push_back(t.exec_ns);
    coproc_release(r);
  }

  int started[2], stop[2];
  ASSERT_EQ(::pipe(started), 0);
  ASSERT_EQ(::pipe(stop), 0);
  const pid_t heavy =
      start_child([&] { return heavy_neighbour(daemon.socket_path(), started[1], stop[0]); });
  char byte = 0;
  ASSERT_EQ(::read(started[0], &byte, 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the big request is running

  constexpr int kCritical = 40;
  std::vector<uint64_t> latency_ns, critical_exec_ns;
  coproc_submit_options o;
  coproc_submit_options_init(&o);
  o.priority = COPROC_PRIORITY_CRITICAL;
  for (int i = 0; i < kCritical; ++i) {
    coproc_request* r = nullptr;
    const uint64_t t0 = coproc_now_ns();
    ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &out, 1, &o, &r), COPROC_OK);
    ASSERT_EQ(coproc_wait(r, 10'000'000'000), COPROC_OK) << coproc_last_error();
    latency_ns.push_back(coproc_now_ns() - t0);
    coproc_timing t;
    ASSERT_EQ(coproc_request_timing(r, &t), COPROC_OK);
    critical_exec_ns.push_back(t.exec_ns);
    coproc_release(r);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(::write(stop[1], "x", 1), 1);
  EXPECT_EQ(wait_child(heavy, 120'000), 0) << "the heavy neighbour's requests completed OK";
  for (int fd : {started[0], started[1], stop[0], stop[1]}) ::close(fd);

  // A critical request waits for the chunk running when it arrives, then runs in a batch of at
  // most max_batch rows (the big request's next rows fill it): about two chunks. Whole, the big
  // request made it wait for the rest of 30,000 rows (hundreds of ms).
  const uint64_t chunk_ns = std::max(median(chunk_exec_ns), median(critical_exec_ns));
  const uint64_t p50 = median(latency_ns);
  const uint64_t worst = *std::max_element(latency_ns.begin(), latency_ns.end());
  std::printf("chunk %.2f ms, critical latency p50 %.2f ms, max %.2f ms\n", chunk_ns / 1e6,
              p50 / 1e6, worst / 1e6);
  // The slack is for a loaded 2-core machine (three busy processes here): whole, the big
  // request makes these hundreds of milliseconds.
  EXPECT_LE(p50, 3 * chunk_ns + 20'000'000);
  EXPECT_LE(worst, 4 * chunk_ns + 150'000'000);
}

TEST(Chunks, shouldWriteEveryChunkInPlaceMatchingOnnxRuntimeWhileSmallRequestsShareItsBatches) {
  // max_batch 7 puts chunk boundaries across the reference's 32-row period.
  DaemonProcess daemon({"--config", write_config("correct", model_block("mlp", "max_batch = 7"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  const std::vector<float> ref = read_f32(models_dir() + "/ref/mlp.b32.out0.f32");
  ASSERT_EQ(ref.size(), 32u * kMlpOut);
  float scale = 0;
  for (const float v : ref) scale = std::max(scale, std::fabs(v));
  constexpr int64_t kRows = 1000;
  const std::vector<float> x = tiled_input(kRows);
  coproc_tensor big_in = arena_tensor(client.c, {kRows, kMlpIn}, x.data());
  coproc_tensor big_out = arena_tensor(client.c, {kRows, kMlpOut});
  std::fill_n(static_cast<float*>(big_out.data), kRows * kMlpOut, NAN);
  constexpr int kSmall = 6;  // rows 0..5 of the reference, half before the big one, half after
  std::vector<coproc_tensor> ins, outs;
  for (int s = 0; s < kSmall; ++s) {
    ins.push_back(arena_tensor(client.c, {1, kMlpIn}, x.data() + s * kMlpIn));
    outs.push_back(arena_tensor(client.c, {1, kMlpOut}));
  }
  std::vector<coproc_request*> small(kSmall);
  coproc_request* big = nullptr;
  for (int s = 0; s < kSmall / 2; ++s) {
    ASSERT_EQ(coproc_submit(client.c, mlp, &ins[s], 1, &outs[s], 1, nullptr, &small[s]), COPROC_OK);
  }
  ASSERT_EQ(coproc_submit(client.c, mlp, &big_in, 1, &big_out, 1, nullptr, &big), COPROC_OK);
  for (int s = kSmall / 2; s < kSmall; ++s) {
    ASSERT_EQ(coproc_submit(client.c, mlp, &ins[s], 1, &outs[s], 1, nullptr, &small[s]), COPROC_OK);
  }

  ASSERT_EQ(coproc_wait(big, 30'000'000'000), COPROC_OK) << coproc_last_error();
  int32_t rank = 0;
  int64_t shape[COPROC_MAX_RANK];
  ASSERT_EQ(coproc_request_output_shape(big, 0, &rank, shape), COPROC_OK);
  EXPECT_EQ(rank, 2);
  EXPECT_EQ(shape[0], kRows) << "the whole request's output shape, not a chunk's";
  coproc_timing timing;
  ASSERT_EQ(coproc_request_timing(big, &timing), COPROC_OK);
  EXPECT_LE(timing.batch_size, 7u) << "it ran in batches of at most max_batch rows";
  EXPECT_GT(timing.exec_ns, 0u);
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t k = 0; k < kMlpOut; ++k) {
      ASSERT_NEAR(floats(big_out)[r * kMlpOut + k],
                  ref[static_cast<std::size_t>((r % 32) * kMlpOut + k)], 1e-4 * scale)
          << "row " << r << " element " << k;
    }
  }
  for (int s = 0; s < kSmall; ++s) {
    ASSERT_EQ(coproc_wait(small[s], 30'000'000'000), COPROC_OK) << coproc_last_error();
    for (int64_t k = 0; k < kMlpOut; ++k) {
      ASSERT_NEAR(floats(outs[s])[k], ref[static_cast<std::size_t>(s * kMlpOut + k)], 1e-4 * scale)
          << "small request " << s;
    }
    coproc_release(small[s]);
  }
  coproc_release(big);
  const Books books =
      wait_for_books(daemon.socket_path(), [](const Books& b) { return b.completed == 7; });
  EXPECT_EQ(books.accepted, 7u);
  EXPECT_EQ(books.completed, 7u) << "one completion for the big request, however many chunks";
}

TEST(Chunks, shouldStopABigRequestBetweenChunksWhenCancelledWithOneCompletion) {
  DaemonProcess daemon({"--config", write_config("cancel", model_block("mlp", "max_batch = 32"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  HeavyRequest heavy(client);
  ASSERT_EQ(heavy.submit(client, mlp, nullptr), COPROC_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // some chunks have run

  const uint64_t cancelled_at = coproc_now_ns();
  ASSERT_EQ(coproc_cancel(heavy.request), COPROC_OK);
  EXPECT_EQ(coproc_wait(heavy.request, 10'000'000'000), COPROC_ERR_CANCELLED);
  const uint64_t took_ns = coproc_now_ns() - cancelled_at;
  EXPECT_NE(std::string(coproc_last_error()).find("rows ran in chunks"), std::string::npos)
      << coproc_last_error();
  // A chunk takes about 1 ms (34 ms under TSan); the slack is for a loaded machine.
  EXPECT_LT(took_ns, 500'000'000u) << "stopped at the next chunk, not after all 30,000 rows";
  coproc_release(heavy.request);

  // The client and the daemon go on: a request after it completes, and the books balance.
  coproc_tensor in = arena_tensor(client.c, {1, kMlpIn});
  coproc_tensor out = arena_tensor(client.c, {1, kMlpOut});
  coproc_request* after = nullptr;
  ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &out, 1, nullptr, &after), COPROC_OK);
  EXPECT_EQ(coproc_wait(after, 10'000'000'000), COPROC_OK) << coproc_last_error();
  coproc_release(after);
  const Books books =
      wait_for_books(daemon.socket_path(), [](const Books& b) { return b.completed == 2; });
  EXPECT_EQ(books.accepted, 2u);
  EXPECT_EQ(books.completed, 2u) << "exactly one completion each";
  EXPECT_EQ(books.cancelled, 1u);
}

TEST(Chunks, shouldStopABigRequestBetweenChunksAtItsDeadline) {
  DaemonProcess daemon({"--config", write_config("deadline", model_block("mlp", "max_batch = 32"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  HeavyRequest heavy(client);
  coproc_submit_options o;
  coproc_submit_options_init(&o);
  const uint64_t start = coproc_now_ns();
  o.deadline_ns = start + 150'000'000;
  ASSERT_EQ(heavy.submit(client, mlp, &o), COPROC_OK);

  EXPECT_EQ(coproc_wait(heavy.request, 10'000'000'000), COPROC_ERR_DEADLINE_EXCEEDED);
  const uint64_t took_ns = coproc_now_ns() - start;
  EXPECT_NE(std::string(coproc_last_error()).find("rows ran in chunks"), std::string::npos)
      << coproc_last_error();
  EXPECT_LT(took_ns, 1'000'000'000u) << "stopped at the deadline's chunk, not after all 30,000 rows";
  coproc_release(heavy.request);
  const Books books =
      wait_for_books(daemon.socket_path(), [](const Books& b) { return b.completed == 1; });
  EXPECT_EQ(books.accepted, 1u);
  EXPECT_EQ(books.completed, 1u);
  EXPECT_EQ(books.expired, 1u);
}

TEST(Chunks, shouldDropTheRemainingChunksOfAClientThatDies) {
  DaemonProcess daemon({"--config", write_config("death", model_block("mlp", "max_batch = 32"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const int status = run_in_child([&] {
    ClientHandle client(daemon.socket_path(), /*spin_ns=*/0);
    coproc_model* mlp = nullptr;
    if (coproc_model_find(client.c, "mlp", &mlp) != COPROC_OK) return 10;
    HeavyRequest heavy(client);
    if (heavy.submit(client, mlp, nullptr) != COPROC_OK) return 11;
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    ::_exit(0);  // dies mid-request, without disconnecting
  });
  ASSERT_EQ(status, 0);

  const Books books =
      wait_for_books(daemon.socket_path(), [](const Books& b) { return b.dropped == 1; });
  EXPECT_EQ(books.accepted, 1u);
  EXPECT_EQ(books.dropped, 1u);
  EXPECT_EQ(books.completed, 0u);
  int mappings = -1;
  for (int i = 0; i < 200 && mappings != 0; ++i) {
    mappings = count_client_segment_mappings(daemon.pid());
    if (mappings != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(mappings, 0) << "its segment was reclaimed";
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  coproc_tensor in = arena_tensor(client.c, {1, kMlpIn});
  coproc_tensor out = arena_tensor(client.c, {1, kMlpOut});
  coproc_request* r = nullptr;
  ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  EXPECT_EQ(coproc_wait(r, 10'000'000'000), COPROC_OK) << coproc_last_error();
  coproc_release(r);
}

TEST(Chunks, shouldRefuseARequestOverMaxRequestRowsNamingTheLimit) {
  DaemonProcess daemon(
      {"--max-request-rows", "100", "--config", write_config("rows", model_block("mlp", "max_batch = 32"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  coproc_tensor over_in = arena_tensor(client.c, {101, kMlpIn});
  coproc_tensor over_out = arena_tensor(client.c, {101, kMlpOut});
  coproc_tensor at_in = arena_tensor(client.c, {100, kMlpIn});
  coproc_tensor at_out = arena_tensor(client.c, {100, kMlpOut});
  coproc_request* over = nullptr;
  coproc_request* at = nullptr;

  ASSERT_EQ(coproc_submit(client.c, mlp, &over_in, 1, &over_out, 1, nullptr, &over), COPROC_OK);
  EXPECT_EQ(coproc_wait(over, 10'000'000'000), COPROC_ERR_RESOURCE_EXHAUSTED);
  EXPECT_NE(std::string(coproc_last_error())
                .find("request of 101 rows is over limits.max_request_rows (100)"),
            std::string::npos)
      << coproc_last_error();
  ASSERT_EQ(coproc_submit(client.c, mlp, &at_in, 1, &at_out, 1, nullptr, &at), COPROC_OK);
  EXPECT_EQ(coproc_wait(at, 10'000'000'000), COPROC_OK) << coproc_last_error();
  coproc_release(over);
  coproc_release(at);
}

}  // namespace
}  // namespace coproc::test
