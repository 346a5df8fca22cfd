// coprocd: parse flags -> load and validate the config -> place on a NUMA
// node -> load models -> create the registry -> start poller and dispatcher ->
// run the control loop until SIGTERM drains it -> tear down in reverse.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

#include "config/config.h"
#include "control/control.h"
#include "coproc/kernels/cpu.h"
#include "coproc/kernels/parallel.h"
#include "dispatch/dispatcher.h"
#include "ingest/poller.h"
#include "ingest/session_table.h"
#include "models/batching_policy.h"
#include "models/models.h"
#include "observe/registry.h"
#include "observe/stats_sampler.h"
#include "platform/cycle_clock.h"
#include "platform/numa_placement.h"

namespace {
constexpr int kExitBadConfig = 2;
constexpr int kExitStartFailed = 1;

spdlog::level::level_enum spdlog_level(coproc::daemon::LogLevel level) {
  using coproc::daemon::LogLevel;
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace coproc::daemon;
  std::string text;
  auto parsed = parse_command_line(argc, argv, &text);
  if (!parsed.ok()) {
    std::fprintf(stderr, "coprocd: %s\n", parsed.error().message.c_str());
    return kExitBadConfig;
  }
  if (!parsed.value().has_value()) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  const Config config = std::move(*parsed.value());

  auto logger = spdlog::stderr_color_mt("coprocd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog_level(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ coprocd: %v");
  spdlog::info("starting with:\n{}", describe(config));
  ::signal(SIGPIPE, SIG_IGN);

  const int gpu_node = config.numa_auto ? gpu_numa_node(config) : -1;
  auto placement = apply_numa_placement(config.numa_auto, config.numa_node, gpu_node);
  if (!placement.ok()) {
    spdlog::error("{}", placement.error().message);
    return kExitBadConfig;
  }
  spdlog::info("placement: {}{}", placement->describe(),
               !config.numa_auto ? ""
               : gpu_node >= 0   ? " (auto: the OpenCL device's node)"
                                 : " (auto: node 0; no OpenCL device in use reports its node)");
  coproc::kernels::cpu::set_threads(static_cast<int>(config.cpu_threads));
  coproc::kernels::cpu::set_intra_op_threads(static_cast<int>(config.intra_op_threads));
  CycleClock::calibrate();
  spdlog::info("request timing clock: {}",
               CycleClock::uses_tsc()
                   ? fmt::format("TSC, {:.4f} ns per tick", CycleClock::ns_per_tick())
                   : std::string("CLOCK_MONOTONIC"));

  auto models = ModelSet::load(config);
  if (!models.ok()) {
    spdlog::error("{}", models.error().message);
    return kExitStartFailed;
  }
  RegistryInfo info;
  info.version = COPROC_VERSION;
  const std::vector<int> cpus = allowed_cpus();
  info.cpus = cpu_ranges(cpus);
  info.cpu_count = static_cast<uint32_t>(cpus.size());
  info.max_clients = config.max_clients;
  // Sessions of clients that just left may hold their slot a moment longer.
  info.client_slots = 2 * config.max_clients;
  if (config.http) info.http_address = config.http->host;
  info.device_names[0] =
      fmt::format("{}, OpenBLAS, {} threads", cpu_model_name(), config.cpu_threads);
  if (models->gpu_device()) {
    const auto& cl = models->gpu_device()->info();
    info.device_names[1] = fmt::format("{} ({})", cl.name, cl.platform);
  }
  uint64_t weight_bytes = 0;
  for (const auto& m : models->all()) weight_bytes += m.model->weight_bytes();
  auto registry =
      Registry::create(models->model_table(), static_cast<uint32_t>(models->size()) * kStatsWriters,
                       placement->node, info);
  if (!registry.ok()) {
    spdlog::error("registry: {}", registry.error().message);
    return kExitStartFailed;
  }

  SessionTable sessions;
  auto policies = policies_for(models.value(), config);
  if (!policies.ok()) {
    spdlog::error("config: {}", policies.error().message);
    return kExitBadConfig;
  }
  Dispatcher dispatcher(models.value(), registry.value(), std::move(policies.value()),
                        int64_t{config.inline_max_us} * 1000, config.request_memory_bytes,
                        config.max_request_rows);
  StatsSampler sampler(registry.value(), weight_bytes);
  ControlLoop control(config, registry.value(), sessions, placement->node, sampler);
  if (auto listening = control.listen(); !listening.ok()) {
    spdlog::error("{}", listening.error().message);
    return kExitStartFailed;
  }
  Poller poller(registry.value(), sessions, dispatcher, models.value(),
                int64_t{config.poller_spin_us} * 1000, [&control](uint32_t id, std::string reason) {
                  control.disconnect_later(id, std::move(reason));
                });
  control.on_reload([&] {
    reload_policies(argc, argv, models.value(), config, [&](uint32_t id, sched::Policy policy) {
      dispatcher.set_policy(id, std::move(policy));
    });
  });
  dispatcher.start();
  poller.start();
  control.run(poller, dispatcher);

  poller.join();
  dispatcher.stop();
  spdlog::info("stopped");
  return 0;
}
