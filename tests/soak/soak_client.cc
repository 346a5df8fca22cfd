#include "soak_client.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "common/inputs.h"
#include "coproc.h"
#include "transport/transports.h"

namespace coproc::soak {

namespace {

// The benchmark's rule for a model's inputs: shapes and values (bench/common/inputs.h).
using bench::alloc_model_tensors;
using bench::resolve_dims;

constexpr double kSideShare = 0.25;
constexpr double kFewRowsShare = 0.20;
constexpr int64_t kMaxRows = 8;
constexpr std::array<double, 4> kPriorityMix = {0.05, 0.15, 0.50, 0.30};
constexpr double kDeadlineShare = 0.10;
constexpr int64_t kDeadlineMinNs = 200'000;
constexpr int64_t kDeadlineMaxNs = 5'000'000;
constexpr double kCancelShare = 0.05;
// Longest single wait of the loop, so it notices the end of the run.
constexpr int64_t kPollSliceNs = 1'000'000;
constexpr int64_t kDrainTimeoutNs = 10'000'000'000;
constexpr std::size_t kMaxTensors = 4;
// The side model is an identity: these first floats of its input carry a tag
// that must come back in its output, so an answer meant for another request
// (or another client) shows.
constexpr std::size_t kTagFloats = 2;
constexpr uint32_t kTagModulus = 1u << 24;  // integers a float holds exactly

int64_t now_ns() { return static_cast<int64_t>(coproc_now_ns()); }

void bump(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

// A model's tensors for one slot, allocated once at the largest row count;
// shaped per request.
struct ModelTensors {
  std::array<coproc_tensor, kMaxTensors> inputs{};
  std::array<coproc_tensor, kMaxTensors> outputs{};
};

struct ClientModel {
  coproc_model* model = nullptr;
  std::size_t n_in = 0, n_out = 0;
  std::array<coproc_tensor_info, kMaxTensors> in_info{}, out_info{};

  bool find(coproc_client* client, const std::string& name) {
    if (coproc_model_find(client, name.c_str(), &model) != COPROC_OK) return false;
    n_in = coproc_model_input_count(model);
    n_out = coproc_model_output_count(model);
    if (n_in > kMaxTensors || n_out > kMaxTensors) return false;
    for (std::size_t i = 0; i < n_in; ++i) coproc_model_input(model, i, &in_info[i]);
    for (std::size_t i = 0; i < n_out; ++i) coproc_model_output(model, i, &out_info[i]);
    return true;
  }
  bool alloc(coproc_client* client, int64_t rows, ModelTensors* t) const {
    return alloc_model_tensors(client, model, true, t->inputs.data(), n_in, {rows, 1}) &&
           alloc_model_tensors(client, model, false, t->outputs.data(), n_out, {rows, 1});
  }
};

// `t` (allocated for at least `rows`) shaped for `rows`: the data pointer
// stays, so the first `rows` rows of the allocation are used.
void shape_rows(const coproc_tensor_info& info, int64_t rows, coproc_tensor* t) {
  auto dims = resolve_dims({info.shape, static_cast<std::size_t>(info.rank)}, {rows, 1});
  uint64_t elements = 1;
  for (std::size_t d = 0; d < dims.size(); ++d) {
    t->shape[d] = dims[d];
    elements *= static_cast<uint64_t>(dims[d]);
  }
  t->bytes = elements * coproc_dtype_bytes(t->dtype);
}

struct Slot {
  ModelTensors main, side;
  std::array<coproc_tensor, kMaxTensors> in{}, out{};  // this request's, shaped
  coproc_request* request = nullptr;
  int64_t started_ns = 0;
  bool to_side = false;
  int64_t rows = 1;
  std::array<float, kTagFloats> tag{};
};

bool tag_fits(const ClientModel& side) {
  auto floats = [](const coproc_tensor_info& i) { return i.dtype == COPROC_DTYPE_FLOAT32; };
  return side.n_in == 1 && side.n_out == 1 && floats(side.in_info[0]) && floats(side.out_info[0]) &&
         side.in_info[0].rank == 2 && side.in_info[0].shape[1] >= 2;
}

class SoakClient {
 public:
  SoakClient(const ClientPlan& plan, ClientBook* book)
      : plan_(plan),
        book_(book),
        rng_(plan.seed),
        gap_s_(plan.rate_rps > 0 ? plan.rate_rps : 1.0) {}
  ~SoakClient() {
    if (client_) coproc_disconnect(client_);
  }

  int run() {
    if (int rc = setup(); rc != 0) return rc;
    while (now_ns() < plan_.start_ns) std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (int rc = loop(); rc != 0) return rc;
    drain();
    return 0;
  }

 private:
  int setup() {
    coproc_connect_options options;
    coproc_connect_options_init(&options);
    options.socket_path = plan_.socket_path.c_str();
    options.spin_ns = 0;  // many clients on few cores: sleep, don't spin
    if (coproc_connect(&options, &client_) != COPROC_OK) return kClientConnectFailed;
    if (!main_.find(client_, plan_.model_name)) return kClientModelMissing;
    has_side_ = !plan_.side_model_name.empty() && side_.find(client_, plan_.side_model_name) &&
                tag_fits(side_);
    slots_.resize(static_cast<std::size_t>(plan_.open_loop ? kOpenLoopWindow : plan_.in_flight));
    for (auto& s : slots_) {
      if (!main_.alloc(client_, kMaxRows, &s.main)) return kClientAllocFailed;
      if (has_side_ && !side_.alloc(client_, 1, &s.side)) return kClientAllocFailed;
    }
    return 0;
  }

  int loop() {
    double next_arrival = static_cast<double>(plan_.start_ns);
    std::vector<coproc_request*> pending;
    while (now_ns() < plan_.end_ns) {
      if (plan_.open_loop) {
        for (int64_t now = now_ns(); next_arrival <= static_cast<double>(now);
             next_arrival += gap_s_(rng_) * 1e9) {
          Slot* slot = free_slot();
          if (!slot) {
            bump(book_->backlogged);
          } else if (!submit(*slot, static_cast<int64_t>(next_arrival))) {
            return kClientDaemonGone;
          }
        }
      } else {
        for (auto& s : slots_) {
          if (!s.request && !submit(s, now_ns())) return kClientDaemonGone;
        }
      }
      pending.clear();
      for (auto& s : slots_) {
        if (s.request) pending.push_back(s.request);
      }
      int64_t wait = kPollSliceNs;
      if (plan_.open_loop) {
        wait = std::clamp<int64_t>(static_cast<int64_t>(next_arrival) - now_ns(), 0, kPollSliceNs);
      }
      if (pending.empty()) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
        continue;
      }
      if (coproc_poll(client_, pending.data(), pending.size(), wait, nullptr) ==
          COPROC_ERR_DAEMON_GONE) {
        return kClientDaemonGone;
      }
      for (auto& s : slots_) {
        if (s.request && coproc_request_status(s.request) != COPROC_ERR_IN_FLIGHT) collect(s);
      }
    }
    return 0;
  }

  // Every request still in flight must complete: exactly one outcome each.
  void drain() {
    const int64_t give_up = now_ns() + kDrainTimeoutNs;
    for (auto& s : slots_) {
      if (!s.request) continue;
      coproc_status st = coproc_wait(s.request, std::max<int64_t>(give_up - now_ns(), 0));
      if (st == COPROC_ERR_TIMEOUT || st == COPROC_ERR_DAEMON_GONE) {
        bump(book_->lost);
        continue;
      }
      collect(s);
    }
  }

  // Round robin from the last slot used, so within a client's first few dozen
  // requests the daemon has touched every page of its arena it ever will.
  Slot* free_slot() {
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      Slot& s = slots_[(cursor_ + k) % slots_.size()];
      if (!s.request) {
        cursor_ = (cursor_ + k + 1) % slots_.size();
        return &s;
      }
    }
    return nullptr;
  }

