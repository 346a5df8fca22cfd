// Broken clients, dying clients, a dying daemon: the daemon keeps serving
// everyone else, and no client call hangs.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <string>
#include <thread>

#include "coproc/coproc_generated.h"
#include "support/daemon_process.h"
#include "support/raw_client.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

using Clock = std::chrono::steady_clock;

// A libcoproc client in another process that runs `rounds` noop inferences,
// checking each result. Exit code 0 means every one came back right.
int healthy_client_rounds(const std::string& socket, int rounds) {
  ClientHandle client(socket);
  if (client.status != COPROC_OK) return 10;
  coproc_model* noop = nullptr;
  if (coproc_model_find(client.c, "noop", &noop) != COPROC_OK) return 11;
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  for (int i = 0; i < rounds; ++i) {
    for (int k = 0; k < 16; ++k) static_cast<float*>(in.data)[k] = static_cast<float>(i + k);
    if (coproc_infer(client.c, noop, &in, 1, &out, 1, 5'000'000'000) != COPROC_OK) return 12;
    if (std::memcmp(in.data, out.data, 64) != 0) return 13;
  }
  return 0;
}

TEST(Robustness, shouldAnswerMalformedRequestsWithErrorsWhileOtherClientsCarryOn) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  // Forked before this process does anything else (daemon_process.h, start_child).
  const pid_t healthy =
      start_child([&] { return healthy_client_rounds(daemon.socket_path(), 20000); });

  RawClient raw(daemon.socket_path());
  ASSERT_TRUE(raw.connected());
  const uint64_t arena = raw.arena_bytes();
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    int status;
    const char* message_part;
  };
  std::vector<Case> cases = {
      {"input beyond the arena", make_request(1, 0, arena - 32, 64, {1, 16}, 0, 64),
       static_cast<int>(fb::Status::InvalidArgument), "outside the arena"},
      {"offset overflowing", make_request(2, 0, ~uint64_t{0} - 7, 64, {1, 16}, 0, 64),
       static_cast<int>(fb::Status::InvalidArgument), "outside the arena"},
      {"output beyond the arena", make_request(3, 0, 0, 64, {1, 16}, arena, 64),
       static_cast<int>(fb::Status::InvalidArgument), "outside the arena"},
      {"bytes not matching shape", make_request(4, 0, 0, 60, {1, 16}, 64, 64),
       static_cast<int>(fb::Status::InvalidArgument), "needs 64 bytes"},
      {"wrong dtype", make_request(5, 0, 0, 128, {1, 16}, 128, 128, /*dtype=*/3),
       static_cast<int>(fb::Status::InvalidArgument), "dtype"},
      {"unknown model", make_request(6, 99, 0, 64, {1, 16}, 64, 64),
       static_cast<int>(fb::Status::NotFound), "no model with id 99"},
      {"misaligned input", make_request(7, 0, 2, 64, {1, 16}, 128, 64),
       static_cast<int>(fb::Status::InvalidArgument), "aligned"},
      {"huge dims", make_request(8, 0, 0, 64, {1ll << 40, 16}, 64, 64),
       static_cast<int>(fb::Status::InvalidArgument), "out of range"},
      {"negative dim", make_request(9, 0, 0, 64, {-1, 16}, 64, 64),
       static_cast<int>(fb::Status::InvalidArgument), "out of range"},
      {"wrong rank for the model", make_request(10, 0, 0, 64, {16}, 64, 64),
       static_cast<int>(fb::Status::InvalidArgument), "'x'"},
      {"generate kind", make_request(11, 0, 0, 64, {1, 16}, 64, 64, 1, /*kind=*/1),
       static_cast<int>(fb::Status::Unsupported), "not supported"},
      // Found by fuzz_request: the output was memcpy'd over the input it overlapped.
      {"output overlapping its input", make_request(12, 0, 0, 64, {1, 16}, 32, 64),
       static_cast<int>(fb::Status::InvalidArgument), "output 'y' overlaps input 'x'"},
      // Found by fuzz_request: 2^31 * 2^9 * 2^31 elements wrapped to 0 = bytes.
      {"element count wrapping", make_request(13, 0, 0, 0, {1ll << 31, 1ll << 9, 1ll << 31}, 64, 64),
       static_cast<int>(fb::Status::InvalidArgument), "more than 2^40 elements"},
  };
  // Garbage first: not a flatbuffer at all, so not even the id can be read.
  std::vector<uint8_t> garbage(200, 0xAB);
  ASSERT_TRUE(raw.push(garbage));
  for (const auto& c : cases) {
    ASSERT_TRUE(raw.push(c.bytes)) << c.what;
    auto completion = raw.next_completion(5000);
    ASSERT_TRUE(completion.has_value()) << c.what;
    EXPECT_EQ(completion->status, c.status) << c.what << ": " << completion->message;
    EXPECT_NE(completion->message.find(c.message_part), std::string::npos)
        << c.what << ": " << completion->message;
  }
  // A good request on the same raw client still works after all that.
  auto* arena_floats = reinterpret_cast<float*>(raw.arena());
  for (int i = 0; i < 16; ++i) arena_floats[i] = static_cast<float>(i);
  ASSERT_TRUE(raw.push(make_request(42, 0, 0, 64, {1, 16}, 64, 64)));
  auto good = raw.next_completion(5000);
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(good->id, 42u);
  EXPECT_EQ(good->status, 0) << good->message;
  EXPECT_EQ(std::memcmp(raw.arena(), raw.arena() + 64, 64), 0);

  EXPECT_EQ(wait_child(healthy), 0);
  EXPECT_EQ(daemon.wait_exit(0), -1) << "daemon died: " << daemon.log();
}

