// coproc-soak: a long run of mixed open-loop load with client processes SIGKILLed
// along the way, against a private daemon (or --socket), then its checks (soak.h).
// tests/soak/soak_test.py runs it for two minutes under `ctest -L soak`;
//   build/bin/coproc-soak --minutes 30
// is the long run by hand. Exit 0 when every check held, 1 when one failed or the
// run could not be made, 2 for a bad flag.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/command.h"
#include "common/private_daemon.h"
#include "soak.h"

namespace {

using coproc::bench::ModelChoice;
using coproc::bench::resolve_model;

// A private daemon serves the model and, beside it, the bundled identity
// model `noop`, which the soak mixes in; with --socket, the daemon's own.
int run_soak_command(const std::string& model_arg, const std::string& socket,
                     coproc::soak::SoakOptions options, int cpu_threads) {
  std::unique_ptr<coproc::bench::PrivateDaemon> daemon;
  options.side_model_name = "noop";
  if (socket.empty()) {
    ModelChoice model, side;
    std::string error;
    if (!resolve_model(model_arg, &model, &error)) {
      std::fprintf(stderr, "coproc-soak: %s\n", error.c_str());
      return 2;
    }
    std::vector<coproc::bench::ServedModel> served = {{model.name, model.path}};
    if (model.name != options.side_model_name &&
        resolve_model(options.side_model_name, &side, &error)) {
      served.push_back({side.name, side.path});
    }
    daemon = std::make_unique<coproc::bench::PrivateDaemon>(served, cpu_threads);
    if (!daemon->started()) {
      std::fprintf(stderr, "coproc-soak: %s\n", daemon->error().c_str());
      return 1;
    }
    options.socket_path = daemon->socket_path();
    options.model_name = model.name;
  } else {
    options.socket_path = socket;
    options.model_name = model_arg;
  }
  if (options.model_name == options.side_model_name) options.side_model_name.clear();
  return coproc::soak::run_soak(options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "coproc-soak: mixed open-loop load for a long time, client processes SIGKILLed and "
      "replaced along the way; checks that every request of a surviving client ends exactly "
      "once, the daemon's books balance, its own resident memory (VmRSS - RssShmem) stays flat "
      "within 1% after warm-up, and its client segment pages, descriptors and mappings return "
      "to their baseline. Exit 1 when a check fails."};
  coproc::soak::SoakOptions options;
  std::string model = "mlp", socket;
  double minutes_arg = 0, seconds = 120, warmup_s = -1;
  int64_t kill_every_ms = 2000;
  int cpu_threads = 1;
  app.add_option("--model", model,
                 "bundled model or ONNX path (private daemon, with noop beside it), or a model "
                 "name with --socket")
      ->capture_default_str();
  app.add_option("--socket", socket,
                 "soak a running daemon (it should serve no one else: its books are checked)");
  auto* minutes = app.add_option("--minutes", minutes_arg, "duration in minutes")
                      ->check(CLI::Range(0.0, 10080.0));
  app.add_option("--seconds", seconds, "duration in seconds")
      ->check(CLI::Range(1.0, 604800.0))
      ->excludes(minutes)
      ->capture_default_str();
  app.add_option("--clients", options.clients,
                 "client processes; the second half are the ones killed")
      ->check(CLI::Range(1, 60))
      ->capture_default_str();
  app.add_option("--load", options.load, "offered load, a fraction of the measured capacity")
      ->check(CLI::Range(0.01, 2.0))
      ->capture_default_str();
  app.add_option("--kill-every-ms", kill_every_ms,
                 "mean time between SIGKILLs (each gap uniform in 0.5 to 1.5 times it); 0: none")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--warmup-s", warmup_s,
                 "seconds before memory and latency count (default: 20% of the run, at least 10)")
      ->check(CLI::Range(0.0, 604800.0));
  app.add_option("--seed", options.seed, "random seed")->capture_default_str();
  app.add_option("--cpu-threads", cpu_threads, "OpenBLAS threads of the private daemon")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_flag("--json", options.json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (kill_every_ms > 0 && kill_every_ms < 100) {
    std::fprintf(stderr, "coproc-soak: --kill-every-ms must be 0 or at least 100\n");
    return 2;
  }
  const double run_s = *minutes ? minutes_arg * 60 : seconds;
  options.duration_ns = static_cast<int64_t>(run_s * 1e9);
  options.kill_every_ns = kill_every_ms * 1'000'000;
  options.warmup_ns = warmup_s < 0 ? -1 : static_cast<int64_t>(warmup_s * 1e9);
  return run_soak_command(model, socket, options, cpu_threads);
}
