#include "load_client.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "coproc.h"
#include "stress_support.h"
#include "support/daemon_process.h"

namespace coproc::test {

namespace {

// A request not answered within this long counts as lost.
constexpr int64_t kAnswerTimeoutNs = 20'000'000'000;
// Longest single coproc_poll, so the stop flag and lost answers are noticed.
constexpr int64_t kPollSliceNs = 10'000'000;
constexpr int kNoopWidth = 16;
constexpr int kMlpIn = 256, kMlpOut = 16, kMlpRows = 32;

struct Slot {
  coproc_tensor noop_in{}, noop_out{}, mlp_in{}, mlp_out{};
  coproc_request* request = nullptr;
  bool mlp = false;
  uint64_t seq = 0;
  int64_t started_ns = 0;  // submit time, or the scheduled arrival in the open loop
};

coproc_tensor tensor(coproc_client* c, int64_t rows, int64_t cols) {
  coproc_tensor t{};
  t.dtype = COPROC_DTYPE_FLOAT32;
  t.rank = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  t.bytes = static_cast<uint64_t>(rows * cols) * sizeof(float);
  if (coproc_alloc(c, t.bytes, &t.data) != COPROC_OK) t.data = nullptr;
  return t;
}

void note_error(LoadReport* report, const std::string& what) {
  if (report->first_error[0] == '\0') {
    std::snprintf(report->first_error, sizeof(report->first_error), "%s", what.c_str());
  }
}

void raise_max(std::atomic<uint64_t>& max, uint64_t v) {
  uint64_t seen = max.load(std::memory_order_relaxed);
  while (v > seen && !max.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

class LoadClient {
 public:
  LoadClient(const LoadOptions& o, LoadReport* report) : o_(o), report_(report), rng_(o.seed) {}

  int run() {
    coproc_connect_options co;
    coproc_connect_options_init(&co);
    co.socket_path = o_.socket.c_str();
    co.spin_ns = 0;  // many processes share 2 cores: sleep, do not spin
    if (coproc_connect(&co, &client_) != COPROC_OK) return fail(10, coproc_last_error());
    if (coproc_model_find(client_, "noop", &noop_) != COPROC_OK ||
        coproc_model_find(client_, "mlp", &mlp_) != COPROC_OK) {
      return fail(11, "models not found");
    }
    x_ = read_f32(models_dir() + "/ref/mlp.b32.in0.f32");
    ref_ = read_f32(models_dir() + "/ref/mlp.b32.out0.f32");
    if (x_.size() != kMlpRows * kMlpIn || ref_.size() != kMlpRows * kMlpOut)
      return fail(12, "reference files");
    for (float v : ref_) scale_ = std::max(scale_, std::fabs(v));
    slots_.resize(static_cast<std::size_t>(o_.in_flight));
    for (auto& s : slots_) {
      s.noop_in = tensor(client_, 1, kNoopWidth);
      s.noop_out = tensor(client_, 1, kNoopWidth);
      s.mlp_in = tensor(client_, 1, kMlpIn);
      s.mlp_out = tensor(client_, 1, kMlpOut);
      if (!s.noop_in.data || !s.noop_out.data || !s.mlp_in.data || !s.mlp_out.data)
        return fail(13, "arena");
    }
    report_->connected.store(1);
    int code = o_.open_loop_rate > 0 ? open_loop() : closed_loop();
    coproc_disconnect(client_);
    return code;
  }

 private:
  int fail(int code, const std::string& why) {
    note_error(report_, why);
    return code;
  }

  bool stopping() const { return o_.stop->load(std::memory_order_relaxed) != 0; }

  bool submit(Slot& s, int64_t started_ns) {
    s.seq = next_seq_++;
    s.mlp = o_.mlp_only || rng_() % 2 == 0;
    if (s.mlp) {
      std::memcpy(s.mlp_in.data, x_.data() + (s.seq % kMlpRows) * kMlpIn, kMlpIn * sizeof(float));
      std::memset(s.mlp_out.data, 0xFF, s.mlp_out.bytes);  // NaN: an unwritten output cannot pass
    } else {
      auto* in = static_cast<float*>(s.noop_in.data);
      for (int k = 0; k < kNoopWidth; ++k)
        in[k] = static_cast<float>((s.seq % 100000) * kNoopWidth + k);
      std::memset(s.noop_out.data, 0xFF, s.noop_out.bytes);
    }
    coproc_submit_options so;
    coproc_submit_options_init(&so);
    so.priority = static_cast<coproc_priority>(rng_() % 4);
    coproc_status st =
        s.mlp ? coproc_submit(client_, mlp_, &s.mlp_in, 1, &s.mlp_out, 1, &so, &s.request)
              : coproc_submit(client_, noop_, &s.noop_in, 1, &s.noop_out, 1, &so, &s.request);
    if (st != COPROC_OK) {
      report_->failed.fetch_add(1);
      note_error(report_, std::string("submit: ") + coproc_last_error());
      s.request = nullptr;
      return false;
    }
    s.started_ns = started_ns;
    report_->submitted.fetch_add(1);
    return true;
  }

  bool right_numbers(const Slot& s) const {
    if (s.mlp) {
      const auto* out = static_cast<const float*>(s.mlp_out.data);
      const float* want = ref_.data() + (s.seq % kMlpRows) * kMlpOut;
      for (int k = 0; k < kMlpOut; ++k) {
        if (!(std::fabs(out[k] - want[k]) <= 1e-4f * scale_)) return false;
      }
      return true;
    }
    return std::memcmp(s.noop_in.data, s.noop_out.data, s.noop_in.bytes) == 0;
  }

  // Collects every finished request; false once one failed.
  bool harvest() {
    const int64_t now = now_ns();
    for (auto& s : slots_) {
      if (!s.request) continue;
      coproc_status st = coproc_request_status(s.request);
      if (st == COPROC_ERR_IN_FLIGHT) {
        if (now - s.started_ns > kAnswerTimeoutNs) {
          report_->failed.fetch_add(1);
          note_error(report_, "a request got no answer within 20 s");
          return false;
        }
        continue;
      }
      const uint64_t latency = static_cast<uint64_t>(std::max<int64_t>(now - s.started_ns, 0));
      raise_max(report_->max_latency_ns, latency);
      raise_max(report_->window_max_latency_ns, latency);
      coproc_timing timing{};
      coproc_request_timing(s.request, &timing);
      // Exactly once: the outcome is final, and the handle can be released.
      bool stable = coproc_request_status(s.request) == st;
      if (st != COPROC_OK) {
        report_->failed.fetch_add(1);
        note_error(report_, std::string("request: ") + coproc_strerror(st));
      } else if (!right_numbers(s)) {
        report_->wrong.fetch_add(1);
        note_error(report_,
                   s.mlp ? "mlp result differs from the reference" : "noop result differs");
      } else {
        report_->completed_ok.fetch_add(1);
        if (timing.batch_size > 1) report_->batched.fetch_add(1);
      }
      if (!stable || coproc_release(s.request) != COPROC_OK) {
        report_->failed.fetch_add(1);
        note_error(report_, "request status changed or release failed");
      }
      s.request = nullptr;
    }
    return report_->failed.load() == 0 && report_->wrong.load() == 0;
  }

  std::vector<coproc_request*> in_flight() const {
    std::vector<coproc_request*> rs;
    for (const auto& s : slots_) {
      if (s.request) rs.push_back(s.request);
    }
    return rs;
  }

  // Waits up to timeout_ns for any in-flight request; false when the daemon is gone.
  bool poll_some(int64_t timeout_ns) {
    auto rs = in_flight();
    if (rs.empty()) return true;
    coproc_status st = coproc_poll(client_, rs.data(), rs.size(), timeout_ns, nullptr);
    if (st == COPROC_OK || st == COPROC_ERR_TIMEOUT) return true;
    report_->failed.fetch_add(1);
    note_error(report_, std::string("poll: ") + coproc_last_error());
    return false;
  }

  int finish() {
    const int64_t give_up = now_ns() + kAnswerTimeoutNs;
    while (!in_flight().empty()) {
      if (!poll_some(kPollSliceNs) || !harvest()) return 20;
      if (now_ns() > give_up) return fail(21, "in-flight requests not answered at stop");
    }
    return report_->failed.load() == 0 && report_->wrong.load() == 0 ? 0 : 22;
  }

  int closed_loop() {
    while (!stopping()) {
      for (auto& s : slots_) {
        if (!s.request && !submit(s, now_ns())) return 23;
      }
      if (!poll_some(kPollSliceNs) || !harvest()) return 24;
    }
    return finish();
  }

  int open_loop() {
    std::exponential_distribution<double> gap_s(o_.open_loop_rate);
    int64_t next_arrival = now_ns();
    while (!stopping()) {
      int64_t now = now_ns();
      while (now >= next_arrival) {
        // An arrival finding every slot busy is skipped: the loop stays open
        // (latency is measured from the scheduled arrival), the window bounded.
        auto free_slot =
            std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.request; });
        if (free_slot != slots_.end() && !submit(*free_slot, next_arrival)) return 25;
        next_arrival += static_cast<int64_t>(gap_s(rng_) * 1e9);
      }
      const int64_t until_next = std::clamp<int64_t>(next_arrival - now, 0, kPollSliceNs);
      if (in_flight().empty()) {
        timespec ts{0, static_cast<long>(until_next)};
        ::nanosleep(&ts, nullptr);
      } else if (!poll_some(until_next)) {
        return 26;
      }
      if (!harvest()) return 27;
    }
    return finish();
  }

  const LoadOptions& o_;
  LoadReport* report_;
  std::mt19937 rng_;
  coproc_client* client_ = nullptr;
  coproc_model* noop_ = nullptr;
  coproc_model* mlp_ = nullptr;
  std::vector<float> x_, ref_;
  float scale_ = 0;
  std::vector<Slot> slots_;
  uint64_t next_seq_ = 1;
};

}  // namespace

int run_load_client(const LoadOptions& options, LoadReport* report) {
  return LoadClient(options, report).run();
}

}  // namespace coproc::test
