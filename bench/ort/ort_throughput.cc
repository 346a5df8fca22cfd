// coproc-bench ort --processes N, throughput mode: what N processes on this host get from one
// coprocd against what they get running ONNX Runtime themselves.
//
//   coproc side: a private coprocd (batching dynamic, max_batch, a length bucket at seq for a
//                variable-length model) and N client processes in closed loop, one request of
//                batch 1 outstanding each: coproc-bench load's machinery (load.cc).
//   ORT side:    N tools/ort_worker.py processes, each with its own session on one thread
//                (intra_op = inter_op = 1, ORT's advice for many processes), in closed loop,
//                started together once every session is loaded.
// Both sides are set up once, then take turns for `rounds` rounds (a coproc phase, an ORT phase,
// each with its warm-up and duration / rounds measured), never at once, so that load from the
// rest of the machine hits both alike; each side's requests/s is its samples over its measured
// time. Same inputs (inputs.h at batch 1, seq). Each side's latency is what its caller waits per
// request: submit to completion for coproc (queueing and batching included), one session run for
// ORT. The first worker's outputs are checked against coproc's runtime run in this process on the
// same inputs (the daemon runs that runtime), so both sides are known to compute the same answer.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "common/private_daemon.h"
#include "common/stats.h"
#include "coproc.h"
#include "coproc/kernels/cpu.h"
#include "load/load.h"
#include "ort/coproc_runner.h"
#include "ort/ort_bench.h"
#include "ort/ort_process.h"

namespace coproc::bench {

namespace {

// Time for every ORT worker to receive its start line before the common start.
constexpr int64_t kStartAllowanceNs = 200'000'000;

// One side's samples over every round.
struct SideSamples {
  std::vector<int64_t> latencies_ns;
  int64_t measured_ns = 0;
  uint64_t errors = 0;
  double batch_rows = 0;  // coproc only: the batch size each request ran in, summed
};

struct PhaseResult {
  Percentiles latency;
  double throughput_rps = 0;
  uint64_t errors = 0;
  double mean_batch_size = 0;  // coproc only
};

PhaseResult result(const char* name, SideSamples s) {
  PhaseResult r;
  const double n = static_cast<double>(s.latencies_ns.size());
  r.throughput_rps = s.measured_ns > 0 ? n / (static_cast<double>(s.measured_ns) / 1e9) : 0;
  r.errors = s.errors;
  r.mean_batch_size = n > 0 ? s.batch_rows / n : 0;
  r.latency = summarize(name, std::move(s.latencies_ns));
  return r;
}

// N clients of a private coprocd.
class CoprocSide {
 public:
  CoprocSide(const OrtBenchOptions& o, const std::string& batching)
      : daemon_(kModelName, o.model_path, 1, batching, o.daemon_threads) {
    load_.socket_path = daemon_.socket_path();
    load_.model_name = kModelName;
    load_.clients = o.processes;
    load_.in_flight = 1;
    load_.warmup_ns = o.warmup_ns;
    load_.shape = {1, o.seq};
  }
  const std::string& error() const { return daemon_.error(); }
  bool ok() const { return daemon_.started(); }

  bool round(int64_t duration_ns, SideSamples* out, std::string* error) {
    load_.duration_ns = duration_ns;
    LoadResult r = run_load(load_);
    if (!r.error.empty()) {
      *error = r.error;
      return false;
    }
    for (const auto& s : r.samples) {
      out->latencies_ns.push_back(s.latency_ns);
      out->batch_rows += s.batch_size;
    }
    out->measured_ns += r.measured_ns;
    out->errors += r.errors;
    return true;
  }

