// The control loop (libuv, main thread): the unix socket, the hello, peer
// credentials, creating and reclaiming client sessions, signals and the
// registry heartbeat. It never touches a ring; the hot path is the poller's.
//
// A client's socket stays open for the life of the client. When the process
// exits or crashes the kernel closes it, the loop sees EOF and reclaims the
// client: the session is marked closed (queued work is dropped and late
// results discarded), removed from the poller's table, and its segment is
// unmapped when the last reference goes.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config.h"
#include "batcher.h"
#include "poller.h"
#include "registry.h"
#include "session_table.h"

namespace coproc::daemon {

class ControlLoop {
 public:
  ControlLoop(const Config& config, Registry& registry, SessionTable& sessions, int numa_node);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // Binds the socket. Refuses to take over a socket a live daemon answers on.
  Status listen();
  // Runs until SIGTERM/SIGINT, then drains: stops accepting, lets the poller
  // and executor finish every request already submitted, and only then
  // closes the clients. Returns when all handles are closed.
  void run(Poller& poller, Batcher& batcher);
  // Called on SIGHUP from the loop thread.
  void on_reload(std::function<void()> reload) { reload_ = std::move(reload); }
  // Any thread: asks the loop to disconnect a client that broke the protocol.
  void disconnect_later(uint32_t client_id, std::string reason);

 private:
  struct Connection;
  static void on_connection(uv_stream_t* server, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void handle_hello(Connection& c);
  void refuse(Connection& c, ErrorCode code, const std::string& message);
  void close_connection(Connection& c, const char* why);
  void begin_shutdown(const char* signal_name);
  void install_signal_handlers();
  void check_drained();

  const Config& config_;
  Registry& registry_;
  SessionTable& sessions_;
  const int numa_node_;
  Poller* poller_ = nullptr;
  Batcher* batcher_ = nullptr;
  std::function<void()> reload_;

  uv_loop_t loop_{};
  uv_pipe_t server_{};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t heartbeat_{}, drain_timer_{};
  uv_async_t broken_async_{};
  bool listening_ = false;
  bool shutting_down_ = false;
  uint32_t next_client_id_ = 1;
  std::unordered_map<uint32_t, Connection*> connections_;

  std::mutex broken_mu_;
  std::vector<std::pair<uint32_t, std::string>> broken_;
};

}  // namespace coproc::daemon
