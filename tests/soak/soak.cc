#include "soak.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "coproc.h"
#include "soak_client.h"
#include "soak_watch.h"

namespace coproc::soak {

namespace {

// Time for every client to connect and allocate before the common start.
constexpr int64_t kSetupAllowanceNs = 500'000'000;
// The capacity run keeps twice a soak client's window in flight per client:
// besides the most the daemon can complete, this drives every queue in the
// daemon deeper than the soak can (its clients hold one window each, plus
// what a killed client left queued), so the high-water marks they leave in
// the daemon's heap (measured: ~3 kB per request queued at the peak, kept
// for reuse) are set before the baseline and do not read as growth.
constexpr int kCapacityInFlight = 2 * kOpenLoopWindow;
constexpr int64_t kCapacityWarmupNs = 1'000'000'000;
constexpr int64_t kMinWarmupNs = 10'000'000'000;
constexpr double kWarmupShare = 0.2;
constexpr int64_t kSampleEveryNs = 1'000'000'000;
// No kill this close to the end: the replacement would have no time to run.
constexpr int64_t kNoKillBeforeEndNs = 1'000'000'000;
// After the clients: how long the daemon gets to finish, answer and reclaim.
constexpr int64_t kSettleTimeoutNs = 15'000'000'000;
constexpr auto kSettlePoll = std::chrono::milliseconds(100);

int64_t now_ns() { return static_cast<int64_t>(coproc_now_ns()); }
double seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// ClientBooks in anonymous MAP_SHARED memory, made before any fork, so a
// client's counters outlive it (soak_client.h).
class SharedBooks {
 public:
  explicit SharedBooks(std::size_t capacity) : capacity_(capacity) {
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    books_ = p == MAP_FAILED ? nullptr : static_cast<ClientBook*>(p);  // zero-filled
  }
  ~SharedBooks() {
    if (books_) ::munmap(books_, bytes());
  }
  SharedBooks(const SharedBooks&) = delete;
  SharedBooks& operator=(const SharedBooks&) = delete;

  bool ok() const { return books_ != nullptr; }
  // The next unused book, or nullptr when all are taken.
  ClientBook* take() { return used_ < capacity_ ? &books_[used_++] : nullptr; }

