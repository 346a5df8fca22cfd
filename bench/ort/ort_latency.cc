// coproc-bench ort, latency mode: per batch size, coproc's runtime in this process against ONNX
// Runtime in its worker, on identical inputs, outputs compared before anything is timed.
//
// Per case: warm both up, then `rounds` times: a coproc round, an ORT round (each up to
// `iterations` calls or `round_ns`, at least one call). The two never run at once, and taking
// turns spreads drift (clock frequency, neighbours) over both alike. Each side times single calls
// in its own process: coproc Session::run here, ORT run_with_iobinding in the worker.
#include <fmt/format.h>

#include <cstdio>
#include <limits>
#include <optional>

#include "common/stats.h"
#include "coproc/kernels/cpu.h"
#include "coproc/kernels/parallel.h"
#include "ort/coproc_runner.h"
#include "ort/ort_bench.h"
#include "ort/ort_process.h"

namespace coproc::bench {

namespace {

// Calls of the Identity model that measure ORT's per-call overhead.
constexpr int64_t kOverheadCalls = 20'000;
constexpr int64_t kNoCallCap = std::numeric_limits<int64_t>::max() / 2;

struct CaseResult {
  int64_t batch = 0;
  std::optional<int64_t> seq;  // none when no input has a seq dim
  std::string inputs;          // "input_ids[32, 128], attention_mask[32, 128]"
  Percentiles coproc, ort;
  Agreement agreement;
};

double ratio(int64_t a, int64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}

std::string case_json(const CaseResult& c, int threads) {
  return fmt::format(
      R"({{"batch":{},"seq":{},"inputs":{},"threads":{},"coproc_samples":{},"coproc_p50_ns":{},"coproc_p90_ns":{},"coproc_p99_ns":{},"ort_samples":{},"ort_p50_ns":{},"ort_p90_ns":{},"ort_p99_ns":{},"ratio_p50":{:.4f},"ratio_p99":{:.4f},"max_abs_diff":{:.3g},"ort_max_abs":{:.3g},"outputs_agree":{}}})",
      c.batch, c.seq ? std::to_string(*c.seq) : "null", json_string(c.inputs), threads,
      c.coproc.samples, c.coproc.p50_ns, c.coproc.p90_ns, c.coproc.p99_ns, c.ort.samples,
      c.ort.p50_ns, c.ort.p90_ns, c.ort.p99_ns, ratio(c.coproc.p50_ns, c.ort.p50_ns),
      ratio(c.coproc.p99_ns, c.ort.p99_ns), c.agreement.max_abs_diff, c.agreement.ort_max_abs,
      c.agreement.agree);
}

void print_case(const CaseResult& c) {
  std::printf("batch %lld, %s: %s\n", static_cast<long long>(c.batch),
              c.seq ? fmt::format("seq {}", *c.seq).c_str() : "no seq dim", c.inputs.c_str());
  std::printf("  %-8s %8s %10s %10s %10s %10s\n", "runtime", "samples", "p50 us", "p90 us",
              "p99 us", "max us");
  for (const Percentiles* p : {&c.coproc, &c.ort}) {
    std::printf("  %-8s %8llu %10s %10s %10s %10s\n", p->transport.c_str(),
                static_cast<unsigned long long>(p->samples), fmt_us(p->p50_ns).c_str(),
                fmt_us(p->p90_ns).c_str(), fmt_us(p->p99_ns).c_str(), fmt_us(p->max_ns).c_str());
  }
  std::printf(
      "  coproc/ORT: p50 %.3f, p99 %.3f; outputs max |diff| %.3g (max |ORT| %.3g)%s\n",
      ratio(c.coproc.p50_ns, c.ort.p50_ns), ratio(c.coproc.p99_ns, c.ort.p99_ns),
      c.agreement.max_abs_diff, c.agreement.ort_max_abs,
      c.agreement.agree ? "" : "  OUTPUTS DISAGREE: these timings compare different answers");
}

}  // namespace

int run_ort_latency(const OrtBenchOptions& o) {
  // coproc's own kernels (packed GEMM, attention) split over `threads` like ORT's intra-op pool.
  // OpenBLAS, which runs only products whose B is not a weight, stays on one thread as coprocd
  // keeps it on small machines: its workers busy-wait after each call and would take the cores
  // from the intra-op pool.
  kernels::cpu::set_threads(1);
  kernels::cpu::set_intra_op_threads(o.threads);
  auto loaded = runtime::Model::load(o.model_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "coproc-bench: coproc cannot load %s: %s\n", o.model_path.c_str(),
                 loaded.error().message.c_str());
    return 1;
  }
  std::shared_ptr<const runtime::Model> model = loaded.value();
  TempDir dir;
  OrtProcess worker(o.python, o.worker_script);
  std::string ort_version;
  if (!dir.ok() || !worker.load(o.model_path, o.threads, &ort_version)) {
    std::fprintf(stderr, "coproc-bench: %s\n",
                 dir.ok() ? worker.error().c_str() : "mkdtemp failed");
    return 1;
  }
  auto overhead = worker.overhead(kOverheadCalls);
  if (!overhead) {
    std::fprintf(stderr, "coproc-bench: %s\n", worker.error().c_str());
    return 1;
  }
  const bool seq = model_has_seq(*model);
  std::vector<CaseResult> cases;
  for (int64_t batch : o.batches) {
    CaseResult c;
    c.batch = batch;
    if (seq) c.seq = o.seq;
    auto inputs = make_inputs(*model, {batch, o.seq});
    c.inputs = shapes_text(inputs);
    CoprocRunner ours(model, inputs);
    std::string error = ours.error();
    std::string prefix = fmt::format("b{}", batch);
    if (error.empty() && !ours.run()) error = ours.error();
    if (error.empty() && write_inputs(inputs, dir.path(), prefix, &error)) {
      send_inputs(worker, inputs, dir.path(), prefix, &error);
    }
    std::optional<std::vector<OrtOutput>> ort_outputs;
    if (error.empty() && !(ort_outputs = worker.write_outputs(dir.path()))) error = worker.error();
    std::optional<Agreement> agreement;
    if (error.empty() && !(agreement = ours.compare(*ort_outputs, dir.path()))) {
      error = ours.error();
    }
    if (!error.empty()) {
      std::fprintf(stderr, "coproc-bench: batch %lld (%s): %s\n", static_cast<long long>(batch),
                   c.inputs.c_str(), error.c_str());
      return 1;
    }
    c.agreement = *agreement;

    std::vector<int64_t> coproc_samples, ort_samples;
    bool failed =
        ours.time(kNoCallCap, o.warmup_ns).empty() || !worker.run(kNoCallCap, o.warmup_ns);
    for (int r = 0; r < o.rounds && !failed; ++r) {
      auto mine = ours.time(o.iterations, o.round_ns);
      auto theirs = worker.run(o.iterations, o.round_ns);
      failed = mine.empty() || !theirs;
      if (failed) break;
      coproc_samples.insert(coproc_samples.end(), mine.begin(), mine.end());
      ort_samples.insert(ort_samples.end(), theirs->begin(), theirs->end());
    }
    if (failed) {
      std::fprintf(stderr, "coproc-bench: batch %lld: %s\n", static_cast<long long>(batch),
                   (ours.error().empty() ? worker.error() : ours.error()).c_str());
      return 1;
    }
    c.coproc = summarize("coproc", std::move(coproc_samples));
    c.ort = summarize("ort", std::move(ort_samples));
    cases.push_back(std::move(c));
  }

