// coproc-bench ort --processes N, throughput mode: what N processes on this host get from one
// coprocd against what they get running ONNX Runtime themselves.
//
//   coproc phase: a private coprocd (batching dynamic, max_batch, a length bucket at seq for a
//                 variable-length model) and N client processes in closed loop, one request of
//                 batch 1 outstanding each: coproc-bench load's machinery (load.cc).
//   ORT phase:    N tools/ort_worker.py processes, each with its own session on one thread
//                 (intra_op = inter_op = 1, ORT's advice for many processes), in closed loop,
//                 started together once every session is loaded.
// The phases run back to back, never at once, for the same warm-up and duration, on the same
// inputs (inputs.h at batch 1, seq). Each side's latency is what its caller waits per request:
// submit to completion for coproc (queueing and batching included), one session run for ORT.
// The first worker's outputs are checked against coproc's runtime run in this process on the same
// inputs (the daemon runs that runtime), so both phases are known to compute the same answer.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "coproc.h"
#include "coproc/kernels/cpu.h"
#include "coproc_runner.h"
#include "load.h"
#include "ort_bench.h"
#include "ort_process.h"
#include "private_daemon.h"
#include "stats.h"

namespace coproc::bench {

namespace {

// Time for every ORT worker to receive its start line before the common start.
constexpr int64_t kStartAllowanceNs = 200'000'000;

struct PhaseResult {
  Percentiles latency;
  double throughput_rps = 0;
  uint64_t errors = 0;
  double mean_batch_size = 0;  // coproc only
};

double per_second(std::size_t samples, int64_t duration_ns) {
  return static_cast<double>(samples) / (static_cast<double>(duration_ns) / 1e9);
}

bool coproc_phase(const OrtBenchOptions& o, const std::string& batching, PhaseResult* out,
                  std::string* error) {
  const std::string name = "bench";  // any file name serves, whatever characters it holds
  PrivateDaemon daemon(name, o.model_path, 1, batching);
  if (!daemon.ok()) {
    *error = daemon.error();
    return false;
  }
  LoadOptions load;
  load.socket_path = daemon.socket_path();
  load.model_name = name;
  load.clients = o.processes;
  load.in_flight = 1;
  load.warmup_ns = o.warmup_ns;
  load.duration_ns = o.duration_ns;
  load.shape = {1, o.seq};
  LoadResult r = run_load(load);
  if (!r.error.empty()) {
    *error = r.error;
    return false;
  }
  std::vector<int64_t> latencies;
  double batch_sum = 0;
  for (const auto& s : r.samples) {
    latencies.push_back(s.latency_ns);
    batch_sum += s.batch_size;
  }
  out->throughput_rps = per_second(r.samples.size(), r.measured_ns);
  out->errors = r.errors;
  out->mean_batch_size = r.samples.empty() ? 0 : batch_sum / static_cast<double>(r.samples.size());
  out->latency = summarize("coproc", std::move(latencies));
  return true;
}

// Also compares the first worker's outputs with `reference`'s into *agreement.
bool ort_phase(const OrtBenchOptions& o, const std::vector<InputTensor>& inputs,
               CoprocRunner& reference, PhaseResult* out, Agreement* agreement,
               std::string* version, std::string* error) {
  TempDir dir;
  if (!dir.ok()) {
    *error = "mkdtemp failed";
    return false;
  }
  std::vector<std::unique_ptr<OrtProcess>> workers;
  for (int i = 0; i < o.processes; ++i) {
    workers.push_back(std::make_unique<OrtProcess>(o.python, o.worker_script));
    if (!workers.back()->load(o.model_path, 1, version)) {
      *error = workers.back()->error();
      return false;
    }
  }
  if (!write_inputs(inputs, dir.path(), "b1", error)) return false;
  for (int i = 0; i < o.processes; ++i) {
    OrtProcess& w = *workers[static_cast<std::size_t>(i)];
    std::string sub = fmt::format("{}/w{}", dir.path(), i);  // each worker's outputs
    std::filesystem::create_directory(sub);
    if (!send_inputs(w, inputs, dir.path(), "b1", error)) return false;
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
  const int64_t start_ns = static_cast<int64_t>(coproc_now_ns()) + kStartAllowanceNs;
  for (auto& w : workers) {
    if (!w->send_loop(start_ns, o.warmup_ns, o.duration_ns)) {
      *error = w->error();
      return false;
    }
  }
  std::vector<int64_t> latencies;
  for (auto& w : workers) {
    auto samples = w->receive_loop();
    if (!samples) {
      *error = w->error();
      return false;
    }
    latencies.insert(latencies.end(), samples->begin(), samples->end());
  }
  out->throughput_rps = per_second(latencies.size(), o.duration_ns);
  out->latency = summarize("ort", std::move(latencies));
  return true;
}

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

  PhaseResult ours, theirs;
  Agreement agreement;
  std::string error, ort_version;
  if (!coproc_phase(o, batching, &ours, &error) ||
      !ort_phase(o, inputs, reference, &theirs, &agreement, &ort_version, &error)) {
    std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
    return 1;
  }
  const double throughput_ratio =
      theirs.throughput_rps > 0 ? ours.throughput_rps / theirs.throughput_rps : 0;
  const bool p99_lower = ours.latency.p99_ns < theirs.latency.p99_ns;
  std::string batching_text = fmt::format("dynamic, max_batch {}{}", o.max_batch,
                                          seq ? fmt::format(", length_buckets [{}]", o.seq) : "");
  if (o.json) {
    fmt::print(
        R"({{"mode":"throughput","model":{},"ort_version":{},"processes":{},"batch":1,"seq":{},"inputs":{},"warmup_ms":{},"duration_ms":{},"machine":{{{}}},"coproc_batching":{},"coproc":{},"coproc_mean_batch_size":{:.3f},"ort_threads_per_process":1,"ort":{},"throughput_ratio":{:.4f},"coproc_p99_lower":{},"max_abs_diff":{:.3g},"ort_max_abs":{:.3g},"outputs_agree":{}}})"
        "\n",
        json_string(o.model_path), json_string(ort_version), o.processes,
        seq ? std::to_string(o.seq) : "null", json_string(shapes_text(inputs)),
        o.warmup_ns / 1'000'000, o.duration_ns / 1'000'000, machine_json(),
        json_string(batching_text), phase_json(ours), ours.mean_batch_size, phase_json(theirs),
        throughput_ratio, p99_lower, agreement.max_abs_diff, agreement.ort_max_abs,
        agreement.agree);
    return agreement.agree ? 0 : kExitOutputsDisagree;
  }
  std::printf("model %s: %d processes, batch 1%s per request, closed loop, %.1f s per phase\n",
              o.model_path.c_str(), o.processes, seq ? fmt::format(", seq {}", o.seq).c_str() : "",
              static_cast<double>(o.duration_ns) / 1e9);
  std::printf("machine: %s\n", machine_text().c_str());
  std::printf("coproc: one private coprocd (batching %s), %d client processes\n",
              batching_text.c_str(), o.processes);
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