 private:
  std::size_t bytes() const { return capacity_ * sizeof(ClientBook); }
  std::size_t capacity_;
  std::size_t used_ = 0;
  ClientBook* books_ = nullptr;
};

// One client process, from fork to waitpid.
struct Incarnation {
  ClientBook* book = nullptr;
  pid_t pid = -1;
  int slot = 0;
  int wait_status = 0;
};

bool spawn(const ClientPlan& plan, Incarnation* inc) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(run_soak_client(plan, inc->book));
  inc->pid = pid;
  return pid > 0;
}

// "exit 13", "signal 9".
std::string describe(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exit {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return fmt::format("signal {}", WTERMSIG(wait_status));
  return "unknown end";
}

uint64_t load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

// Sums over a group of incarnations.
struct Totals {
  uint64_t processes = 0, attempted = 0, submitted = 0, refused = 0, ended = 0, measured = 0;
  uint64_t rounds[kMeasureRounds] = {};
  uint64_t by_status[wire::kStatusCount] = {};
  uint64_t unexpected = 0, wrong_outputs = 0, lost = 0, cancels = 0, deadlines = 0;
  uint64_t backlogged = 0, unanswered = 0;  // unanswered: submitted - ended
  int64_t max_latency_ns = 0;
  std::vector<uint64_t> latency = std::vector<uint64_t>(LatencyHistogram::kBuckets);

  void add(const ClientBook& b) {
    ++processes;
    attempted += load(b.attempted);
    submitted += load(b.submitted);
    refused += load(b.refused);
    uint64_t e = 0;
    for (uint32_t s = 0; s < wire::kStatusCount; ++s) {
      by_status[s] += load(b.ended[s]);
      e += load(b.ended[s]);
    }
    ended += e;
    unanswered += load(b.submitted) - std::min(load(b.submitted), e);
    measured += load(b.measured_ended);
    for (int r = 0; r < kMeasureRounds; ++r) rounds[r] += load(b.round_ended[r]);
    unexpected += load(b.unexpected);
    wrong_outputs += load(b.wrong_outputs);
    lost += load(b.lost);
    cancels += load(b.cancels_sent);
    deadlines += load(b.deadlines_set);
    backlogged += load(b.backlogged);
    max_latency_ns = std::max(max_latency_ns, b.max_latency_ns.load(std::memory_order_relaxed));
    for (uint32_t k = 0; k < LatencyHistogram::kBuckets; ++k) latency[k] += load(b.latency[k]);
  }
  // Requests attempted but neither taken nor refused: a client was killed
  // inside coproc_submit (the daemon may or may not have read them).
  uint64_t in_doubt() const { return attempted - submitted - refused; }

  int64_t percentile_ns(double q) const {
    uint64_t total = 0;
    for (uint64_t c : latency) total += c;
    if (total == 0) return 0;
    const auto rank = static_cast<uint64_t>(q * static_cast<double>(total - 1));
    uint64_t seen = 0;
    for (uint32_t k = 0; k < LatencyHistogram::kBuckets; ++k) {
      seen += latency[k];
      if (seen > rank) return static_cast<int64_t>(LatencyHistogram::value(k));
    }
    return max_latency_ns;
  }
};

struct Sample {
  int64_t t_ns;  // since the soak's start
  ProcSample proc;
};

// Memory over the samples after warm-up, in kB.
struct KbRange {
  int64_t min = INT64_MAX, max = 0;
  void add(int64_t kb) {
    min = std::min(min, kb);
    max = std::max(max, kb);
  }
  bool known() const { return min != INT64_MAX && min > 0; }
  double drift() const {
    return known() ? static_cast<double>(max - min) / static_cast<double>(min) : 0;
  }
};

struct Check {
  std::string name;
  bool ok;
  std::string detail;
};

class Soak {
 public:
  explicit Soak(const SoakOptions& o) : o_(o), rng_(o.seed) {
    warmup_ns_ =
        o.warmup_ns >= 0
            ? o.warmup_ns
            : std::max(kMinWarmupNs,
                       static_cast<int64_t>(kWarmupShare * static_cast<double>(o.duration_ns)));
    victims_ = o.kill_every_ns > 0 ? o.clients / 2 : 0;
    const int64_t max_kills = o.kill_every_ns > 0 ? 2 * o.duration_ns / o.kill_every_ns + 1 : 0;
    books_ = std::make_unique<SharedBooks>(2 * static_cast<std::size_t>(o.clients) +
                                           static_cast<std::size_t>(max_kills));
  }

  int run() {
    if (std::string e = validate(); !e.empty()) return fail_to_run(e);
    if (!books_->ok()) return fail_to_run("mmap of the client books failed");
    if (!watch_.open(o_.socket_path)) {
      return fail_to_run("cannot watch the daemon: " + watch_.error());
    }
    if (std::string e = measure_capacity(); !e.empty()) return fail_to_run(e);
    if (!settle(nullptr)) {
      return fail_to_run("the daemon did not go idle after the capacity run: " + idle_state());
    }
    baseline_ = watch_.sample();
    books_before_ = watch_.books();
    run_soak_phase();
    const bool idle = settle(&baseline_);
    end_ = watch_.sample();
    books_after_ = watch_.books();
    check(idle);
    report();
    for (const Check& c : checks_) {
      if (!c.ok) return 1;
    }
    return 0;
  }

 private:
  std::string validate() const {
    if (o_.kill_every_ns > 0 && o_.clients < 2) {
      return "kills need at least 2 clients: the first half is never killed";
    }
    if (o_.duration_ns <= warmup_ns_ + 2 * kSampleEveryNs) {
      return fmt::format("the run ({:.0f} s) must outlast the warm-up ({:.0f} s) by 2 s at least",
                         seconds(o_.duration_ns), seconds(warmup_ns_));
    }
    return "";
  }

  int fail_to_run(const std::string& why) {
    if (o_.json) {
      fmt::print("{{\"ok\":false,\"error\":\"{}\"}}\n", json_escape(why));
    } else {
      std::fprintf(stderr, "coproc-soak: %s\n", why.c_str());
    }
    for (auto& inc : live_) ::kill(inc.pid, SIGKILL);
    for (auto& inc : live_) ::waitpid(inc.pid, nullptr, 0);
    return 1;
  }

  ClientPlan plan(bool open_loop, int64_t start, int64_t measure_from, int64_t end) {
    ClientPlan p;
    p.socket_path = o_.socket_path;
    p.model_name = o_.model_name;
    p.side_model_name = o_.side_model_name;
    p.open_loop = open_loop;
    p.in_flight = kCapacityInFlight;
    p.rate_rps = rate_rps_ / o_.clients;
    p.start_ns = start;
    p.measure_from_ns = measure_from;
    p.end_ns = end;
    p.seed = o_.seed * 1'000'003 + ++spawned_;
    return p;
  }

  // Closed loop, every client kCapacityInFlight deep: the rate the daemon
  // (and the clients, on the same cores) sustain for this mix.
  std::string measure_capacity() {
    const int64_t start = now_ns() + kSetupAllowanceNs;
    const int64_t from = start + kCapacityWarmupNs;
    const ClientPlan p = plan(false, start, from, from + o_.capacity_ns);
    std::vector<Incarnation> group(static_cast<std::size_t>(o_.clients));
    for (auto& inc : group) {
      inc.book = books_->take();
      if (!spawn(p, &inc)) return "fork failed";
    }
    Totals t;
    std::string error;
    for (auto& inc : group) {
      ::waitpid(inc.pid, &inc.wait_status, 0);
      if (!WIFEXITED(inc.wait_status) || WEXITSTATUS(inc.wait_status) != 0) {
        error = "a capacity client failed (" + describe(inc.wait_status) + ")";
      }
      t.add(*inc.book);
    }
    if (!error.empty()) return error;
    if (t.lost + t.unexpected + t.wrong_outputs != 0) {
      return fmt::format(
          "the capacity run lost {} requests, saw {} unexpected outcomes, {} wrong answers", t.lost,
          t.unexpected, t.wrong_outputs);
    }
    const double round_s = seconds(o_.capacity_ns) / kMeasureRounds;
    for (uint64_t n : t.rounds) capacity_rounds_rps_.push_back(static_cast<double>(n) / round_s);
    std::vector<double> sorted = capacity_rounds_rps_;
    std::sort(sorted.begin(), sorted.end());
    capacity_rps_ = sorted[sorted.size() / 2];
    rate_rps_ = o_.load * capacity_rps_;
    if (rate_rps_ <= 0) return "the capacity run completed nothing";
    return "";
  }

  void run_soak_phase() {
    start_ns_ = now_ns() + kSetupAllowanceNs;
    const int64_t from = start_ns_ + warmup_ns_;
    end_ns_ = start_ns_ + o_.duration_ns;
    for (int slot = 0; slot < o_.clients; ++slot) {
      Incarnation inc;
      inc.slot = slot;
      inc.book = books_->take();
      if (spawn(plan(true, start_ns_, from, end_ns_), &inc)) {
        live_.push_back(inc);
      } else {
        ++spawn_failures_;
      }
    }
    std::uniform_real_distribution<double> gap(0.5, 1.5);
    auto next_gap = [&] {
      return static_cast<int64_t>(gap(rng_) * static_cast<double>(o_.kill_every_ns));
    };
    int64_t next_sample = start_ns_ + kSampleEveryNs;
    int64_t next_kill = o_.kill_every_ns > 0 ? start_ns_ + next_gap() : INT64_MAX;
    for (;;) {
      const int64_t wake = std::min({next_sample, next_kill, end_ns_});
      if (int64_t now = now_ns(); wake > now) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(wake - now));
      }
      const int64_t now = now_ns();
      if (now >= end_ns_) break;
      if (now >= next_sample) {
        samples_.push_back({now - start_ns_, watch_.sample()});
        next_sample += kSampleEveryNs;
        if (!samples_.back().proc.alive) break;
      }
      if (now >= next_kill) {
        if (now < end_ns_ - kNoKillBeforeEndNs) kill_and_replace(from);
        next_kill += next_gap();
      }
    }
    for (auto& inc : live_) {
      ::waitpid(inc.pid, &inc.wait_status, 0);
      finished_.push_back(inc);
    }
    live_.clear();
  }