  bool agree = true;
  for (const auto& c : cases) agree = agree && c.agreement.agree;
  if (o.json) {
    std::string body;
    for (const auto& c : cases) {
      if (!body.empty()) body += ',';
      body += case_json(c, o.threads);
    }
    fmt::print(
        R"({{"mode":"latency","model":{},"ort_version":{},"threads":{{"ort":{},"coproc":{},"coproc_openblas":1}},"rounds":{},"iterations_per_round":{},"seconds_per_round":{:.3f},"machine":{{{}}},"ort_call_overhead":{{"identity_p50_ns":{},"identity_p99_ns":{},"timer_p50_ns":{}}},"outputs_agree":{},"cases":[{}]}})"
        "\n",
        json_string(o.model_path), json_string(ort_version), o.threads, o.threads, o.rounds,
        o.iterations, static_cast<double>(o.round_ns) / 1e9, machine_json(),
        overhead->identity_p50_ns, overhead->identity_p99_ns, overhead->timer_p50_ns, agree, body);
    return agree ? 0 : kExitOutputsDisagree;
  }
  std::printf(
      "model %s: coproc runtime (in-process) vs ONNX Runtime %s (worker process, timed there)\n",
      o.model_path.c_str(), ort_version.c_str());
  std::printf("machine: %s\n", machine_text().c_str());
  std::printf("threads: ORT %d (intra_op = inter_op), coproc %d (intra_op_threads; OpenBLAS 1)\n",
              o.threads, o.threads);
  std::printf("%d rounds taking turns, each up to %lld calls or %.2f s per side\n", o.rounds,
              static_cast<long long>(o.iterations), static_cast<double>(o.round_ns) / 1e9);
  std::printf(
      "ORT per-call overhead (Identity model, same path): p50 %s us, p99 %s us (timer alone %s "
      "us)\n\n",
      fmt_us(overhead->identity_p50_ns).c_str(), fmt_us(overhead->identity_p99_ns).c_str(),
      fmt_us(overhead->timer_p50_ns).c_str());
  for (const auto& c : cases) print_case(c);
  return agree ? 0 : kExitOutputsDisagree;
}

}  // namespace coproc::bench
