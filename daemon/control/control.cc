#include "control/control.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "control/control_connection.h"
#include "control/listener.h"
#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {

constexpr uint64_t kHeartbeatMs = 1000;
constexpr uint64_t kDrainCheckMs = 1;
// Descriptors a connected client holds in the daemon: its socket, its
// segment's memfd and its eventfd.
constexpr rlim_t kFdsPerClient = 3;
// The daemon's own descriptors: stdio, the listening socket, libuv's, the
// registry and the doorbell, files while models load.
constexpr rlim_t kFdsReserved = 64;

// Clients beyond the descriptor limit would be refused for want of a memfd;
// raise the soft limit to what limits.max_clients and limits.max_pending_hellos
// need, as far as the hard limit allows, and say so when it does not.
void raise_descriptor_limit(uint32_t max_clients, uint32_t max_pending_hellos) {
  // Each client's three, plus one per connection waiting to say hello.
  const rlim_t need = kFdsPerClient * max_clients + max_pending_hellos + kFdsReserved;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= need) return;
  rlimit raised = limit;
  raised.rlim_cur = std::min(need, limit.rlim_max);
  if (raised.rlim_cur > limit.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  if (limit.rlim_cur < need) {
    spdlog::warn(
        "RLIMIT_NOFILE is {} (hard {}), below the {} descriptors that limits.max_clients = {} "
        "and limits.max_pending_hellos = {} need: connections beyond it will be refused",
        limit.rlim_cur, limit.rlim_max, need, max_clients, max_pending_hellos);
  }
}

}  // namespace

ControlLoop::ControlLoop(const Config& config, Registry& registry, SessionTable& sessions,
                         int numa_node, StatsSampler& sampler)
    : config_(config),
      registry_(registry),
      sessions_(sessions),
      numa_node_(numa_node),
      daemon_uid_(::geteuid()),
      sampler_(sampler) {
  uv_loop_init(&loop_);
  loop_.data = this;
}

ControlLoop::~ControlLoop() {
  if (listening_) ::unlink(config_.socket_path.c_str());
  if (http_) http_->close();
  // A start that failed after listen() began leaves handles open (signal watchers, the server
  // pipe); close them and let their close callbacks run, or the loop cannot be closed and its
  // memory leaks. After a normal run() every handle is closed already and this finds none.
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (uv_is_closing(handle) == 0) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

Status ControlLoop::listen() {
  install_signal_handlers();
  raise_descriptor_limit(config_.max_clients, config_.max_pending_hellos);
  if (Status s =
          listen_on_control_socket(config_, daemon_uid_, &loop_, &server_, this, on_connection);
      !s) {
    return s;
  }
  listening_ = true;
  return listen_http();
}

// Installed before the socket exists: once a client (or a test) can reach the
// daemon, a signal must already find its handler.
void ControlLoop::install_signal_handlers() {
  // Handlers only wake the loop (uv_signal_t); the work happens in it.
  auto on_signal = [](uv_signal_t* h, int signum) {
    auto* self = static_cast<ControlLoop*>(h->loop->data);
    if (signum == SIGHUP) {
      if (self->reload_) self->reload_();
      return;
    }
    self->begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
  };
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sighup_);
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_signal_start(&sighup_, on_signal, SIGHUP);
}

void ControlLoop::run(Poller& poller, Dispatcher& dispatcher) {
  poller_ = &poller;
  dispatcher_ = &dispatcher;
  uv_timer_init(&loop_, &heartbeat_);
  uv_timer_start(
      &heartbeat_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ControlLoop*>(t->loop->data);
        self->registry_.heartbeat();
        self->sampler_.sample(static_cast<uint64_t>(ring::monotonic_ns()));
        self->expire_hellos();
        self->logs_.flush(uv_now(&self->loop_));
        self->poller_->flush_logs(static_cast<uint64_t>(ring::monotonic_ns()) / 1'000'000);
      },
      kHeartbeatMs, kHeartbeatMs);
  uv_timer_init(&loop_, &drain_timer_);

  uv_async_init(&loop_, &broken_async_, [](uv_async_t* a) {
    auto* self = static_cast<ControlLoop*>(a->loop->data);
    std::vector<std::pair<uint32_t, std::string>> broken;
    {
      std::lock_guard lock(self->broken_mu_);
      broken.swap(self->broken_);
    }
    for (auto& [id, reason] : broken) {
      if (auto it = self->connections_.find(id); it != self->connections_.end()) {
        self->logs_.violations.log(
            uv_now(&self->loop_),
            fmt::format("client {} (pid {}) disconnected: {}", id, it->second->pid, reason));
        self->close_connection(*it->second, "protocol violation");
      }
    }
  });

  sampler_.sample(static_cast<uint64_t>(ring::monotonic_ns()));  // threads and RSS from the start
  registry_.set_state(wire::DaemonState::kReady);
  spdlog::info("coprocd ready on {} (pid {})", config_.socket_path, ::getpid());
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void ControlLoop::disconnect_later(uint32_t client_id, std::string reason) {
  {
    std::lock_guard lock(broken_mu_);
    broken_.emplace_back(client_id, std::move(reason));
  }
  uv_async_send(&broken_async_);
}

void ControlLoop::close_connection(Connection& c, const char* why) {
  if (c.closing) return;
  c.closing = true;
  end_pending(c);
  if (c.session) {
    c.session->close();
    sessions_.remove(c.id);
    if (c.stats_slot >= 0) registry_.clear_client_slot(c.stats_slot);
    if (c.counted) {
      registry_.daemon_info().clients_connected.store(--clients_connected_,
                                                      std::memory_order_relaxed);
    }
    // Wake the poller so it drops its snapshot's reference now: the segment
    // is unmapped when the last reference (queued work included) goes.
    registry_.ring_doorbell();
    logs_.reclaims.log(uv_now(&loop_),
                       fmt::format("client {} (pid {}) {}: reclaimed", c.id, c.pid, why));
    c.session.reset();
  }
  connections_.erase(c.id);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.pipe),
           [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
}

void ControlLoop::PeerLogs::flush(uint64_t now_ms) {
  for (LogLimiter* limiter : {&failed_accepts, &pending_refusals, &hello_timeouts, &refused_hellos,
                              &failed_replies, &connects, &violations, &reclaims}) {
    limiter->flush(now_ms);
  }
}

void ControlLoop::begin_shutdown(const char* signal_name) {
  if (shutting_down_) return;
  shutting_down_ = true;
  spdlog::info("{}: draining in-flight work", signal_name);
  registry_.set_state(wire::DaemonState::kDraining);
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
    ::unlink(config_.socket_path.c_str());
    listening_ = false;
  }
  poller_->request_stop();
  uv_timer_start(
      &drain_timer_,
      [](uv_timer_t* t) { static_cast<ControlLoop*>(t->loop->data)->check_drained(); },
      kDrainCheckMs, kDrainCheckMs);
}

void ControlLoop::check_drained() {
  if (!poller_->finished() || !dispatcher_->idle()) return;
  spdlog::info("drained: closing {} client(s)", connections_.size());
  std::vector<Connection*> all;
  for (auto& [id, c] : connections_) all.push_back(c);
  for (Connection* c : all) close_connection(*c, "closed at shutdown");
  registry_.set_state(wire::DaemonState::kStopped);
  if (http_) http_->close();
  auto close = [](auto* handle) { uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr); };
  close(&sigterm_);
  close(&sigint_);
  close(&sighup_);
  close(&heartbeat_);
  close(&drain_timer_);
  close(&broken_async_);
}

}  // namespace coproc::daemon