TEST(Robustness, shouldRateLimitTheWarningsAboutGarbageRequests) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawClient raw(daemon.socket_path());
  ASSERT_TRUE(raw.connected());
  const std::vector<uint8_t> garbage(64, 0xCD);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(raw.push(garbage)) << i;
  // Let the daemon read them, then start a new second so the count is reported.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(raw.push(garbage));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (daemon.log().find("unanswerable requests not logged") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string& log = daemon.log();
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = log.find("unanswerable request dropped", at)) != std::string::npos;
       ++at) {
    ++lines;
  }
  EXPECT_LE(lines, 21u) << log;  // 10 a second, over at most two seconds, plus the last
  EXPECT_NE(log.find("more unanswerable requests not logged"), std::string::npos) << log;
}

TEST(Robustness, shouldDisconnectClientWhoseRingIndicesAreCorruptAndKeepServingOthers) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawClient raw(daemon.socket_path());
  ASSERT_TRUE(raw.connected());
  // The producer index jumps far past anything the capacity allows.
  raw.scribble_submission_tail(uint64_t{1} << 40);
  EXPECT_TRUE(raw.closed_by_daemon(5000));
  EXPECT_NE(daemon.log().find("submission ring is corrupt"), std::string::npos) << daemon.log();
  EXPECT_EQ(run_in_child([&] { return healthy_client_rounds(daemon.socket_path(), 100); }), 0);
}

// The lines of `log` that contain `text`.
std::size_t count_lines(const std::string& log, const std::string& text) {
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = log.find(text, at)) != std::string::npos; at += text.size()) {
    ++lines;
  }
  return lines;
}

// The sum of N over the lines "N more <what> not logged" (log_limiter.h).
uint64_t not_logged(const std::string& log, const std::string& what) {
  const std::string tail = " more " + what + " not logged";
  uint64_t sum = 0;
  for (std::size_t at = 0; (at = log.find(tail, at)) != std::string::npos; at += tail.size()) {
    std::size_t digits = at;
    while (digits > 0 && std::isdigit(static_cast<unsigned char>(log[digits - 1])) != 0) --digits;
    sum += std::stoull(log.substr(digits, at - digits));
  }
  return sum;
}

TEST(Robustness, shouldBoundTheLogOfAClientThatReconnectsAndCorruptsItsRingInALoop) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::size_t before = daemon.log().size();

  // Connect, corrupt the submission ring, get disconnected, again, for kLoop.
  constexpr auto kLoop = std::chrono::seconds(3);
  uint64_t cycles = 0;
  for (const auto until = Clock::now() + kLoop; Clock::now() < until; ++cycles) {
    RawClient raw(daemon.socket_path());
    ASSERT_TRUE(raw.connected()) << raw.hello_message();
    raw.scribble_submission_tail(uint64_t{1} << 40);
    ASSERT_TRUE(raw.closed_by_daemon(5000));
  }
  // The counts of what was held back are logged on the heartbeat once their second is over.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const std::string log = daemon.log().substr(before);

  // At most 10 lines a second per cause (log_limiter.h): the loop's 3 s touch at most 4
  // one-second windows, and the last disconnects may land in a fifth.
  constexpr uint64_t kWindows = 5;
  constexpr uint64_t kBound = 10 * kWindows;
  ASSERT_GT(cycles, 2 * kBound) << "too few cycles for the bound to mean anything";
  struct Cause {
    const char* line;  // a part of each of its lines
    const char* what;  // its name in the count of lines not logged
  };
  const Cause causes[] = {
      {"connected: pid", "client connections"},
      {"disconnected: its submission ring is corrupt", "protocol-violation disconnects"},
      {": reclaimed", "client reclaims"},
  };
  for (const Cause& cause : causes) {
    const std::size_t logged = count_lines(log, cause.line);
    EXPECT_LE(logged, kBound) << cause.line << " in " << cycles << " cycles";
    // Every cycle is either logged or counted.
    EXPECT_EQ(logged + not_logged(log, cause.what), cycles) << cause.what << "\n" << log;
  }
  // Nothing else grows with the loop: those three causes and their counts, with room to spare.
  EXPECT_LE(count_lines(log, "\n"), 3 * (kBound + kWindows) + 20) << log;
  EXPECT_EQ(daemon.wait_exit(0), -1) << "daemon died: " << daemon.log();
}

