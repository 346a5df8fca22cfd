// coproc-stat: what a running coprocd is doing, read from the stats page it
// publishes in its registry (the aeron_stat pattern). It says hello as an
// observer, maps the registry read-only and from then on only reads relaxed
// counters, so it never slows the daemon.
//
//   coproc-stat                     one table, with tuning suggestions
//   coproc-stat --watch             the table refreshed in place, with rates
//   coproc-stat --json              one JSON object
//   coproc-stat --prometheus        Prometheus text exposition
//   coproc-stat --health            exit 0 when the daemon is ready and beating
#include <fmt/format.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <optional>

#include "coproc/socket_path.h"
#include "coproc/stats/exposition.h"
#include "coproc/stats/snapshot.h"
#include "registry_view.h"
#include "render.h"

namespace {

using coproc::observer::RegistryView;
namespace stat = coproc::stat;
namespace stats = coproc::stats;

constexpr int kExitOk = 0;
constexpr int kExitUnhealthy = 1;
constexpr int kExitUsage = 2;
constexpr uint32_t kMinIntervalMs = 50;

// The terminal sequences --watch uses: the alternate screen (restored on
// exit, as top does), cursor hidden, clear and home before each frame.
constexpr const char* kEnterScreen = "\x1b[?1049h\x1b[?25l";
constexpr const char* kLeaveScreen = "\x1b[?25h\x1b[?1049l";
constexpr const char* kClearHome = "\x1b[H\x1b[2J";

// Set by SIGINT/SIGTERM; the watch loop restores the terminal and returns.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void on_stop_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the sleep between frames returns at once
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

void sleep_ms(uint32_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000L};
  ::nanosleep(&ts, nullptr);  // EINTR on a stop signal: the loop checks g_stop
}

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// One line saying why the daemon is not healthy, or nothing when it is.
std::optional<std::string> unhealthy_reason(const stats::Snapshot& s) {
  if (s.daemon.state != static_cast<uint32_t>(coproc::wire::DaemonState::kReady)) {
    return fmt::format("daemon {} (pid {})", stats::state_name(s.daemon.state), s.daemon.pid);
  }
  if (s.daemon.heartbeat_age_ns >= stats::kStaleHeartbeatNs) {
    return fmt::format("heartbeat stale: last beat {:.1f} s ago (limit {:.0f} s), pid {}",
                       static_cast<double>(s.daemon.heartbeat_age_ns) / 1e9,
                       static_cast<double>(stats::kStaleHeartbeatNs) / 1e9, s.daemon.pid);
  }
  return std::nullopt;
}

int run_health(const RegistryView& view) {
  const stats::Snapshot s = stats::read_snapshot(view.page());
  if (auto reason = unhealthy_reason(s)) {
    std::fprintf(stderr, "unhealthy: %s\n", reason->c_str());
    return kExitUnhealthy;
  }
  std::printf("ok: coprocd pid %d ready, heartbeat %.1f s ago, %zu models\n", s.daemon.pid,
              static_cast<double>(s.daemon.heartbeat_age_ns) / 1e9, s.models.size());
  return kExitOk;
}

int run_watch(const RegistryView& view, uint32_t interval_ms) {
  install_stop_handlers();
  write_out(kEnterScreen);
  std::optional<stats::Snapshot> previous;
  while (!g_stop.load(std::memory_order_relaxed)) {
    stats::Snapshot now = stats::read_snapshot(view.page());
    write_out(kClearHome + stat::render_table(now, previous ? &*previous : nullptr) +
              fmt::format("\nrefresh every {} ms; Ctrl-C quits\n", interval_ms));
    previous = std::move(now);
    sleep_ms(interval_ms);
  }
  write_out(kLeaveScreen);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coproc-stat: what a running coprocd is doing, from its stats page"};
  std::string socket_path = coproc::wire::default_socket_path();
  bool watch = false;
  bool json = false;
  bool prometheus = false;
  bool health = false;
  uint32_t interval_ms = 1000;
  app.add_option("--socket", socket_path,
                 "the daemon's control socket ($COPROC_SOCKET, else the "
                 "daemon's default)")
      ->capture_default_str();
  auto* watch_flag = app.add_flag("--watch", watch, "refresh the table in place, with rates");
  app.add_option("--interval-ms", interval_ms, "--watch refresh period")
      ->check(CLI::Range(kMinIntervalMs, 3'600'000u))
      ->capture_default_str();
  auto* json_flag = app.add_flag("--json", json, "print one JSON object");
  auto* prom_flag = app.add_flag("--prometheus", prometheus, "print Prometheus text exposition");
  auto* health_flag =
      app.add_flag("--health", health, "exit 0 when the daemon is ready and its heartbeat fresh");
  watch_flag->excludes(json_flag)->excludes(prom_flag)->excludes(health_flag);
  json_flag->excludes(prom_flag)->excludes(health_flag);
  prom_flag->excludes(health_flag);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  RegistryView view;
  if (!view.open(socket_path)) {
    if (prometheus) {
      // A scraper still learns that the daemon is down.
      write_out(stats::render_prometheus_down());
    }
    std::fprintf(stderr, "%s%s\n", health ? "unhealthy: " : "coproc-stat: ", view.error().c_str());
    return kExitUnhealthy;
  }
  if (health) return run_health(view);
  if (watch) return run_watch(view, interval_ms);
  const stats::Snapshot s = stats::read_snapshot(view.page());
  if (json) {
    write_out(stat::render_json(s));
  } else if (prometheus) {
    write_out(stats::render_prometheus(s));
  } else {
    write_out(stat::render_table(s, nullptr));
  }
  return kExitOk;
}
