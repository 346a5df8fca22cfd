#include "transport/transport_commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/private_daemon.h"
#include "common/report.h"
#include "transport/transports.h"

namespace coproc::bench {

namespace {

// The flags of compare and latency.
struct TransportSettings {
  std::string model = "noop";
  std::string socket;
  bool json = false;
  int cpu_threads = 1;
  int64_t warmup_ms = 500, duration_ms = 2000;
  std::size_t max_samples = 200'000;
  int rounds = 10;

  Budget budget() const {
    return Budget{warmup_ms * 1'000'000, duration_ms * 1'000'000, max_samples, rounds};
  }
};

const Percentiles* find(const std::vector<Percentiles>& rows, const std::string& name) {
  for (const auto& r : rows) {
    if (r.transport == name) return &r;
  }
  return nullptr;
}

int run_compare(const std::string& model_arg, bool json, const Budget& budget, int cpu_threads) {
  ModelChoice model;
  std::string error;
  if (!resolve_model(model_arg, &model, &error)) {
    std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
    return 2;
  }
  PrivateDaemon daemon(model.name, model.path, cpu_threads);
  if (!daemon.started()) {
    std::fprintf(stderr, "coproc-bench: %s\n", daemon.error().c_str());
    return 1;
  }
  std::size_t request_bytes = 0;
  std::vector<std::unique_ptr<Transport>> owned;
  owned.push_back(make_shm_floor());
  owned.push_back(make_coproc(daemon.socket_path(), model.name, &request_bytes));
  owned.push_back(make_unix_socket(request_bytes));
  owned.push_back(make_in_process(model.path, cpu_threads));
  std::vector<Transport*> transports;
  for (auto& t : owned) {
    if (!t->ok()) {
      std::fprintf(stderr, "coproc-bench: %s: %s\n", t->name(), t->error().c_str());
      return 1;
    }
    transports.push_back(t.get());
  }
  auto samples = measure_interleaved(transports, budget);
  std::vector<Percentiles> rows;
  for (std::size_t i = 0; i < transports.size(); ++i) {
    if (samples[i].empty()) {
      std::fprintf(stderr, "coproc-bench: %s failed: %s\n", transports[i]->name(),
                   transports[i]->error().c_str());
      return 1;
    }
    rows.push_back(summarize(transports[i]->name(), std::move(samples[i])));
  }
  Percentiles exec = summarize("coproc_exec", transports[1]->daemon_exec_ns());
  const auto& floor = *find(rows, "shm_floor");
  const auto& ours = *find(rows, "coproc");
  const auto& sock = *find(rows, "unix_socket");
  const auto& local = *find(rows, "in_process");
  double vs_socket = static_cast<double>(ours.p50_ns) / static_cast<double>(sock.p50_ns);
  double vs_floor = static_cast<double>(ours.p50_ns) / static_cast<double>(floor.p50_ns);
  int64_t over_local = ours.p50_ns - local.p50_ns;
  if (json) {
    std::string results;
    for (const auto& r : rows) results += (results.empty() ? "" : ",") + json_row(r);
    fmt::print(
        R"({{"model":"{}","request_bytes":{},"results":[{}],"daemon_exec_p50_ns":{},"ratios":{{"coproc_over_unix_socket_p50":{:.4f},"coproc_over_shm_floor_p50":{:.3f},"coproc_minus_in_process_p50_ns":{}}}}})"
        "\n",
        model.name, request_bytes, results, exec.p50_ns, vs_socket, vs_floor, over_local);
    return 0;
  }
  std::printf("model %s (%s), round trips, one run; socket request %zu bytes\n", model.name.c_str(),
              model.path.c_str(), request_bytes);
  print_table(rows);
  std::printf("coproc p50 / unix_socket p50 = %.4f (1/%.0f)\n", vs_socket, 1.0 / vs_socket);
  std::printf("coproc p50 / shm_floor p50   = %.2fx\n", vs_floor);
  std::printf("coproc p50 - in_process p50  = %s us\n", us(over_local).c_str());
  std::printf("daemon-reported execution p50 = %s us (coproc p50 - that = %s us of transport)\n",
              us(exec.p50_ns).c_str(), us(ours.p50_ns - exec.p50_ns).c_str());
  return 0;
}

int run_latency(const std::string& socket, const std::string& model, bool json,
                const Budget& budget) {
  auto transport = make_coproc(socket, model, nullptr);
  if (!transport->ok()) {
    std::fprintf(stderr, "coproc-bench: %s\n", transport->error().c_str());
    return 1;
  }
  Transport* one = transport.get();
  auto samples = measure_interleaved({&one, 1}, budget);
  if (samples[0].empty()) {
    std::fprintf(stderr, "coproc-bench: %s\n", transport->error().c_str());
    return 1;
  }
  auto p = summarize("coproc", std::move(samples[0]));
  if (json) {
    fmt::print("{{\"model\":\"{}\",\"results\":[{}]}}\n", model, json_row(p));
  } else {
    print_table({p});
  }
  return 0;
}

// What compare and latency share: the output format and the measurement budget.
void add_budget_options(CLI::App* sub, TransportSettings& s) {
  sub->add_flag("--json", s.json, "print one JSON object");
  sub->add_option("--warmup-ms", s.warmup_ms, "warm-up per transport")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  sub->add_option("--duration-ms", s.duration_ms, "measurement per transport")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  sub->add_option("--max-samples", s.max_samples, "sample cap per transport")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  sub->add_option("--rounds", s.rounds, "transports take turns this many times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
}

}  // namespace

Command add_compare_command(CLI::App& app) {
  auto s = std::make_shared<TransportSettings>();
  auto* compare =
      app.add_subcommand("compare", "shm floor, coproc, unix socket and in-process, one run");
  compare->add_option("--model", s->model, "bundled model (noop, mlp) or ONNX path")
      ->capture_default_str();
  compare->add_option("--cpu-threads", s->cpu_threads, "OpenBLAS threads (daemon and in-process)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  add_budget_options(compare, *s);
  return {compare, [s] { return run_compare(s->model, s->json, s->budget(), s->cpu_threads); }};
}

Command add_latency_command(CLI::App& app) {
  auto s = std::make_shared<TransportSettings>();
  auto* latency = app.add_subcommand("latency", "ping-pong against a running daemon");
  latency->add_option("--socket", s->socket,
                      "daemon socket (default: $COPROC_SOCKET or the default path)");
  latency->add_option("--model", s->model, "model name served by the daemon")
      ->capture_default_str();
  add_budget_options(latency, *s);
  return {latency, [s] { return run_latency(s->socket, s->model, s->json, s->budget()); }};
}

}  // namespace coproc::bench
