// The control loop (libuv, main thread): the unix socket, the hello, peer
// credentials, creating and reclaiming client sessions, signals and the
// registry heartbeat. It never touches a ring; the hot path is the poller's.
//
// Access control (docs/threat-model.md): the socket file gets the configured
// mode and group before it listens (listener.h), and each hello is checked
// against the peer's kernel credentials (SO_PEERCRED, SO_PEERGROUPS) and the
// allow-lists in Config (peer_acl.h); a peer that is not allowed gets PERMISSION_DENIED and the
// refusal is logged with its pid, uid and gid. Connections that have not said
// hello are bounded per peer uid (limits.max_pending_hellos_per_uid), in all
// (limits.max_pending_hellos) and in time (5 s); one over a bound is answered
// RESOURCE_EXHAUSTED naming it. A hello this daemon does not understand (magic,
// version, kind, reserved field) is refused naming the field.
//
// Every line a peer or a client can cause is rate-limited per cause
// (log_limiter.h, PeerLogs below), the per-client info lines included, so a
// client that reconnects in a loop cannot flood the log.
//
// A client's socket stays open for the life of the client. When the process
// exits or crashes the kernel closes it, the loop sees EOF and reclaims the
// client: the session is marked closed (queued work is dropped and late
// results discarded), removed from the poller's table, and its segment is
// unmapped when the last reference goes.
//
// Observability (docs/operating.md, "The stats page"): each client's hello takes a client
// slot in the stats page and its disconnect clears it; an observer's hello gets
// the registry descriptor alone and is hung up on; once a second the heartbeat
// refreshes the sampled gauges (StatsSampler). The HTTP endpoint (http.listen)
// runs on this loop too: /metrics renders the stats page read as any tool
// reads it, /health/live answers while this loop turns, /health/ready while
// the daemon is ready (not starting, not draining). It is closed last, after
// the drain, so a load balancer sees "draining" until the daemon is gone.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "control/http/http_server.h"
#include "dispatch/dispatcher.h"
#include "ingest/poller.h"
#include "ingest/session_table.h"
#include "observe/registry.h"
#include "observe/stats_sampler.h"
#include "platform/log_limiter.h"

namespace coproc::daemon {

class ControlLoop {
 public:
  ControlLoop(const Config& config, Registry& registry, SessionTable& sessions, int numa_node,
              StatsSampler& sampler);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // Binds the socket, sets its mode and group, then listens (listener.h).
  // Refuses to take over a socket a live daemon answers on, and a socket
  // directory that another user owns or may write to. Raises RLIMIT_NOFILE (soft) to what
  // limits.max_clients needs, up to the hard limit. Then the HTTP endpoint,
  // unless http.listen is "off"; an address it cannot bind fails the start.
  Status listen();
  // Runs until SIGTERM/SIGINT, then drains: stops accepting, lets the poller
  // and executor finish every request already submitted, and only then
  // closes the clients. Returns when all handles are closed.
  void run(Poller& poller, Dispatcher& dispatcher);
  // Called on SIGHUP from the loop thread.
  void on_reload(std::function<void()> reload) { reload_ = std::move(reload); }
  // Any thread: asks the loop to disconnect a client that broke the protocol.
  void disconnect_later(uint32_t client_id, std::string reason);

 private:
  struct Connection;
  static void on_connection(uv_stream_t* server, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  // Whether accepting c would exceed a pending-hello limit; the refusal's message if so.
  std::optional<std::string> pending_limit_reached(const Connection& c) const;
  void start_pending(Connection& c);
  void end_pending(Connection& c);
  // Reads what has arrived of a waiting connection's hello, without waiting.
  enum class HelloRead { kGone, kPartial, kWhole };
  static HelloRead read_waiting_hello(Connection& c);
  // Reads and handles the hellos that have arrived on uid's waiting connections.
  void catch_up_hellos(uid_t uid);
  void handle_hello(Connection& c);
  // The hello's fields other than magic, after the peer is known to be allowed; the refusal's
  // status and message if one is wrong.
  std::optional<std::pair<ErrorCode, std::string>> check_hello_fields(const Connection& c) const;
  // Sends the OK hello reply with `fds` (SCM_RIGHTS); on failure logs, closes the connection and
  // returns false.
  bool send_hello_reply(Connection& c, uint64_t segment_bytes, std::span<const int> fds);
  // allowed_to_connect (peer_acl.h) for c's credentials.
  bool peer_allowed(const Connection& c) const;
  // Logs the refusal of a hello, answers it and closes the connection.
  void refuse(Connection& c, ErrorCode code, const std::string& message);
  void expire_hellos();
  void close_connection(Connection& c, const char* why);
  void begin_shutdown(const char* signal_name);
  void install_signal_handlers();
  void check_drained();
  Status listen_http();
  HttpResponse serve_http(std::string_view path);

  const Config& config_;
  Registry& registry_;
  SessionTable& sessions_;
  const int numa_node_;
  const uid_t daemon_uid_;
  Poller* poller_ = nullptr;
  Dispatcher* dispatcher_ = nullptr;
  std::function<void()> reload_;
  StatsSampler& sampler_;
  std::unique_ptr<HttpServer> http_;

  uv_loop_t loop_{};
  uv_pipe_t server_{};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t heartbeat_{}, drain_timer_{};
  uv_async_t broken_async_{};
  bool listening_ = false;
  bool shutting_down_ = false;
  uint32_t next_client_id_ = 1;
  std::unordered_map<uint32_t, Connection*> connections_;
  uint32_t pending_hellos_ = 0;  // connections that have not said hello yet
  // The same by peer uid, in accept order; no empty lists kept.
  std::unordered_map<uid_t, std::vector<Connection*>> pending_by_uid_;
  uint64_t clients_connected_ = 0;  // client sessions (observers get none)

  // What peers and clients can make this loop log as often as they like, one limiter per cause
  // (log_limiter.h), flushed on the heartbeat. Used on the loop thread only.
  struct PeerLogs {
    static constexpr uint32_t kPerSecond = 10;
    LogLimiter failed_accepts{kPerSecond, "failed accepts"};
    LogLimiter pending_refusals{kPerSecond, "connections refused before their hello"};
    LogLimiter hello_timeouts{kPerSecond, "hello timeouts"};
    LogLimiter refused_hellos{kPerSecond, "refused hellos"};
    LogLimiter failed_replies{kPerSecond, "failed hello replies"};
    LogLimiter connects{kPerSecond, "client connections", spdlog::level::info};
    LogLimiter violations{kPerSecond, "protocol-violation disconnects"};
    LogLimiter reclaims{kPerSecond, "client reclaims", spdlog::level::info};
    void flush(uint64_t now_ms);
  };
  PeerLogs logs_;

  std::mutex broken_mu_;
  std::vector<std::pair<uint32_t, std::string>> broken_;
};

}  // namespace coproc::daemon