TEST(Robustness, shouldReclaimClientKilledWithRequestsInFlight) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const int baseline = count_client_segment_mappings(daemon.pid());
  for (int round = 0; round < 5; ++round) {
    int code = run_in_child([&] {
      ClientHandle client(daemon.socket_path());
      if (client.status != COPROC_OK) return 10;
      coproc_model* mlp = nullptr;
      coproc_model_find(client.c, "mlp", &mlp);
      coproc_tensor in = arena_tensor(client.c, {32, 256});
      coproc_tensor out = arena_tensor(client.c, {32, 16});
      coproc_request* r = nullptr;
      for (int i = 0; i < 64; ++i) {
        if (coproc_submit(client.c, mlp, &in, 1, &out, 1, nullptr, &r) != COPROC_OK) break;
      }
      ::raise(SIGKILL);  // dies with requests queued and running
      return 0;
    });
    EXPECT_EQ(code, 128 + SIGKILL);
  }
  // Everyone else is still served.
  EXPECT_EQ(run_in_child([&] { return healthy_client_rounds(daemon.socket_path(), 200); }), 0);
  // The dead clients' segments are unmapped once their work drained.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (count_client_segment_mappings(daemon.pid()) > baseline && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(count_client_segment_mappings(daemon.pid()), baseline);
  EXPECT_EQ(daemon.wait_exit(0), -1) << "daemon died: " << daemon.log();
}

TEST(Robustness, shouldReturnDaemonGoneWithin100MsWhenTheDaemonIsKilled) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK);
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  // Freeze the daemon so the request is never answered, with a waiter
  // asleep in the futex path, then kill it.
  ASSERT_TRUE(daemon.stop_and_wait(5000));
  coproc_request* r = nullptr;
  ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  std::atomic<int64_t> returned_at{0};
  std::atomic<int> status{-1};
  std::thread waiter([&] {
    status = coproc_wait(r, 10'000'000'000);
    returned_at = Clock::now().time_since_epoch().count();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto killed_at = Clock::now();
  daemon.signal(SIGKILL);
  waiter.join();
  auto latency = std::chrono::nanoseconds(returned_at.load()) - killed_at.time_since_epoch();
  EXPECT_EQ(status.load(), COPROC_ERR_DAEMON_GONE);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(latency).count(), 100);
  // Every later call returns at once.
  coproc_request* again = nullptr;
  EXPECT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &again), COPROC_ERR_DAEMON_GONE);
  EXPECT_EQ(coproc_wait(r, 1'000'000'000), COPROC_ERR_DAEMON_GONE);
}

TEST(Robustness, shouldRefuseProtocolVersionMismatchNamingBothVersions) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawClient raw(daemon.socket_path(), /*protocol_version=*/99);
  EXPECT_FALSE(raw.connected());
  EXPECT_EQ(raw.hello_status(), static_cast<int>(fb::Status::Unsupported));
  EXPECT_NE(raw.hello_message().find("client speaks 99, daemon speaks 1"), std::string::npos)
      << raw.hello_message();
}

TEST(Robustness, shouldDrainInFlightWorkOnSigtermAndExitZero) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* mlp = client.model("mlp");
  constexpr int kRequests = 32;
  std::vector<coproc_tensor> ins, outs;
  std::vector<coproc_request*> requests(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    ins.push_back(arena_tensor(client.c, {32, 256}));
    outs.push_back(arena_tensor(client.c, {32, 16}));
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(coproc_submit(client.c, mlp, &ins[i], 1, &outs[i], 1, nullptr, &requests[i]), COPROC_OK);
  }
  daemon.signal(SIGTERM);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(coproc_wait(requests[i], 10'000'000'000), COPROC_OK) << i << ": " << coproc_last_error();
  }
  int status = daemon.wait_exit(10000);
  ASSERT_NE(status, -1) << "daemon did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << daemon.log();
}

}  // namespace
}  // namespace coproc::test