  void kill_and_replace(int64_t measure_from) {
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < live_.size(); ++i) {
      if (live_[i].slot >= o_.clients - victims_) candidates.push_back(i);
    }
    if (candidates.empty()) return;
    Incarnation replacement;
    replacement.book = books_->take();
    if (!replacement.book) return;  // out of books: the run goes on without more kills
    std::uniform_int_distribution<std::size_t> pick(0, candidates.size() - 1);
    std::swap(candidates[0], candidates[pick(rng_)]);
    Incarnation& victim = live_[candidates[0]];
    ::kill(victim.pid, SIGKILL);
    ::waitpid(victim.pid, &victim.wait_status, 0);
    ++kills_;
    killed_.push_back(victim);
    replacement.slot = victim.slot;
    const int64_t now = now_ns();
    if (spawn(plan(true, now, std::max(measure_from, now), end_ns_), &replacement)) {
      victim = replacement;
    } else {
      ++spawn_failures_;
      live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(candidates[0]));
    }
  }

  // Waits until every model is idle and its books balance and, with a
  // baseline, until descriptors, mappings and segment pages are back to it;
  // without one, until they hold still for one poll. false: not within the
  // timeout.
  bool settle(const ProcSample* baseline) {
    const int64_t give_up = now_ns() + kSettleTimeoutNs;
    ProcSample last = watch_.sample();
    for (;;) {
      std::this_thread::sleep_for(kSettlePoll);
      bool idle = true;
      for (const ModelBooks& b : watch_.books())
        idle = idle && b.queued == 0 && b.received() == b.answered();
      ProcSample now = watch_.sample();
      const ProcSample& target = baseline ? *baseline : last;
      const bool steady = now.fds == target.fds && now.maps == target.maps &&
                          now.rss_shmem_kb == target.rss_shmem_kb;
      if (!now.alive) return false;
      if (idle && steady) return true;
      if (now_ns() > give_up) return false;
      last = now;
    }
  }

  // The books and counts settle() looks at, for a message.
  std::string idle_state() const {
    std::string text;
    for (const ModelBooks& b : watch_.books()) {
      text += fmt::format("{}: received {}, answered {}, queued {}; ", b.name, b.received(),
                          b.answered(), b.queued);
    }
    const ProcSample p = watch_.sample();
    return text + fmt::format("descriptors {}, mappings {}", p.fds, p.maps);
  }

  void add(std::string name, bool ok, std::string detail) {
    checks_.push_back({std::move(name), ok, std::move(detail)});
  }

  void check(bool idle) {
    Totals survivors, killed;
    std::string bad_exits;
    for (const auto& inc : finished_) {
      survivors.add(*inc.book);
      if (!WIFEXITED(inc.wait_status) || WEXITSTATUS(inc.wait_status) != 0) {
        bad_exits += fmt::format(" slot {}: {};", inc.slot, describe(inc.wait_status));
      }
    }
    for (const auto& inc : killed_) {
      killed.add(*inc.book);
      if (!WIFSIGNALED(inc.wait_status) || WTERMSIG(inc.wait_status) != SIGKILL) {
        bad_exits += fmt::format(" killed slot {} had ended by itself: {};", inc.slot,
                                 describe(inc.wait_status));
      }
    }
    survivors_ = survivors;
    killed_totals_ = killed;
    bool alive = end_.alive;
    for (const auto& s : samples_) alive = alive && s.proc.alive;
    add("daemon stayed up", alive,
        alive ? "alive at every sample" : "the daemon died during the soak");
    if (spawn_failures_ > 0)
      bad_exits += fmt::format(" {} replacements could not be forked;", spawn_failures_);
    add("clients ran to the end", bad_exits.empty(),
        bad_exits.empty() ? "every client process exited 0" : bad_exits);
    add("no lost requests", survivors.lost == 0 && survivors.ended == survivors.submitted,
        fmt::format("{} processes not killed ({} never-killed slots, {} replacements): {} "
                    "submitted, {} ended exactly once, {} still in flight after the drain",
                    survivors.processes, o_.clients - victims_,
                    survivors.processes - static_cast<uint64_t>(o_.clients - victims_),
                    survivors.submitted, survivors.ended, survivors.lost));
    const uint64_t unexpected = survivors.unexpected + killed.unexpected;
    const uint64_t wrong = survivors.wrong_outputs + killed.wrong_outputs;
    add("outcomes as expected", unexpected == 0 && wrong == 0,
        fmt::format(
            "{} outcomes other than OK, CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or "
            "changed after reading; {} answers not matching their request",
            unexpected, wrong));

    bool balanced = idle;
    std::string books_detail;
    for (std::size_t m = 0; m < books_after_.size(); ++m) {
      const ModelBooks& b = books_after_[m];
      const ModelBooks d = b.since(books_before_[m]);
      balanced = balanced && b.received() == b.answered() && b.queued == 0;
      received_ += d.received();
      delta_.push_back(d);
      books_detail +=
          fmt::format("{}{}: accepted {} + rejected {} = {}, completed {} + dropped {} = {}",
                      books_detail.empty() ? "" : "; ", b.name, b.accepted,
                      b.rejected_queue_full + b.rejected_invalid, b.received(), b.completed_total(),
                      b.dropped_client_gone, b.answered());
    }
    add("daemon's books balance", balanced, books_detail + (idle ? "" : " (never went idle)"));
    const uint64_t lower = survivors.submitted + killed.ended;
    const uint64_t upper = survivors.submitted + killed.attempted - killed.refused;
    add("daemon read what clients sent", lower <= received_ && received_ <= upper,
        fmt::format("soak: daemon received {}; clients: {} (survivors' submitted + killed clients' "
                    "answered) <= it <= {} (everything put on a ring)",
                    received_, lower, upper));
    if (o_.kill_every_ns > 0) {
      add("clients killed", kills_ > 0,
          fmt::format("{} SIGKILLs, {} requests in flight in them", kills_,
                      killed.unanswered + killed.in_doubt()));
    }
    for (const auto& s : samples_) {
      if (s.t_ns < warmup_ns_ || s.proc.rss_kb < 0) continue;
      vm_rss_.add(s.proc.rss_kb);
      own_.add(s.proc.rss_kb - s.proc.rss_shmem_kb);
      shmem_.add(s.proc.rss_shmem_kb);
    }
    // The flatness check leaves out RssShmem: those are the pages of the live
    // clients' segments the daemon has touched, which leave with a killed
    // client and come back as its replacement's rings wrap (measured: a dip of
    // ~400 kB, 1.2% of VmRSS, in a sample taken just after a kill). That the
    // segments themselves do not leak is checked at the end, with no client
    // left: RssShmem, descriptors and mappings back to their baseline.
    add("resident memory flat", own_.known() && own_.drift() <= o_.max_rss_drift,
        fmt::format(
            "after {:.0f} s warm-up, the daemon's own memory (VmRSS - RssShmem): min {} kB, "
            "max {} kB, drift {:.3f}% (limit {:.1f}%); VmRSS with the client segments' "
            "pages: {}..{} kB, {:.3f}%",
            seconds(warmup_ns_), own_.min, own_.max, 100 * own_.drift(), 100 * o_.max_rss_drift,
            vm_rss_.min, vm_rss_.max, 100 * vm_rss_.drift()));
    auto back = [&](const char* what, int64_t before, int64_t after) {
      if (before < 0 || after < 0) {
        add(fmt::format("{} back to baseline", what), true, "not readable in /proc: not checked");
      } else {
        add(fmt::format("{} back to baseline", what), before == after,
            fmt::format("baseline {}, at the end {}", before, after));
      }
    };
    back("client segment memory", baseline_.rss_shmem_kb, end_.rss_shmem_kb);
    back("descriptors", baseline_.fds, end_.fds);
    back("mappings", baseline_.maps, end_.maps);
  }

  void report() const;

  const SoakOptions& o_;
  std::mt19937_64 rng_;
  int64_t warmup_ns_ = 0;
  int victims_ = 0;
  std::unique_ptr<SharedBooks> books_;
  DaemonWatch watch_;
  double capacity_rps_ = 0, rate_rps_ = 0;
  std::vector<double> capacity_rounds_rps_;
  uint64_t spawned_ = 0;
  int64_t start_ns_ = 0, end_ns_ = 0;
  std::vector<Incarnation> live_, finished_, killed_;
  uint64_t kills_ = 0;
  uint64_t spawn_failures_ = 0;
  std::vector<Sample> samples_;
  ProcSample baseline_, end_;
  std::vector<ModelBooks> books_before_, books_after_, delta_;
  uint64_t received_ = 0;
  Totals survivors_, killed_totals_;
  KbRange vm_rss_, own_, shmem_;
  std::vector<Check> checks_;
};

