#include "ort/ort_command.h"

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "common/private_daemon.h"
#include "ort/ort_bench.h"

namespace coproc::bench {

namespace {

struct OrtSettings {
  OrtBenchOptions options;
  std::string model;
  double round_s = 1.0;
  int64_t warmup_ms = 500, duration_ms = 2000;
};

int run(OrtSettings& s) {
  ModelChoice choice;
  std::string error;
  if (!resolve_model(s.model, &choice, &error)) {
    std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a dead ORT worker must show as an error, not kill us
  s.options.model_path = choice.path;
  s.options.warmup_ns = s.warmup_ms * 1'000'000;
  s.options.duration_ns = s.duration_ms * 1'000'000;
  s.options.round_ns = static_cast<int64_t>(s.round_s * 1e9);
  return s.options.processes > 0 ? run_ort_throughput(s.options) : run_ort_latency(s.options);
}

}  // namespace

Command add_ort_command(CLI::App& app) {
  auto s = std::make_shared<OrtSettings>();
  s->options.python = COPROC_BENCH_PYTHON;
  // Relative to this executable, the same in the build tree and in an installed prefix.
  s->options.worker_script = (std::filesystem::path(executable_dir()) / COPROC_BENCH_ORT_WORKER)
                                 .lexically_normal()
                                 .string();
  auto* ort = app.add_subcommand(
      "ort",
      "coproc vs ONNX Runtime on the same ONNX file, in one run. Latency mode: coproc's runtime "
      "in-process and ORT (tools/ort_worker.py) take turns per batch size, outputs compared first. "
      "--processes N: N client processes on one coprocd vs N processes each running ORT. Inputs: "
      "the first dynamic dim of each is the batch, the second --seq; floats uniform in [-1, 1]; "
      "int64/int32 all ones when the name contains \"mask\", else token ids uniform in [0, 1000); "
      "bool true; fixed seed. Exit 3 when the outputs disagree.");
  ort->add_option("--model", s->model, "ONNX file (or a bundled model's name)")->required();
  ort->add_option("--batches", s->options.batches, "latency mode: batch sizes")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  ort->add_option("--seq", s->options.seq, "the second dynamic dim (sequence length)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  ort->add_option("--threads", s->options.threads,
                  "latency mode: ORT intra_op = inter_op threads, coproc intra_op_threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  ort->add_option("--iterations", s->options.iterations,
                  "latency mode: calls per side per round, at most")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->capture_default_str();
  ort->add_option("--seconds", s->round_s,
                  "latency mode: seconds per side per round, at most (one call at least)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  ort->add_option("--rounds", s->options.rounds, "coproc and ORT take turns this many times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  ort->add_option("--processes", s->options.processes,
                  "throughput mode: client processes (0: latency mode)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  ort->add_option("--max-batch", s->options.max_batch, "throughput mode: the daemon's max_batch")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  ort->add_option("--daemon-threads", s->options.daemon_threads,
                  "throughput mode: the daemon's intra-op threads (each ORT process uses 1)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  ort->add_option("--warmup-ms", s->warmup_ms,
                  "warm-up per side and case (per phase with --processes)")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  ort->add_option("--duration-ms", s->duration_ms, "throughput mode: measured time per phase")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  ort->add_option("--python", s->options.python, "Python with onnxruntime and numpy")
      ->capture_default_str();
  ort->add_option("--ort-worker", s->options.worker_script, "tools/ort_worker.py, as installed")
      ->capture_default_str();
  ort->add_flag("--json", s->options.json, "print one JSON object");
  return {ort, [s] { return run(*s); }};
}

}  // namespace coproc::bench