 private:
  static constexpr const char* kModelName = "bench";  // whatever characters the file name has
  PrivateDaemon daemon_;
  LoadOptions load_;
};

// N ORT workers, loaded and fed once.
class OrtSide {
 public:
  // Starts the workers, gives each the inputs, and compares the first one's outputs with
  // `reference`'s into *agreement.
  bool start(const OrtBenchOptions& o, const std::vector<InputTensor>& inputs,
             CoprocRunner& reference, Agreement* agreement, std::string* error) {
    warmup_ns_ = o.warmup_ns;
    if (!dir_.ok()) {
      *error = "mkdtemp failed";
      return false;
    }
    for (int i = 0; i < o.processes; ++i) {
      workers_.push_back(std::make_unique<OrtProcess>(o.python, o.worker_script));
      if (!workers_.back()->load(o.model_path, 1, &version_)) {
        *error = workers_.back()->error();
        return false;
      }
    }
    if (!write_inputs(inputs, dir_.path(), "b1", error)) return false;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      OrtProcess& w = *workers_[i];
      std::string sub = fmt::format("{}/w{}", dir_.path(), i);  // each worker's outputs
      std::filesystem::create_directory(sub);
      if (!send_inputs(w, inputs, dir_.path(), "b1", error)) return false;
      auto outputs = w.write_outputs(sub);
      if (!outputs) {
        *error = w.error();
        return false;
      }
      if (i > 0) continue;
      auto a = reference.compare(*outputs, sub);
      if (!a) {
        *error = reference.error();
        return false;
      }
      *agreement = *a;
    }
    return true;
  }
  const std::string& version() const { return version_; }

  bool round(int64_t duration_ns, SideSamples* out, std::string* error) {
    const int64_t start_ns = static_cast<int64_t>(coproc_now_ns()) + kStartAllowanceNs;
    for (auto& w : workers_) {
      if (!w->send_loop(start_ns, warmup_ns_, duration_ns)) {
        *error = w->error();
        return false;
      }
    }
    for (auto& w : workers_) {
      auto samples = w->receive_loop();
      if (!samples) {
        *error = w->error();
        return false;
      }
      out->latencies_ns.insert(out->latencies_ns.end(), samples->begin(), samples->end());
    }
    out->measured_ns += duration_ns;
    return true;
  }

 private:
  TempDir dir_;
  std::vector<std::unique_ptr<OrtProcess>> workers_;
  std::string version_;
  int64_t warmup_ns_ = 0;
};

std::string phase_json(const PhaseResult& r) {
  return fmt::format(
      R"({{"throughput_rps":{:.1f},"samples":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{},"errors":{}}})",
      r.throughput_rps, r.latency.samples, r.latency.p50_ns, r.latency.p90_ns, r.latency.p99_ns,
      r.latency.p999_ns, r.latency.max_ns, r.errors);
}

}  // namespace

