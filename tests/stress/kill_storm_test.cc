// Kill storm: client processes SIGKILLed by the hundred at chosen points of
// their life while other clients keep working. The daemon must stay up, every
// survivor's request must come back exactly once and right, and every dead
// client's descriptors, mappings and memory must be reclaimed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "coproc.h"
#include "load_client.h"
#include "stress_support.h"
#include "support/daemon_process.h"

namespace coproc::test {
namespace {

// Where a victim is when the SIGKILL lands. It publishes each phase in shared
// memory; the test waits for the phase it aims at, waits a random few
// microseconds more, kills, and then reads where the victim really was. The
// hello is too short to be caught by polling, so a victim aimed at it waits
// at the start until the test says go and starts its clock.
enum Phase : int {
  kStarting = 0,
  kConnecting,  // inside coproc_connect: the hello, the fds, the mappings
  kAllocating,  // inside a coproc_alloc/coproc_free churn of the arena
  kQueued,      // requests submitted, not yet waited on: queued or in a batch with others
  kWaiting,     // inside coproc_wait (asleep on the futex)
  kPhaseCount
};
constexpr std::array<const char*, kPhaseCount> kPhaseNames = {
    "starting", "connecting", "allocating", "queued/batched", "waiting"};

constexpr int kDefaultStormSeconds = 20;
constexpr double kWarmUpSeconds = 2;
constexpr int kMinKills = 100;
constexpr int kSurvivors = 4;
constexpr int kVictimSlots = 3;
constexpr int kVictimRequests = 24;
// The test waits this long for a victim to reach its target phase.
constexpr int64_t kPhaseWaitNs = 1'000'000'000;
constexpr int64_t kMaxKillJitterNs = 400'000;
// From "go" to the kill of a victim aimed at the hello: a wake-up from its
// 20 us nap plus a hello of a few hundred microseconds on a loaded machine.
constexpr int64_t kMaxHelloKillDelayNs = 1'500'000;
constexpr int kReclaimTimeoutMs = 20000;
// A dead client's segment holds at most a few touched pages of the daemon's
// RSS; per-client heap leaks over hundreds of kills would show as megabytes.
constexpr long kRssSlackKib = 8 * 1024;
// Under AddressSanitizer freed memory waits in a quarantine (up to 256 MiB)
// and ThreadSanitizer's shadow grows with every page touched, so RSS says
// nothing about leaks there; LeakSanitizer checks the daemon at its SIGTERM
// exit instead.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

int storm_seconds() {
  if (const char* s = std::getenv("COPROC_STRESS_STORM_S"); s && *s) {
    return std::max(1, std::atoi(s));
  }
  return kDefaultStormSeconds;
}

// Shared between the test and one victim.
struct VictimState {
  std::atomic<int> phase{kStarting};
  std::atomic<int> go{0};  // the victim starts connecting once it is set
};

// An unallocated float32 tensor of rows x cols.
coproc_tensor float_tensor(int64_t rows, int64_t cols) {
  coproc_tensor t{};
  t.dtype = COPROC_DTYPE_FLOAT32;
  t.rank = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  t.bytes = static_cast<uint64_t>(rows * cols) * sizeof(float);
  return t;
}

// The victim: connects, churns its arena, submits a burst of requests (mlp
// rows and noop) and waits for them, forever, announcing each phase.
int victim(const std::string& socket, uint32_t seed, VictimState* state) {
  std::mt19937 rng(seed);
  std::atomic<int>* phase = &state->phase;
  while (state->go.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
  phase->store(kConnecting);
  coproc_connect_options co;
  coproc_connect_options_init(&co);
  co.socket_path = socket.c_str();
  co.spin_ns = 0;
  coproc_client* c = nullptr;
  if (coproc_connect(&co, &c) != COPROC_OK) return 10;
  coproc_model *mlp = nullptr, *noop = nullptr;
  if (coproc_model_find(c, "mlp", &mlp) != COPROC_OK ||
      coproc_model_find(c, "noop", &noop) != COPROC_OK) {
    return 11;
  }
  struct Pair {
    coproc_tensor in{}, out{};
    bool mlp = false;
  };
  std::vector<Pair> pairs(kVictimRequests);
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    Pair& p = pairs[i];
    p.mlp = i % 3 != 0;
    const int64_t rows = p.mlp ? 1 + static_cast<int64_t>(rng() % 4) : 1;
    p.in = float_tensor(rows, p.mlp ? 256 : 16);
    p.out = float_tensor(rows, 16);
    if (coproc_alloc(c, p.in.bytes, &p.in.data) != COPROC_OK) return 12;
    if (coproc_alloc(c, p.out.bytes, &p.out.data) != COPROC_OK) return 12;
    std::memset(p.in.data, 0, p.in.bytes);
  }
  std::vector<void*> churn;
  std::vector<coproc_request*> requests(pairs.size());
  for (;;) {
    phase->store(kAllocating);
    for (int i = 0; i < 64; ++i) {
      void* p = nullptr;
      if (coproc_alloc(c, 64 + rng() % (256 * 1024), &p) == COPROC_OK) churn.push_back(p);
      if (!churn.empty() && (churn.size() > 32 || p == nullptr)) {
        std::size_t k = rng() % churn.size();
        coproc_free(c, churn[k]);
        churn[k] = churn.back();
        churn.pop_back();
      }
    }
    phase->store(kQueued);
    const std::size_t n = 1 + rng() % pairs.size();
    for (std::size_t i = 0; i < n; ++i) {
      const Pair& p = pairs[i];
      const coproc_model* model = p.mlp ? mlp : noop;
      if (coproc_submit(c, model, &p.in, 1, &p.out, 1, nullptr, &requests[i]) != COPROC_OK) {
        return 13;
      }
    }
    // Other work between submit and wait: the requests sit in the daemon's
    // queue or run in a batch with the survivors' meanwhile.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    phase->store(kWaiting);
    for (std::size_t i = 0; i < n; ++i) {
      if (coproc_wait(requests[i], 20'000'000'000) != COPROC_OK) return 14;
      coproc_release(requests[i]);
    }
  }
}

// A new client connects and gets a noop inference right.
int newcomer_infers(const std::string& socket) {
  coproc_connect_options co;
  coproc_connect_options_init(&co);
  co.socket_path = socket.c_str();
  coproc_client* c = nullptr;
  if (coproc_connect(&co, &c) != COPROC_OK) return 1;
  coproc_model* noop = nullptr;
  coproc_tensor in = float_tensor(1, 16), out = float_tensor(1, 16);
  if (coproc_model_find(c, "noop", &noop) != COPROC_OK ||
      coproc_alloc(c, 64, &in.data) != COPROC_OK || coproc_alloc(c, 64, &out.data) != COPROC_OK) {
    return 2;
  }
  std::memset(in.data, 0x3F, 64);
  const bool right = coproc_infer(c, noop, &in, 1, &out, 1, 5'000'000'000) == COPROC_OK &&
                     std::memcmp(in.data, out.data, 64) == 0;
  coproc_disconnect(c);
  return right ? 0 : 3;
}

struct VictimSlot {
  pid_t pid = -1;
  int target = kConnecting;
  int64_t target_since_ns = 0;
  int64_t kill_at_ns = 0;  // 0 until the target phase was seen
};

struct StormTally {
  int kills = 0;
  std::array<int, kPhaseCount> by_phase{};
  int missed_phase = 0;  // killed after kPhaseWaitNs without the target phase
};

class KillStorm {
 public:
  KillStorm(std::string socket, Shared<VictimState>& states)
      : socket_(std::move(socket)), states_(states) {}

  // Kills and respawns victims until `seconds` passed, then kills the last ones.
  void run(double seconds) {
    const int64_t end = now_ns() + static_cast<int64_t>(seconds * 1e9);
    for (std::size_t i = 0; i < slots_.size(); ++i) respawn(i);
    while (now_ns() < end) {
      for (std::size_t i = 0; i < slots_.size(); ++i) step(i);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) kill_slot(i);
  }

  const StormTally& tally() const { return tally_; }
  std::string unexpected_exits() const { return unexpected_; }

 private:
  void respawn(std::size_t i) {
    states_[i].phase.store(kStarting);
    // A victim aimed at the hello starts when step() says go; the others now.
    states_[i].go.store(next_target_ == kConnecting ? 0 : 1);
    const uint32_t seed = rng_();
    VictimState* state = &states_[i];
    slots_[i].pid = spawn([&, seed, state] { return victim(socket_, seed, state); });
    slots_[i].target = next_target_;
    next_target_ = next_target_ + 1 == kPhaseCount ? kConnecting : next_target_ + 1;
    slots_[i].target_since_ns = now_ns();
    slots_[i].kill_at_ns = 0;
  }

  void step(std::size_t i) {
    VictimSlot& s = slots_[i];
    const int64_t now = now_ns();
    int status;
    if (::waitpid(s.pid, &status, WNOHANG) == s.pid) {
      // A victim never ends by itself: its exit code says what failed.
      unexpected_ +=
          "victim exited on its own with " +
          std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) + "; ";
      s.pid = -1;
      respawn(i);
      return;
    }
    if (s.kill_at_ns == 0) {
      if (s.target == kConnecting) {
        states_[i].go.store(1);
        s.kill_at_ns = now + static_cast<int64_t>(rng_() % kMaxHelloKillDelayNs);
      } else if (states_[i].phase.load() == s.target) {
        s.kill_at_ns = now + static_cast<int64_t>(rng_() % kMaxKillJitterNs);
      } else if (now - s.target_since_ns > kPhaseWaitNs) {
        ++tally_.missed_phase;
        s.kill_at_ns = now;
      }
    }
    if (s.kill_at_ns != 0 && now >= s.kill_at_ns) {
      kill_slot(i);
      respawn(i);
    }
  }

  void kill_slot(std::size_t i) {
    VictimSlot& s = slots_[i];
    if (s.pid < 0) return;
    ::kill(s.pid, SIGKILL);
    ::waitpid(s.pid, nullptr, 0);
    s.pid = -1;
    ++tally_.kills;
    ++tally_.by_phase[static_cast<std::size_t>(states_[i].phase.load())];
  }

  std::string socket_;
  Shared<VictimState>& states_;
  std::array<VictimSlot, kVictimSlots> slots_{};
  std::mt19937 rng_{20261122};
  int next_target_ = kConnecting;
  StormTally tally_;
  std::string unexpected_;
};

struct DaemonFootprint {
  int fds = 0;
  int segments = 0;
  long rss_kib = 0;
};

DaemonFootprint footprint(pid_t pid) {
  return {count_fds(pid), count_client_segment_mappings(pid), rss_kib(pid)};
}

// The descriptor count once it held still for a while: a connection just
// closed by a peer is still open until the daemon's loop reads the EOF.
int settled_fd_count(pid_t pid) {
  constexpr auto kStillFor = std::chrono::milliseconds(200);
  int last = count_fds(pid);
  for (int i = 0; i < 25; ++i) {
    std::this_thread::sleep_for(kStillFor);
    const int now = count_fds(pid);
    if (now == last) break;
    last = now;
  }
  return last;
}

// The surviving clients: two closed loops, two open loops, checked once stopped.
class Survivors {
 public:
  explicit Survivors(const std::string& socket) : reports_(kSurvivors), options_(kSurvivors) {
    for (std::size_t s = 0; s < options_.size(); ++s) {
      LoadOptions& o = options_[s];
      o.socket = socket;
      o.seed = static_cast<uint32_t>(s + 1);
      o.in_flight = 4;
      o.open_loop_rate = s % 2 == 0 ? 0 : kOpenLoopRate;
      o.stop = &stop_[0];
      pids_.push_back(spawn([&o, r = &reports_[s]] { return run_load_client(o, r); }));
    }
  }

  bool connected() const {
    return eventually(
        [&] {
          for (std::size_t s = 0; s < reports_.size(); ++s) {
            if (!reports_[s].connected.load()) return false;
          }
          return true;
        },
        30000);
  }

  // Stops them, and expects every request of each answered exactly once and right.
  void stop_and_check() {
    stop_[0].store(1);
    for (std::size_t s = 0; s < pids_.size(); ++s) {
      const LoadReport& r = reports_[s];
      EXPECT_EQ(reap(pids_[s], 60000), 0) << "survivor " << s << ": " << r.first_error;
      EXPECT_GT(r.submitted.load(), 0u) << "survivor " << s;
      EXPECT_EQ(r.completed_ok.load(), r.submitted.load())
          << "survivor " << s << ": " << r.first_error;
      EXPECT_EQ(r.wrong.load(), 0u) << "survivor " << s;
      EXPECT_EQ(r.failed.load(), 0u) << "survivor " << s << ": " << r.first_error;
      submitted += r.submitted.load();
      completed_ok += r.completed_ok.load();
      batched += r.batched.load();
      max_latency_ns = std::max<uint64_t>(max_latency_ns, r.max_latency_ns.load());
    }
  }

  uint64_t submitted = 0, completed_ok = 0, batched = 0, max_latency_ns = 0;

 private:
  static constexpr double kOpenLoopRate = 800;  // arrivals per second per open-loop client
  Shared<std::atomic<int>> stop_;
  Shared<LoadReport> reports_;
  std::vector<LoadOptions> options_;  // referenced by the children's copies of this process
  std::vector<pid_t> pids_;
};

TEST(KillStorm, shouldKeepServingSurvivorsExactlyOnceAndReclaimEveryKilledClient) {
  TempDir dir;
  // Dynamic batching: whatever is queued when the CPU frees up runs together,
  // so victims' requests share batches with the survivors'.
  const std::string batching =
      "mode = \"dynamic\"\nmax_batch = 16\nmax_wait_us = 500\nqueue_limit = 4096";
  StressDaemon daemon(
      dir.path() + "/coprocd.sock",
      {"--config", write_two_model_config(dir, batching, batching), "--arena-bytes", "8MiB"});
  ASSERT_TRUE(daemon.start()) << daemon.log_tail();
  const pid_t daemon_pid = daemon.pid();
  // Once start()'s probe connection is closed on the daemon's side.
  const int no_client_fds = settled_fd_count(daemon_pid);

  Survivors survivors(daemon.socket_path());
  ASSERT_TRUE(survivors.connected());
  // Warm-up: a short storm, so the daemon's caches, plans and buffers reach
  // their working size before the baseline is taken.
  Shared<VictimState> victims(kVictimSlots);
  KillStorm(daemon.socket_path(), victims).run(kWarmUpSeconds);
  ASSERT_TRUE(eventually([&] { return count_client_segment_mappings(daemon_pid) == kSurvivors; },
                         kReclaimTimeoutMs));
  DaemonFootprint baseline = footprint(daemon_pid);
  baseline.fds = settled_fd_count(daemon_pid);

  KillStorm storm(daemon.socket_path(), victims);
  storm.run(storm_seconds());

  // Every dead client's descriptors and mappings go once its queued work drained.
  const bool reclaimed = eventually(
      [&] {
        const DaemonFootprint now = footprint(daemon_pid);
        return now.fds == baseline.fds && now.segments == baseline.segments;
      },
      kReclaimTimeoutMs);
  const DaemonFootprint after = footprint(daemon_pid);
  EXPECT_TRUE(reclaimed) << "fds " << after.fds << " (baseline " << baseline.fds << "), segments "
                         << after.segments << " (baseline " << baseline.segments << ")";
  if (kRssIsMeaningful) {
    EXPECT_LE(after.rss_kib, baseline.rss_kib + kRssSlackKib)
        << "RSS after the storm " << after.rss_kib << " KiB, after warm-up " << baseline.rss_kib
        << " KiB";
  }
  survivors.stop_and_check();
  EXPECT_TRUE(storm.unexpected_exits().empty()) << storm.unexpected_exits();
  EXPECT_TRUE(daemon.alive()) << daemon.log_tail();
  EXPECT_EQ(daemon.pid(), daemon_pid);

  // Once idle the books balance: every accepted request left exactly one way.
  Books books;
  EXPECT_TRUE(eventually(
      [&] { return read_books(daemon.socket_path(), &books) && books.balanced(); }, 10000))
      << books.describe();
  EXPECT_GT(books.dropped_client_gone, 0u) << "some victims died with requests queued";
  // With every client gone the daemon is back to its client-less footprint.
  EXPECT_TRUE(eventually(
      [&] {
        return count_client_segment_mappings(daemon_pid) == 0 &&
               count_fds(daemon_pid) == no_client_fds;
      },
      kReclaimTimeoutMs))
      << "fds " << count_fds(daemon_pid) << " (no clients: " << no_client_fds << ")";

  const StormTally& t = storm.tally();
  std::printf("[ kill storm ] %d s, %d kills:", storm_seconds(), t.kills);
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    std::printf(" %s %d,", kPhaseNames[p], t.by_phase[p]);
  }
  std::printf(" target phase not reached %d\n", t.missed_phase);
  std::printf(
      "[ kill storm ] survivors: %llu submitted, %llu answered exactly once and right (%llu in "
      "batches of more than one row), max latency %.1f ms\n",
      static_cast<unsigned long long>(survivors.submitted),
      static_cast<unsigned long long>(survivors.completed_ok),
      static_cast<unsigned long long>(survivors.batched), survivors.max_latency_ns / 1e6);
  std::printf(
      "[ kill storm ] daemon: fds %d -> %d, segments %d -> %d, RSS %ld -> %ld KiB; books: %s\n",
      baseline.fds, after.fds, baseline.segments, after.segments, baseline.rss_kib, after.rss_kib,
      books.describe().c_str());
  EXPECT_GE(t.kills, kMinKills);
  for (std::size_t p = kConnecting; p < kPhaseCount; ++p) {
    EXPECT_GT(t.by_phase[p], 0) << "no kill landed while " << kPhaseNames[p];
  }

  // The daemon still answers a newcomer...
  EXPECT_EQ(reap(spawn([&] { return newcomer_infers(daemon.socket_path()); }), 30000), 0);
  // ...and still stops cleanly: drains and exits 0 (under AddressSanitizer,
  // LeakSanitizer also finds nothing the storm left behind).
  const int exit_status = daemon.terminate(30000);
  EXPECT_TRUE(exit_status != -1 && WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0)
      << "status " << exit_status << "; log tail:\n"
      << daemon.log_tail();
}

}  // namespace
}  // namespace coproc::test