  // false: the daemon is gone.
  bool submit(Slot& s, int64_t started_ns) {
    const double pick = unit_(rng_);
    s.to_side = has_side_ && pick < kSideShare;
    s.rows = !s.to_side && pick > 1.0 - kFewRowsShare ? rows_(rng_) : 1;
    const ClientModel& m = s.to_side ? side_ : main_;
    const ModelTensors& t = s.to_side ? s.side : s.main;
    for (std::size_t i = 0; i < m.n_in; ++i) {
      s.in[i] = t.inputs[i];
      shape_rows(m.in_info[i], s.rows, &s.in[i]);
    }
    for (std::size_t i = 0; i < m.n_out; ++i) {
      s.out[i] = t.outputs[i];
      shape_rows(m.out_info[i], s.rows, &s.out[i]);
    }
    if (s.to_side) {
      ++sequence_;
      s.tag = {static_cast<float>(sequence_ % kTagModulus),
               static_cast<float>(static_cast<uint32_t>(plan_.seed) % kTagModulus)};
      std::memcpy(s.in[0].data, s.tag.data(), sizeof(s.tag));
    }
    coproc_submit_options options;
    coproc_submit_options_init(&options);
    options.priority = static_cast<coproc_priority>(priority_(rng_));
    const bool with_deadline = unit_(rng_) < kDeadlineShare;
    if (with_deadline) options.deadline_ns = static_cast<uint64_t>(now_ns() + deadline_(rng_));
    const bool cancel = unit_(rng_) < kCancelShare;
    s.started_ns = started_ns;
    bump(book_->attempted);
    coproc_status st = coproc_submit(client_, m.model, s.in.data(), m.n_in, s.out.data(), m.n_out,
                                     &options, &s.request);
    if (st != COPROC_OK) {
      s.request = nullptr;
      bump(book_->refused);
      if (st == COPROC_ERR_DAEMON_GONE) return false;
      note_unexpected(st);
      return true;
    }
    bump(book_->submitted);
    if (with_deadline) bump(book_->deadlines_set);
    if (cancel) {
      bump(book_->cancels_sent);
      if (coproc_cancel(s.request) == COPROC_ERR_DAEMON_GONE) return false;
    }
    return true;
  }