int run_ort_throughput(const OrtBenchOptions& o) {
  auto loaded = runtime::Model::load(o.model_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "coproc-bench: coproc cannot load %s: %s\n", o.model_path.c_str(),
                 loaded.error().message.c_str());
    return 1;
  }
  const bool seq = model_has_seq(*loaded.value());
  // Dynamic batching as `load --compare-batching` turns it on; a variable-length model batches
  // within one length bucket, so one bucket at seq holds every request unpadded.
  std::string batching = fmt::format("mode = \"dynamic\"\nmax_batch = {}\n", o.max_batch);
  if (seq) batching += fmt::format("length_buckets = [{}]\n", o.seq);
  auto inputs = make_inputs(*loaded.value(), {1, o.seq});
  // The daemon runs the same runtime: its answer in this process is what ORT's must match.
  kernels::cpu::set_threads(1);
  CoprocRunner reference(loaded.value(), inputs);
  if (!reference.run()) {
    std::fprintf(stderr, "coproc-bench: %s\n", reference.error().c_str());
    return 1;
  }

  CoprocSide coproc_side(o, batching);
  OrtSide ort_side;
  Agreement agreement;
  std::string error = coproc_side.error();
  bool ok = coproc_side.ok() && ort_side.start(o, inputs, reference, &agreement, &error);
  SideSamples coproc_samples, ort_samples;
  const int64_t round_ns = o.duration_ns / o.rounds;
  for (int r = 0; ok && r < o.rounds; ++r) {
    ok = coproc_side.round(round_ns, &coproc_samples, &error) &&
         ort_side.round(round_ns, &ort_samples, &error);
  }
  if (!ok) {
    std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
    return 1;
  }
  const std::string& ort_version = ort_side.version();
  PhaseResult ours = result("coproc", std::move(coproc_samples));
  PhaseResult theirs = result("ort", std::move(ort_samples));
  const double throughput_ratio =
      theirs.throughput_rps > 0 ? ours.throughput_rps / theirs.throughput_rps : 0;
  const bool p99_lower = ours.latency.p99_ns < theirs.latency.p99_ns;
  std::string batching_text = fmt::format("dynamic, max_batch {}{}", o.max_batch,
                                          seq ? fmt::format(", length_buckets [{}]", o.seq) : "");
  if (o.json) {
    fmt::print(
        R"({{"mode":"throughput","model":{},"ort_version":{},"processes":{},"batch":1,"seq":{},"inputs":{},"rounds":{},"warmup_ms":{},"duration_ms":{},"machine":{{{}}},"coproc_batching":{},"coproc_daemon_threads":{},"coproc":{},"coproc_mean_batch_size":{:.3f},"ort_threads_per_process":1,"ort":{},"throughput_ratio":{:.4f},"coproc_p99_lower":{},"max_abs_diff":{:.3g},"ort_max_abs":{:.3g},"outputs_agree":{}}})"
        "\n",
        json_string(o.model_path), json_string(ort_version), o.processes,
        seq ? std::to_string(o.seq) : "null", json_string(shapes_text(inputs)), o.rounds,
        o.warmup_ns / 1'000'000, o.duration_ns / 1'000'000, machine_json(),
        json_string(batching_text), o.daemon_threads, phase_json(ours), ours.mean_batch_size,
        phase_json(theirs), throughput_ratio, p99_lower, agreement.max_abs_diff,
        agreement.ort_max_abs, agreement.agree);
    return agreement.agree ? 0 : kExitOutputsDisagree;
  }
  std::printf(
      "model %s: %d processes, batch 1%s per request, closed loop, %.1f s measured per side "
      "in %d rounds taking turns\n",
      o.model_path.c_str(), o.processes, seq ? fmt::format(", seq {}", o.seq).c_str() : "",
      static_cast<double>(o.duration_ns) / 1e9, o.rounds);
  std::printf("machine: %s\n", machine_text().c_str());
  std::printf(
      "coproc: one private coprocd (batching %s, %d intra-op threads), %d client processes\n",
      batching_text.c_str(), o.daemon_threads, o.processes);
  std::printf("ORT %s: %d processes, each its own session on 1 thread\n\n", ort_version.c_str(),
              o.processes);
  std::printf("%-8s %12s %9s %10s %10s %10s %10s %7s\n", "side", "requests/s", "samples", "p50 us",
              "p90 us", "p99 us", "max us", "errors");
  for (const PhaseResult* r : {&ours, &theirs}) {
    std::printf("%-8s %12.1f %9llu %10s %10s %10s %10s %7llu\n", r->latency.transport.c_str(),
                r->throughput_rps, static_cast<unsigned long long>(r->latency.samples),
                fmt_us(r->latency.p50_ns).c_str(), fmt_us(r->latency.p90_ns).c_str(),
                fmt_us(r->latency.p99_ns).c_str(), fmt_us(r->latency.max_ns).c_str(),
                static_cast<unsigned long long>(r->errors));
  }
  std::printf("coproc mean batch size %.2f\n", ours.mean_batch_size);
  std::printf("throughput coproc/ORT = %.2fx; coproc p99 %s ORT's (%s vs %s us)\n",
              throughput_ratio, p99_lower ? "lower than" : "NOT lower than",
              fmt_us(ours.latency.p99_ns).c_str(), fmt_us(theirs.latency.p99_ns).c_str());
  std::printf("outputs (coproc's runtime in-process vs ORT) max |diff| %.3g (max |ORT| %.3g)%s\n",
              agreement.max_abs_diff, agreement.ort_max_abs,
              agreement.agree ? "" : "  OUTPUTS DISAGREE: these numbers compare different answers");
  return agreement.agree ? 0 : kExitOutputsDisagree;
}

}  // namespace coproc::bench
