// The control loop's HTTP endpoint (control.h): /metrics rendered from the
// stats page as any reader renders it, and the health answers.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "control/control.h"
#include "coproc/stats/exposition.h"
#include "coproc/stats/snapshot.h"

namespace coproc::daemon {

Status ControlLoop::listen_http() {
  const auto& address = config_.http;
  if (!address) return {};
  http_ = std::make_unique<HttpServer>(&loop_,
                                       [this](std::string_view path) { return serve_http(path); });
  if (Status s = http_->listen(address->host, address->port); !s) {
    return make_error(s.error().code,
                      fmt::format("http.listen = \"{}\": {} (another port, \"off\", or port 0 for "
                                  "any free one)",
                                  config_.http_listen, s.error().message));
  }
  // relaxed: a standalone value for readers of the stats page.
  registry_.daemon_info().http_port.store(http_->port(), std::memory_order_relaxed);
  const bool v6 = address->host.find(':') != std::string::npos;
  spdlog::info("http: /metrics, /health/live, /health/ready on {}{}{}:{}", v6 ? "[" : "",
               address->host, v6 ? "]" : "", http_->port());
  return {};
}

HttpResponse ControlLoop::serve_http(std::string_view path) {
  constexpr const char* kText = "text/plain; charset=utf-8";
  if (path == "/metrics") {
    return {200, stats::kExpositionContentType,
            stats::render_prometheus(stats::read_snapshot(sampler_.page()))};
  }
  // Answered by this loop, so the loop turns: the daemon is alive.
  if (path == "/health/live") return {200, kText, "live\n"};
  if (path == "/health/ready") {
    // acquire: pairs with set_state's release.
    const uint32_t state = registry_.header().state.load(std::memory_order_acquire);
    if (state == static_cast<uint32_t>(wire::DaemonState::kReady)) return {200, kText, "ready\n"};
    return {503, kText, fmt::format("not ready: {}\n", stats::state_name(state))};
  }
  if (path == "/") return {200, kText, "coprocd: /metrics /health/live /health/ready\n"};
  return {404, kText, "not found: try /metrics, /health/live or /health/ready\n"};
}

}  // namespace coproc::daemon