  void collect(Slot& s) {
    const int64_t done = now_ns();
    const coproc_status st = coproc_request_status(s.request);
    if (st >= 0 && static_cast<uint32_t>(st) < wire::kStatusCount) {
      bump(book_->ended[st]);
    }
    if (st != COPROC_OK && st != COPROC_ERR_CANCELLED && st != COPROC_ERR_DEADLINE_EXCEEDED &&
        st != COPROC_ERR_RESOURCE_EXHAUSTED) {
      note_unexpected(st);
    }
    if (done >= plan_.measure_from_ns && done < plan_.end_ns) {
      bump(book_->measured_ended);
      const int64_t window = plan_.end_ns - plan_.measure_from_ns;
      bump(book_->round_ended[(done - plan_.measure_from_ns) * kMeasureRounds / window]);
    }
    if (st == COPROC_OK) {
      if (!answer_matches(s)) bump(book_->wrong_outputs);
      if (s.started_ns >= plan_.measure_from_ns) record_latency(done - s.started_ns);
    }
    // Exactly once: the outcome is final.
    if (coproc_request_status(s.request) != st) note_unexpected(coproc_request_status(s.request));
    if (coproc_release(s.request) != COPROC_OK) note_unexpected(COPROC_ERR_IN_FLIGHT);
    s.request = nullptr;
  }

  bool answer_matches(const Slot& s) const {
    int32_t rank = 0;
    int64_t shape[COPROC_MAX_RANK];
    if (coproc_request_output_shape(s.request, 0, &rank, shape) != COPROC_OK || rank < 1 ||
        shape[0] != s.rows) {
      return false;
    }
    if (!s.to_side) return true;
    return std::memcmp(s.out[0].data, s.tag.data(), sizeof(s.tag)) == 0;
  }

  void record_latency(int64_t ns) {
    ns = std::max<int64_t>(ns, 0);
    bump(book_->latency[LatencyHistogram::bucket(static_cast<uint64_t>(ns))]);
    if (ns > book_->max_latency_ns.load(std::memory_order_relaxed)) {
      book_->max_latency_ns.store(ns, std::memory_order_relaxed);
    }
  }

  void note_unexpected(coproc_status st) {
    bump(book_->unexpected);
    book_->last_unexpected_status.store(st, std::memory_order_relaxed);
  }

  const ClientPlan& plan_;
  ClientBook* book_;
  coproc_client* client_ = nullptr;
  ClientModel main_, side_;
  bool has_side_ = false;
  std::vector<Slot> slots_;
  std::size_t cursor_ = 0;
  uint64_t sequence_ = 0;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::uniform_int_distribution<int64_t> rows_{2, kMaxRows};
  std::uniform_int_distribution<int64_t> deadline_{kDeadlineMinNs, kDeadlineMaxNs};
  std::discrete_distribution<int> priority_{kPriorityMix.begin(), kPriorityMix.end()};
  std::exponential_distribution<double> gap_s_;
};

}  // namespace

uint32_t LatencyHistogram::bucket(uint64_t ns) {
  if (ns < kSubBuckets) return static_cast<uint32_t>(ns);
  const uint32_t exponent = 63 - static_cast<uint32_t>(__builtin_clzll(ns));  // >= 5
  const auto mantissa = static_cast<uint32_t>(ns >> (exponent - 5)) & (kSubBuckets - 1);
  return std::min((exponent - 4) * kSubBuckets + mantissa, kBuckets - 1);
}

uint64_t LatencyHistogram::value(uint32_t b) {
  if (b < kSubBuckets) return b;
  const uint32_t exponent = b / kSubBuckets + 4;
  const uint64_t low = (uint64_t{kSubBuckets} + b % kSubBuckets) << (exponent - 5);
  return low + (uint64_t{1} << (exponent - 5)) / 2;
}

int run_soak_client(const ClientPlan& plan, ClientBook* book) {
  SoakClient client(plan, book);
  return client.run();
}

}  // namespace coproc::soak
