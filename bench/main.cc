// coproc-bench: latency of coproc against the baselines that matter, each
// measured in the same run (ratios, not lone absolute numbers).
//   coproc-bench latency --socket PATH --model NAME    ping-pong against a running daemon
//   coproc-bench compare --model noop|mlp|PATH [--json] every transport, private daemon
//   coproc-bench load --model mlp --clients 8 [--in-flight K | --rate RPS] [--mix ...] [--json]
//   coproc-bench ort --model FILE [--batches 1,32 --seq 128 --threads 1] [--json]
//                                       coproc's runtime vs ONNX Runtime, latency per batch size
//   coproc-bench ort --model FILE --processes 16 [--json]
//                                       N processes: one coprocd vs ONNX Runtime in each
//   coproc-bench soak [--model mlp] [--minutes M | --seconds S] [--clients N] [--load 0.7]
//                     [--kill-every-ms K] [--warmup-s W] [--json]
//                                       mixed open-loop load with clients killed; checks
//                                       nothing is lost and the daemon does not grow
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <signal.h>

#include <cstdio>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devices/devices.h"
#include "load/load.h"
#include "ort/ort_bench.h"
#include "common/private_daemon.h"
#include "soak/soak.h"
#include "common/stats.h"
#include "transport/transports.h"

namespace {

using coproc::bench::Budget;
using coproc::bench::Percentiles;

struct ModelChoice {
  std::string name;
  std::string path;
};

// A bundled model's name (build/models/NAME.onnx next to build/bin) or a path.
bool resolve_model(const std::string& arg, ModelChoice* out, std::string* error) {
  namespace fs = std::filesystem;
  fs::path bundled = fs::path(coproc::bench::executable_dir()) / ".." / "models" / (arg + ".onnx");
  if (arg.find('/') == std::string::npos && fs::exists(bundled)) {
    *out = {arg, fs::canonical(bundled).string()};
    return true;
  }
  if (fs::exists(arg)) {
    *out = {fs::path(arg).stem().string(), fs::canonical(arg).string()};
    return true;
  }
  *error = "no bundled model '" + arg + "' and no such file (bundled: noop, mlp)";
  return false;
}

std::string us(int64_t ns) { return fmt::format("{:.2f}", static_cast<double>(ns) / 1000.0); }

void print_table(const std::vector<Percentiles>& rows) {
  std::printf("%-15s %9s %10s %10s %10s %10s %10s\n", "transport", "samples", "p50 us", "p90 us",
              "p99 us", "p99.9 us", "max us");
  for (const auto& r : rows) {
    std::printf("%-15s %9llu %10s %10s %10s %10s %10s\n", r.transport.c_str(),
                static_cast<unsigned long long>(r.samples), us(r.p50_ns).c_str(),
                us(r.p90_ns).c_str(), us(r.p99_ns).c_str(), us(r.p999_ns).c_str(),
                us(r.max_ns).c_str());
  }
}

// One percentile row; `key` names what the row is about (transport, priority).
std::string json_row(const Percentiles& r, const char* key = "transport") {
  return fmt::format(
      R"({{"{}":"{}","samples":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{}}})",
      key, r.transport, r.samples, r.p50_ns, r.p90_ns, r.p99_ns, r.p999_ns, r.max_ns);
}

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
  coproc::bench::PrivateDaemon daemon(model.name, model.path, cpu_threads);
  if (!daemon.ok()) {
    std::fprintf(stderr, "coproc-bench: %s\n", daemon.error().c_str());
    return 1;
  }
  std::size_t request_bytes = 0;
  std::vector<std::unique_ptr<coproc::bench::Transport>> owned;
  owned.push_back(coproc::bench::make_shm_floor());
  owned.push_back(coproc::bench::make_coproc(daemon.socket_path(), model.name, &request_bytes));
  owned.push_back(coproc::bench::make_unix_socket(request_bytes));
  owned.push_back(coproc::bench::make_in_process(model.path, cpu_threads));
  std::vector<coproc::bench::Transport*> transports;
  for (auto& t : owned) {
    if (!t->ok()) {
      std::fprintf(stderr, "coproc-bench: %s: %s\n", t->name(), t->error().c_str());
      return 1;
    }
    transports.push_back(t.get());
  }
  auto samples = coproc::bench::measure_interleaved(transports, budget);
  std::vector<Percentiles> rows;
  for (std::size_t i = 0; i < transports.size(); ++i) {
    if (samples[i].empty()) {
      std::fprintf(stderr, "coproc-bench: %s failed: %s\n", transports[i]->name(),
                   transports[i]->error().c_str());
      return 1;
    }
    rows.push_back(coproc::bench::summarize(transports[i]->name(), std::move(samples[i])));
  }
  Percentiles exec = coproc::bench::summarize("coproc_exec", transports[1]->daemon_exec_ns());
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

int run_latency(const std::string& socket, const std::string& model, bool json, const Budget& budget) {
  auto transport = coproc::bench::make_coproc(socket, model, nullptr);
  if (!transport->ok()) {
    std::fprintf(stderr, "coproc-bench: %s\n", transport->error().c_str());
    return 1;
  }
  coproc::bench::Transport* one = transport.get();
  auto samples = coproc::bench::measure_interleaved({&one, 1}, budget);
  if (samples[0].empty()) {
    std::fprintf(stderr, "coproc-bench: %s\n", transport->error().c_str());
    return 1;
  }
  auto p = coproc::bench::summarize("coproc", std::move(samples[0]));
  if (json) {
    fmt::print("{{\"model\":\"{}\",\"results\":[{}]}}\n", model, json_row(p));
  } else {
    print_table({p});
  }
  return 0;
}

// "critical=0.1,normal=0.9" -> weights per priority.
bool parse_mix(const std::string& text, std::array<double, 4>* mix, std::string* error) {
  static constexpr const char* kNames[4] = {"critical", "high", "normal", "low"};
  *mix = {0, 0, 0, 0};
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::size_t eq = item.find('=');
    int which = -1;
    for (int p = 0; p < 4; ++p) {
      if (eq != std::string::npos && item.substr(0, eq) == kNames[p]) which = p;
    }
    char* end = nullptr;
    double weight = which >= 0 ? std::strtod(item.c_str() + eq + 1, &end) : -1;
    if (which < 0 || weight < 0 || (end && *end != '\0')) {
      *error = "--mix item '" + item + "' must be PRIORITY=WEIGHT (critical, high, normal, low)";
      return false;
    }
    (*mix)[static_cast<std::size_t>(which)] = weight;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if ((*mix)[0] + (*mix)[1] + (*mix)[2] + (*mix)[3] <= 0) {
    *error = "--mix needs a positive weight";
    return false;
  }
  return true;
}

std::string load_run_json(const coproc::bench::LoadResult& r, const char* batching) {
  std::vector<int64_t> all;
  std::array<std::vector<int64_t>, 4> by_priority;
  std::map<uint32_t, uint64_t> batch_sizes;
  double batch_sum = 0;
  for (const auto& s : r.samples) {
    all.push_back(s.latency_ns);
    by_priority[s.priority].push_back(s.latency_ns);
    ++batch_sizes[s.batch_size];
    batch_sum += s.batch_size;
  }
  auto p = coproc::bench::summarize("all", all);
  double throughput = static_cast<double>(r.samples.size()) / (static_cast<double>(r.measured_ns) / 1e9);
  std::string prio, hist;
  static constexpr const char* kNames[4] = {"critical", "high", "normal", "low"};
  for (int i = 0; i < 4; ++i) {
    if (by_priority[i].empty()) continue;
    auto q = coproc::bench::summarize(kNames[i], by_priority[i]);
    prio += fmt::format("{}{}", prio.empty() ? "" : ",", json_row(q, "priority"));
  }
  for (auto [size, count] : batch_sizes) hist += fmt::format("{}\"{}\":{}", hist.empty() ? "" : ",", size, count);
  std::vector<int64_t> heavy;
  for (const auto& s : r.heavy_samples) heavy.push_back(s.latency_ns);
  const std::string heavy_json = heavy.empty() ? "null" : json_row(coproc::bench::summarize("heavy", heavy), "client");
  return fmt::format(
      R"({{"batching":"{}","throughput_rps":{:.1f},"samples":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{},"mean_batch_size":{:.3f},"errors":{},"backlogged":{},"per_priority":[{}],"batch_sizes":{{{}}},"heavy":{}}})",
      batching, throughput, p.samples, p.p50_ns, p.p90_ns, p.p99_ns, p.p999_ns, p.max_ns,
      all.empty() ? 0.0 : batch_sum / static_cast<double>(all.size()), r.errors, r.backlogged, prio, hist,
      heavy_json);
}

void print_load(const coproc::bench::LoadResult& r) {
  std::array<std::vector<int64_t>, 4> by_priority, queue_by_priority;
  std::vector<int64_t> queue, exec;
  std::map<uint32_t, uint64_t> batch_sizes;
  for (const auto& s : r.samples) {
    by_priority[s.priority].push_back(s.latency_ns);
    queue_by_priority[s.priority].push_back(static_cast<int64_t>(s.queue_ns));
    queue.push_back(static_cast<int64_t>(s.queue_ns));
    exec.push_back(static_cast<int64_t>(s.exec_ns));
    ++batch_sizes[s.batch_size];
  }
  std::printf("throughput %.1f requests/s, %zu completed, %llu errors, %llu arrivals backlogged\n",
              static_cast<double>(r.samples.size()) / (static_cast<double>(r.measured_ns) / 1e9),
              r.samples.size(), static_cast<unsigned long long>(r.errors),
              static_cast<unsigned long long>(r.backlogged));
  std::vector<Percentiles> rows;
  static constexpr const char* kNames[4] = {"critical", "high", "normal", "low"};
  for (int i = 0; i < 4; ++i) {
    if (!by_priority[i].empty()) rows.push_back(coproc::bench::summarize(kNames[i], by_priority[i]));
  }
  for (int i = 0; i < 4; ++i) {
    if (!queue_by_priority[i].empty() && queue_by_priority[i].size() != queue.size()) {
      rows.push_back(coproc::bench::summarize(std::string(kNames[i]) + " queue", queue_by_priority[i]));
    }
  }
  rows.push_back(coproc::bench::summarize("queue time", queue));
  rows.push_back(coproc::bench::summarize("exec time", exec));
  print_table(rows);
  std::printf("batch sizes:");
  for (auto [size, count] : batch_sizes) std::printf(" %u:%llu", size, static_cast<unsigned long long>(count));
  std::printf("\n");
  if (!r.heavy_samples.empty()) {
    std::vector<int64_t> heavy;
    for (const auto& s : r.heavy_samples) heavy.push_back(s.latency_ns);
    const auto q = coproc::bench::summarize("heavy", heavy);
    std::printf("heavy neighbour: %zu requests completed in the measured phase, latency p50 %.1f ms, max %.1f ms\n",
                heavy.size(), static_cast<double>(q.p50_ns) / 1e6, static_cast<double>(q.max_ns) / 1e6);
  }
}

int run_load_command(const std::string& model_arg, const std::string& socket,
                     coproc::bench::LoadOptions options, bool json, int cpu_threads,
                     bool compare_batching) {
  struct Run {
    const char* label;
    std::string batching;  // [[model]] keys of the private daemon
  };
  std::vector<Run> runs;
  if (compare_batching) {
    runs = {{"off", "max_batch = 1"}, {"on", "mode = \"dynamic\"\nmax_batch = 32"}};
  } else {
    runs = {{"default", ""}};
  }
  std::vector<std::pair<std::string, coproc::bench::LoadResult>> results;
  for (const Run& run : runs) {
    std::unique_ptr<coproc::bench::PrivateDaemon> daemon;
    if (socket.empty()) {
      ModelChoice model;
      std::string error;
      if (!resolve_model(model_arg, &model, &error)) {
        std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
        return 2;
      }
      daemon = std::make_unique<coproc::bench::PrivateDaemon>(model.name, model.path, cpu_threads,
                                                              run.batching);
      if (!daemon->ok()) {
        std::fprintf(stderr, "coproc-bench: %s\n", daemon->error().c_str());
        return 1;
      }
      options.socket_path = daemon->socket_path();
      options.model_name = model.name;
    } else {
      if (compare_batching) {
        std::fprintf(stderr, "coproc-bench: --compare-batching starts its own daemons; drop --socket\n");
        return 2;
      }
      options.socket_path = socket;
      options.model_name = model_arg;
    }
    auto result = coproc::bench::run_load(options);
    if (!result.error.empty()) {
      std::fprintf(stderr, "coproc-bench: %s\n", result.error.c_str());
      return 1;
    }
    results.emplace_back(run.label, std::move(result));
  }
  const char* loop = options.rate_rps > 0 ? "open" : "closed";
  if (json) {
    std::string body;
    for (const auto& [label, r] : results) body += (body.empty() ? "" : ",") + load_run_json(r, label.c_str());
    fmt::print(R"({{"model":"{}","clients":{},"loop":"{}","runs":[{}]}})"
               "\n",
               options.model_name, options.clients, loop, body);
    return 0;
  }
  for (const auto& [label, r] : results) {
    std::printf("model %s, %d clients, %s loop, batching %s\n", options.model_name.c_str(),
                options.clients, loop, label.c_str());
    print_load(r);
    std::printf("\n");
  }
  if (results.size() == 2) {
    auto rps = [](const coproc::bench::LoadResult& r) {
      return static_cast<double>(r.samples.size()) / (static_cast<double>(r.measured_ns) / 1e9);
    };
    std::printf("throughput with batching / without = %.2fx\n", rps(results[1].second) / rps(results[0].second));
  }
  return 0;
}

// A private daemon serves the model and, beside it, the bundled identity
// model `noop`, which the soak mixes in; with --socket, the daemon's own.
int run_soak_command(const std::string& model_arg, const std::string& socket,
                     coproc::bench::SoakOptions options, int cpu_threads) {
  std::unique_ptr<coproc::bench::PrivateDaemon> daemon;
  options.side_model_name = "noop";
  if (socket.empty()) {
    ModelChoice model, side;
    std::string error;
    if (!resolve_model(model_arg, &model, &error)) {
      std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
      return 2;
    }
    std::vector<coproc::bench::ServedModel> served = {{model.name, model.path}};
    if (model.name != options.side_model_name &&
        resolve_model(options.side_model_name, &side, &error)) {
      served.push_back({side.name, side.path});
    }
    daemon = std::make_unique<coproc::bench::PrivateDaemon>(served, cpu_threads);
    if (!daemon->ok()) {
      std::fprintf(stderr, "coproc-bench: %s\n", daemon->error().c_str());
      return 1;
    }
    options.socket_path = daemon->socket_path();
    options.model_name = model.name;
  } else {
    options.socket_path = socket;
    options.model_name = model_arg;
  }
  if (options.model_name == options.side_model_name) options.side_model_name.clear();
  return coproc::bench::run_soak(options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coproc-bench: coproc latency against its baselines"};
  app.require_subcommand(1);
  int64_t warmup_ms = 500, duration_ms = 2000;
  std::size_t max_samples = 200'000;
  bool json = false;
  int cpu_threads = 1;
  int rounds = 10;
  std::string model = "noop", socket;

  auto* compare = app.add_subcommand("compare", "shm floor, coproc, unix socket and in-process, one run");
  compare->add_option("--model", model, "bundled model (noop, mlp) or ONNX path")->capture_default_str();
  compare->add_option("--cpu-threads", cpu_threads, "OpenBLAS threads (daemon and in-process)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  auto* latency = app.add_subcommand("latency", "ping-pong against a running daemon");
  latency->add_option("--socket", socket, "daemon socket (default: $COPROC_SOCKET or the default path)");
  latency->add_option("--model", model, "model name served by the daemon")->capture_default_str();
  coproc::bench::LoadOptions load_options;
  std::string mix = "normal=1";
  auto* load = app.add_subcommand("load", "many client processes: closed loop or open loop (Poisson)");
  load->add_option("--model", model, "bundled model or ONNX path (private daemon), or a model name with --socket")
      ->capture_default_str();
  load->add_option("--socket", socket, "use a running daemon instead of a private one");
  load->add_option("--clients", load_options.clients, "client processes")->check(CLI::Range(1, 256))->capture_default_str();
  load->add_option("--in-flight", load_options.in_flight, "closed loop: outstanding requests per client")
      ->check(CLI::Range(1, 64))->capture_default_str();
  load->add_option("--rate", load_options.rate_rps, "open loop: total Poisson arrival rate, requests/s (0: closed loop)")
      ->check(CLI::Range(0.0, 1e7))->capture_default_str();
  load->add_option("--mix", mix, "priority weights, e.g. critical=0.1,low=0.9")->capture_default_str();
  load->add_option("--cpu-threads", cpu_threads, "OpenBLAS threads of the private daemon")
      ->check(CLI::Range(1, 256))->capture_default_str();
  load->add_flag("--json", json, "print one JSON object");
  bool compare_batching = false;
  load->add_flag("--compare-batching", compare_batching,
                 "run the same load twice, batching off (max_batch 1) and on (dynamic, max_batch 32)");
  load->add_option("--warmup-ms", warmup_ms, "warm-up")->check(CLI::Range(0, 60000))->capture_default_str();
  load->add_option("--duration-ms", duration_ms, "measurement")->check(CLI::Range(1, 600000))->capture_default_str();
  load->add_option("--heavy-rows", load_options.heavy_rows,
                   "add one client that keeps one request of this many rows in flight (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 31))->capture_default_str();
  std::string heavy_priority = "low";
  load->add_option("--heavy-priority", heavy_priority, "priority of the heavy neighbour's requests")
      ->check(CLI::IsMember({"critical", "high", "normal", "low"}))->capture_default_str();
  for (auto* sub : {compare, latency}) {
    sub->add_flag("--json", json, "print one JSON object");
    sub->add_option("--warmup-ms", warmup_ms, "warm-up per transport")->check(CLI::Range(0, 60000))->capture_default_str();
    sub->add_option("--duration-ms", duration_ms, "measurement per transport")->check(CLI::Range(1, 600000))->capture_default_str();
    sub->add_option("--max-samples", max_samples, "sample cap per transport")->check(CLI::Range(1, 100'000'000))->capture_default_str();
    sub->add_option("--rounds", rounds, "transports take turns this many times")->check(CLI::Range(1, 1000))->capture_default_str();
  }
  coproc::bench::OrtBenchOptions ort_options;
  ort_options.python = COPROC_BENCH_PYTHON;
  // Relative to this executable, the same in the build tree and in an installed prefix.
  ort_options.worker_script =
      (std::filesystem::path(coproc::bench::executable_dir()) / COPROC_BENCH_ORT_WORKER)
          .lexically_normal()
          .string();
  std::string ort_model;
  double round_s = 1.0;
  auto* ort = app.add_subcommand(
      "ort",
      "coproc vs ONNX Runtime on the same ONNX file, in one run. Latency mode: coproc's runtime "
      "in-process and ORT (tools/ort_worker.py) take turns per batch size, outputs compared first. "
      "--processes N: N client processes on one coprocd vs N processes each running ORT. Inputs: "
      "the first dynamic dim of each is the batch, the second --seq; floats uniform in [-1, 1]; "
      "int64/int32 all ones when the name contains \"mask\", else token ids uniform in [0, 1000); "
      "bool true; fixed seed. Exit 3 when the outputs disagree.");
  ort->add_option("--model", ort_model, "ONNX file (or a bundled model's name)")->required();
  ort->add_option("--batches", ort_options.batches, "latency mode: batch sizes")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  ort->add_option("--seq", ort_options.seq, "the second dynamic dim (sequence length)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  ort->add_option("--threads", ort_options.threads,
                  "latency mode: ORT intra_op = inter_op threads, coproc intra_op_threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  ort->add_option("--iterations", ort_options.iterations,
                  "latency mode: calls per side per round, at most")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->capture_default_str();
  ort->add_option("--seconds", round_s,
                  "latency mode: seconds per side per round, at most (one call at least)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  ort->add_option("--rounds", ort_options.rounds, "coproc and ORT take turns this many times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  ort->add_option("--processes", ort_options.processes,
                  "throughput mode: client processes (0: latency mode)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  ort->add_option("--max-batch", ort_options.max_batch, "throughput mode: the daemon's max_batch")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  ort->add_option("--daemon-threads", ort_options.daemon_threads,
                  "throughput mode: the daemon's intra-op threads (each ORT process uses 1)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  ort->add_option("--warmup-ms", warmup_ms,
                  "warm-up per side and case (per phase with --processes)")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  ort->add_option("--duration-ms", duration_ms, "throughput mode: measured time per phase")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  ort->add_option("--python", ort_options.python, "Python with onnxruntime and numpy")
      ->capture_default_str();
  ort->add_option("--ort-worker", ort_options.worker_script, "tools/ort_worker.py, as installed")
      ->capture_default_str();
  ort->add_flag("--json", ort_options.json, "print one JSON object");
  coproc::bench::DevicesOptions devices_options;
  auto* devices = app.add_subcommand(
      "devices",
      "the OpenCL device against the CPU on one model at one batch size (rows per second, "
      "outputs compared first), and with --gemm N the device's N^3 SGEMM GFLOP/s against the "
      "CPU's, in one run");
  devices->add_option("--model", devices_options.model_path, "ONNX file (or a bundled model's name)")
      ->required();
  devices->add_option("--opencl-device", devices_options.opencl_device,
                      "part of the device's name (default: the first GPU, else the first device)");
  devices->add_option("--batch", devices_options.batch, "the first dynamic dim")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  devices->add_option("--seq", devices_options.seq, "the second dynamic dim")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  devices->add_option("--threads", devices_options.threads, "the CPU side's intra-op threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  devices->add_option("--rounds", devices_options.rounds, "the two sides take turns this many times")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  devices->add_option("--seconds", devices_options.round_s, "seconds per side per round")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  devices->add_option("--gemm", devices_options.gemm_n, "also time an N x N x N SGEMM (0: no)")
      ->check(CLI::Range(int64_t{0}, int64_t{65536}))
      ->capture_default_str();
  devices->add_option("--peak-gflops", devices_options.peak_gflops,
                      "the device's FP32 peak, to print the GEMM's share of it")
      ->check(CLI::Range(0.0, 1e7));
  devices->add_flag("--json", devices_options.json, "print one JSON object");
  coproc::bench::SoakOptions soak_options;
  std::string soak_model = "mlp";
  double soak_minutes = 0, soak_seconds = 120, soak_warmup_s = -1;
  int64_t kill_every_ms = 2000;
  auto* soak = app.add_subcommand(
      "soak",
      "mixed open-loop load for a long time, client processes SIGKILLed and replaced along the "
      "way; checks that every request of a surviving client ends exactly once, the daemon's books "
      "balance, its own resident memory (VmRSS - RssShmem) stays flat within 1% after warm-up, "
      "and its client segment pages, descriptors and mappings return to their baseline. Exit 1 "
      "when a check fails.");
  soak->add_option("--model", soak_model,
                   "bundled model or ONNX path (private daemon, with noop beside it), or a model "
                   "name with --socket")
      ->capture_default_str();
  soak->add_option("--socket", socket,
                   "soak a running daemon (it should serve no one else: its books are checked)");
  auto* minutes = soak->add_option("--minutes", soak_minutes, "duration in minutes")
                      ->check(CLI::Range(0.0, 10080.0));
  soak->add_option("--seconds", soak_seconds, "duration in seconds")
      ->check(CLI::Range(1.0, 604800.0))
      ->excludes(minutes)
      ->capture_default_str();
  soak->add_option("--clients", soak_options.clients,
                   "client processes; the second half are the ones killed")
      ->check(CLI::Range(1, 60))
      ->capture_default_str();
  soak->add_option("--load", soak_options.load, "offered load, a fraction of the measured capacity")
      ->check(CLI::Range(0.01, 2.0))
      ->capture_default_str();
  soak->add_option("--kill-every-ms", kill_every_ms,
                   "mean time between SIGKILLs (each gap uniform in 0.5 to 1.5 times it); 0: none")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}))
      ->capture_default_str();
  soak->add_option("--warmup-s", soak_warmup_s,
                   "seconds before memory and latency count (default: 20% of the run, at least 10)")
      ->check(CLI::Range(0.0, 604800.0));
  soak->add_option("--seed", soak_options.seed, "random seed")->capture_default_str();
  soak->add_option("--cpu-threads", cpu_threads, "OpenBLAS threads of the private daemon")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  soak->add_flag("--json", soak_options.json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (soak->parsed()) {
    if (kill_every_ms > 0 && kill_every_ms < 100) {
      std::fprintf(stderr, "coproc-bench: --kill-every-ms must be 0 or at least 100\n");
      return 2;
    }
    const double run_s = *minutes ? soak_minutes * 60 : soak_seconds;
    soak_options.duration_ns = static_cast<int64_t>(run_s * 1e9);
    soak_options.kill_every_ns = kill_every_ms * 1'000'000;
    soak_options.warmup_ns = soak_warmup_s < 0 ? -1 : static_cast<int64_t>(soak_warmup_s * 1e9);
    return run_soak_command(soak_model, socket, soak_options, cpu_threads);
  }
  if (devices->parsed()) {
    ModelChoice choice;
    std::string error;
    if (!resolve_model(devices_options.model_path, &choice, &error)) {
      std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
      return 2;
    }
    devices_options.model_path = choice.path;
    return coproc::bench::run_devices(devices_options);
  }
  if (ort->parsed()) {
    ModelChoice choice;
    std::string error;
    if (!resolve_model(ort_model, &choice, &error)) {
      std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
      return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);  // a dead ORT worker must show as an error, not kill us
    ort_options.model_path = choice.path;
    ort_options.warmup_ns = warmup_ms * 1'000'000;
    ort_options.duration_ns = duration_ms * 1'000'000;
    ort_options.round_ns = static_cast<int64_t>(round_s * 1e9);
    return ort_options.processes > 0 ? coproc::bench::run_ort_throughput(ort_options)
                                     : coproc::bench::run_ort_latency(ort_options);
  }
  Budget budget{warmup_ms * 1'000'000, duration_ms * 1'000'000, max_samples, rounds};
  if (compare->parsed()) return run_compare(model, json, budget, cpu_threads);
  if (load->parsed()) {
    std::string error;
    if (!parse_mix(mix, &load_options.priority_mix, &error)) {
      std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
      return 2;
    }
    static constexpr const char* kPriorities[4] = {"critical", "high", "normal", "low"};
    for (uint8_t p = 0; p < 4; ++p) {
      if (heavy_priority == kPriorities[p]) load_options.heavy_priority = p;
    }
    load_options.warmup_ns = warmup_ms * 1'000'000;
    load_options.duration_ns = duration_ms * 1'000'000;
    return run_load_command(model, socket, load_options, json, cpu_threads, compare_batching);
  }
  return run_latency(socket, model, json, budget);
}