void Soak::report() const {
  Totals all = survivors_;
  for (const auto& inc : killed_) all.add(*inc.book);
  const double measured_s = seconds(o_.duration_ns - warmup_ns_);
  const double rps = static_cast<double>(all.measured) / measured_s;
  const int64_t p50 = all.percentile_ns(0.50), p90 = all.percentile_ns(0.90),
                p99 = all.percentile_ns(0.99), p999 = all.percentile_ns(0.999);
  uint64_t dropped = 0;
  for (const auto& d : delta_) dropped += d.dropped_client_gone;
  bool ok = true;
  for (const auto& c : checks_) ok = ok && c.ok;
  static constexpr std::pair<int, const char*> kShown[] = {
      {COPROC_OK, "ok"},
      {COPROC_ERR_CANCELLED, "cancelled"},
      {COPROC_ERR_DEADLINE_EXCEEDED, "deadline_exceeded"},
      {COPROC_ERR_RESOURCE_EXHAUSTED, "resource_exhausted"}};
  if (o_.json) {
    std::string outcomes, checks, rss;
    for (auto [st, name] : kShown)
      outcomes += fmt::format("{}\"{}\":{}", outcomes.empty() ? "" : ",", name, all.by_status[st]);
    for (const auto& c : checks_) {
      checks += fmt::format("{}{{\"name\":\"{}\",\"ok\":{},\"detail\":\"{}\"}}",
                            checks.empty() ? "" : ",", c.name, c.ok, json_escape(c.detail));
    }
    for (const auto& s : samples_) {
      rss +=
          fmt::format("{}[{:.1f},{},{},{},{}]", rss.empty() ? "" : ",", seconds(s.t_ns),
                      s.proc.rss_kb, s.proc.rss_anon_kb, s.proc.rss_file_kb, s.proc.rss_shmem_kb);
    }
    fmt::print(
        R"({{"ok":{},"model":"{}","side_model":"{}","clients":{},"victims":{},"duration_s":{:.1f},"warmup_s":{:.1f},)"
        R"("capacity_rps":{:.1f},"capacity_rounds_rps":[{:.1f}],"load":{:.2f},"offered_rps":{:.1f},"throughput_rps":{:.1f},"kills":{},)"
        R"("requests":{{"attempted":{},"submitted":{},"ended":{},"backlogged":{},"cancels_sent":{},"deadlines_set":{},)"
        R"("outcomes":{{{}}},"in_flight_at_kills":{},"daemon_received":{},"daemon_dropped_client_gone":{}}},)"
        R"("latency_ns":{{"p50":{},"p90":{},"p99":{},"p999":{},"max":{}}},)"
        R"("memory_kb":{{"own_min":{},"own_max":{},"own_drift":{:.5f},"vm_rss_min":{},"vm_rss_max":{},"vm_rss_drift":{:.5f},)"
        R"("shmem_min":{},"shmem_max":{},"shmem_baseline":{},"shmem_end":{}}},)"
        R"("fds":{{"baseline":{},"end":{}}},"maps":{{"baseline":{},"end":{}}},"checks":[{}],)"
        R"("samples_t_rss_anon_file_shmem_kb":[{}]}})"
        "\n",
        ok, o_.model_name, o_.side_model_name, o_.clients, victims_, seconds(o_.duration_ns),
        seconds(warmup_ns_), capacity_rps_, fmt::join(capacity_rounds_rps_, ","), o_.load,
        rate_rps_, rps, kills_, all.attempted, all.submitted, all.ended, all.backlogged,
        all.cancels, all.deadlines, outcomes, killed_totals_.unanswered + killed_totals_.in_doubt(),
        received_, dropped, p50, p90, p99, p999, all.max_latency_ns, own_.min, own_.max,
        own_.drift(), vm_rss_.min, vm_rss_.max, vm_rss_.drift(), shmem_.min, shmem_.max,
        baseline_.rss_shmem_kb, end_.rss_shmem_kb, baseline_.fds, end_.fds, baseline_.maps,
        end_.maps, checks, rss);
    return;
  }
  auto ms = [](int64_t ns) { return static_cast<double>(ns) / 1e6; };
  std::printf("soak: model %s%s%s, %d client processes (%d never killed), %.0f s, warm-up %.0f s\n",
              o_.model_name.c_str(), o_.side_model_name.empty() ? "" : " + ",
              o_.side_model_name.c_str(), o_.clients, o_.clients - victims_,
              seconds(o_.duration_ns), seconds(warmup_ns_));
  fmt::print(
      "capacity {:.0f} req/s (closed loop, {} in flight per client, median of the 1-s rounds "
      "{:.0f}); "
      "offered {:.0f} req/s (load {:.2f})\n",
      capacity_rps_, kCapacityInFlight, fmt::join(capacity_rounds_rps_, " "), rate_rps_, o_.load);
  std::printf(
      "requests %llu submitted, %llu ended: ", static_cast<unsigned long long>(all.submitted),
      static_cast<unsigned long long>(all.ended));
  for (auto [st, name] : kShown)
    std::printf("%s %llu ", name, static_cast<unsigned long long>(all.by_status[st]));
  std::printf("(%llu arrivals backlogged)\n", static_cast<unsigned long long>(all.backlogged));
  std::printf(
      "kills %llu (%llu requests in flight in them; daemon dropped %llu queued for gone clients)\n",
      static_cast<unsigned long long>(kills_),
      static_cast<unsigned long long>(killed_totals_.unanswered + killed_totals_.in_doubt()),
      static_cast<unsigned long long>(dropped));
  std::printf(
      "throughput %.0f req/s after warm-up; OK latency p50 %.3f ms, p90 %.3f, p99 %.3f, p99.9 "
      "%.3f, max %.3f\n",
      rps, ms(p50), ms(p90), ms(p99), ms(p999), ms(all.max_latency_ns));
  std::printf(
      "daemon memory after warm-up: own (VmRSS - RssShmem) %lld..%lld kB, drift %.3f%%; VmRSS "
      "%lld..%lld kB, "
      "drift %.3f%%; client segment pages %lld..%lld kB\n",
      static_cast<long long>(own_.min), static_cast<long long>(own_.max), 100 * own_.drift(),
      static_cast<long long>(vm_rss_.min), static_cast<long long>(vm_rss_.max),
      100 * vm_rss_.drift(), static_cast<long long>(shmem_.min),
      static_cast<long long>(shmem_.max));
  for (const auto& c : checks_)
    std::printf("%s  %s: %s\n", c.ok ? "PASS" : "FAIL", c.name.c_str(), c.detail.c_str());
  std::printf("%s\n", ok ? "soak passed" : "soak FAILED");
}

}  // namespace

int run_soak(const SoakOptions& options) {
  Soak soak(options);
  return soak.run();
}

}  // namespace coproc::soak
