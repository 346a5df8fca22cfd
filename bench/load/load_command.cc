#include "load/load_command.h"

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/private_daemon.h"
#include "common/report.h"
#include "load/load.h"

namespace coproc::bench {

namespace {

struct LoadSettings {
  std::string model = "noop";
  std::string socket;
  LoadOptions options;
  std::string mix = "normal=1";
  std::string heavy_priority = "low";
  bool json = false;
  bool compare_batching = false;
  int cpu_threads = 1;
  int64_t warmup_ms = 500, duration_ms = 2000;
};

// "critical=0.1,normal=0.9" -> weights per priority.
bool parse_mix(const std::string& text, std::array<double, 4>* mix, std::string* error) {
  static constexpr const char* kNames[4] = {"critical", "high", "normal", "low"};
  *mix = {0, 0, 0, 0};
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
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

std::string load_run_json(const LoadResult& r, const char* batching) {
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
  auto p = summarize("all", all);
  double throughput =
      static_cast<double>(r.samples.size()) / (static_cast<double>(r.measured_ns) / 1e9);
  std::string prio, hist;
  static constexpr const char* kNames[4] = {"critical", "high", "normal", "low"};
  for (int i = 0; i < 4; ++i) {
    if (by_priority[i].empty()) continue;
    auto q = summarize(kNames[i], by_priority[i]);
    prio += fmt::format("{}{}", prio.empty() ? "" : ",", json_row(q, "priority"));
  }
  for (auto [size, count] : batch_sizes)
    hist += fmt::format("{}\"{}\":{}", hist.empty() ? "" : ",", size, count);
  std::vector<int64_t> heavy;
  for (const auto& s : r.heavy_samples) heavy.push_back(s.latency_ns);
  const std::string heavy_json =
      heavy.empty() ? "null" : json_row(summarize("heavy", heavy), "client");
  return fmt::format(
      R"({{"batching":"{}","throughput_rps":{:.1f},"samples":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{},"mean_batch_size":{:.3f},"errors":{},"backlogged":{},"per_priority":[{}],"batch_sizes":{{{}}},"heavy":{}}})",
      batching, throughput, p.samples, p.p50_ns, p.p90_ns, p.p99_ns, p.p999_ns, p.max_ns,
      all.empty() ? 0.0 : batch_sum / static_cast<double>(all.size()), r.errors, r.backlogged, prio,
      hist, heavy_json);
}

void print_load(const LoadResult& r) {
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
    if (!by_priority[i].empty()) rows.push_back(summarize(kNames[i], by_priority[i]));
  }
  for (int i = 0; i < 4; ++i) {
    if (!queue_by_priority[i].empty() && queue_by_priority[i].size() != queue.size()) {
      rows.push_back(summarize(std::string(kNames[i]) + " queue", queue_by_priority[i]));
    }
  }
  rows.push_back(summarize("queue time", queue));
  rows.push_back(summarize("exec time", exec));
  print_table(rows);
  std::printf("batch sizes:");
  for (auto [size, count] : batch_sizes)
    std::printf(" %u:%llu", size, static_cast<unsigned long long>(count));
  std::printf("\n");
  if (!r.heavy_samples.empty()) {
    std::vector<int64_t> heavy;
    for (const auto& s : r.heavy_samples) heavy.push_back(s.latency_ns);
    const auto q = summarize("heavy", heavy);
    std::printf(
        "heavy neighbour: %zu requests completed in the measured phase, latency p50 %.1f ms, max "
        "%.1f ms\n",
        heavy.size(), static_cast<double>(q.p50_ns) / 1e6, static_cast<double>(q.max_ns) / 1e6);
  }
}

int run_load_command(const std::string& model_arg, const std::string& socket, LoadOptions options,
                     bool json, int cpu_threads, bool compare_batching) {
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
  std::vector<std::pair<std::string, LoadResult>> results;
  for (const Run& run : runs) {
    std::unique_ptr<PrivateDaemon> daemon;
    if (socket.empty()) {
      ModelChoice model;
      std::string error;
      if (!resolve_model(model_arg, &model, &error)) {
        std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
        return 2;
      }
      daemon = std::make_unique<PrivateDaemon>(model.name, model.path, cpu_threads, run.batching);
      if (!daemon->started()) {
        std::fprintf(stderr, "coproc-bench: %s\n", daemon->error().c_str());
        return 1;
      }
      options.socket_path = daemon->socket_path();
      options.model_name = model.name;
    } else {
      if (compare_batching) {
        std::fprintf(stderr,
                     "coproc-bench: --compare-batching starts its own daemons; drop --socket\n");
        return 2;
      }
      options.socket_path = socket;
      options.model_name = model_arg;
    }
    auto result = run_load(options);
    if (!result.error.empty()) {
      std::fprintf(stderr, "coproc-bench: %s\n", result.error.c_str());
      return 1;
    }
    results.emplace_back(run.label, std::move(result));
  }
  const char* loop = options.rate_rps > 0 ? "open" : "closed";
  if (json) {
    std::string body;
    for (const auto& [label, r] : results)
      body += (body.empty() ? "" : ",") + load_run_json(r, label.c_str());
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
    auto rps = [](const LoadResult& r) {
      return static_cast<double>(r.samples.size()) / (static_cast<double>(r.measured_ns) / 1e9);
    };
    std::printf("throughput with batching / without = %.2fx\n",
                rps(results[1].second) / rps(results[0].second));
  }
  return 0;
}

int run(LoadSettings& s) {
  std::string error;
  if (!parse_mix(s.mix, &s.options.priority_mix, &error)) {
    std::fprintf(stderr, "coproc-bench: %s\n", error.c_str());
    return 2;
  }
  static constexpr const char* kPriorities[4] = {"critical", "high", "normal", "low"};
  for (uint8_t p = 0; p < 4; ++p) {
    if (s.heavy_priority == kPriorities[p]) s.options.heavy_priority = p;
  }
  s.options.warmup_ns = s.warmup_ms * 1'000'000;
  s.options.duration_ns = s.duration_ms * 1'000'000;
  return run_load_command(s.model, s.socket, s.options, s.json, s.cpu_threads, s.compare_batching);
}

}  // namespace

Command add_load_command(CLI::App& app) {
  auto s = std::make_shared<LoadSettings>();
  auto* load =
      app.add_subcommand("load", "many client processes: closed loop or open loop (Poisson)");
  load->add_option("--model", s->model,
                   "bundled model or ONNX path (private daemon), or a model name with --socket")
      ->capture_default_str();
  load->add_option("--socket", s->socket, "use a running daemon instead of a private one");
  load->add_option("--clients", s->options.clients, "client processes")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  load->add_option("--in-flight", s->options.in_flight,
                   "closed loop: outstanding requests per client")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  load->add_option("--rate", s->options.rate_rps,
                   "open loop: total Poisson arrival rate, requests/s (0: closed loop)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  load->add_option("--mix", s->mix, "priority weights, e.g. critical=0.1,low=0.9")
      ->capture_default_str();
  load->add_option("--cpu-threads", s->cpu_threads, "OpenBLAS threads of the private daemon")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  load->add_flag("--json", s->json, "print one JSON object");
  load->add_flag(
      "--compare-batching", s->compare_batching,
      "run the same load twice, batching off (max_batch 1) and on (dynamic, max_batch 32)");
  load->add_option("--warmup-ms", s->warmup_ms, "warm-up")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  load->add_option("--duration-ms", s->duration_ms, "measurement")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  load->add_option("--heavy-rows", s->options.heavy_rows,
                   "add one client that keeps one request of this many rows in flight (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 31))
      ->capture_default_str();
  load->add_option("--heavy-priority", s->heavy_priority,
                   "priority of the heavy neighbour's requests")
      ->check(CLI::IsMember({"critical", "high", "normal", "low"}))
      ->capture_default_str();
  return {load, [s] { return run(*s); }};
}

}  // namespace coproc::bench
