#include "control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace coproc::daemon {

namespace {
constexpr uint64_t kHeartbeatMs = 1000;
constexpr uint64_t kDrainCheckMs = 1;
// Owner and group may connect; an ACL (uid/gid allow-list) is checked at
// hello on top of this.
constexpr mode_t kSocketMode = 0660;
}  // namespace

struct ControlLoop::Connection {
  uv_pipe_t pipe{};
  ControlLoop* owner = nullptr;
  uint32_t id = 0;
  pid_t pid = 0;
  uid_t uid = 0;
  wire::HelloRequest hello{};
  std::size_t hello_bytes = 0;
  char read_buffer[256];
  std::shared_ptr<ClientSession> session;
  bool closing = false;
};

ControlLoop::ControlLoop(const Config& config, Registry& registry, SessionTable& sessions,
                         int numa_node)
    : config_(config), registry_(registry), sessions_(sessions), numa_node_(numa_node) {
  uv_loop_init(&loop_);
  loop_.data = this;
}

ControlLoop::~ControlLoop() {
  if (listening_) ::unlink(config_.socket_path.c_str());
  uv_loop_close(&loop_);
}

Status ControlLoop::listen() {
  namespace fs = std::filesystem;
  install_signal_handlers();
  fs::path path(config_.socket_path);
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);

  // A socket file may be left over from a daemon that crashed. Take it over
  // only if nothing answers on it.
  if (fs::exists(path, ec)) {
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, config_.socket_path.c_str(), sizeof(addr.sun_path) - 1);
    bool alive = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(probe);
    if (alive) {
      return make_error(ErrorCode::kUnavailable,
                        "another daemon is already listening on " + config_.socket_path);
    }
    ::unlink(config_.socket_path.c_str());
  }

  uv_pipe_init(&loop_, &server_, 0);
  server_.data = this;
  if (int rc = uv_pipe_bind(&server_, config_.socket_path.c_str()); rc != 0) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot bind " + config_.socket_path + ": " + uv_strerror(rc));
  }
  ::chmod(config_.socket_path.c_str(), kSocketMode);
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, on_connection); rc != 0) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot listen on " + config_.socket_path + ": " + uv_strerror(rc));
  }
  listening_ = true;
  return {};
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

void ControlLoop::run(Poller& poller, Batcher& batcher) {
  poller_ = &poller;
  batcher_ = &batcher;
  uv_timer_init(&loop_, &heartbeat_);
  uv_timer_start(&heartbeat_, [](uv_timer_t* t) {
    static_cast<ControlLoop*>(t->loop->data)->registry_.heartbeat();
  }, kHeartbeatMs, kHeartbeatMs);
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
        spdlog::warn("client {} (pid {}) disconnected: {}", id, it->second->pid, reason);
        self->close_connection(*it->second, "protocol violation");
      }
    }
  });

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

void ControlLoop::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlLoop*>(server->data);
  if (status < 0) {
    spdlog::warn("accept failed: {}", uv_strerror(status));
    return;
  }
  auto* c = new Connection();
  c->owner = self;
  uv_pipe_init(&self->loop_, &c->pipe, 0);
  c->pipe.data = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe),
             [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
    return;
  }
  c->id = self->next_client_id_++;
  self->connections_[c->id] = c;
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd);
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    c->pid = cred.pid;
    c->uid = cred.uid;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read);
}

void ControlLoop::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(c->read_buffer, sizeof(c->read_buffer));
}

void ControlLoop::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  ControlLoop* self = c->owner;
  if (nread < 0) {
    self->close_connection(*c, nread == UV_EOF ? "disconnected" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (c->session || c->closing) return;  // nothing is expected after hello
  std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(nread),
                                           sizeof(c->hello) - c->hello_bytes);
  std::memcpy(reinterpret_cast<char*>(&c->hello) + c->hello_bytes, buf->base, take);
  c->hello_bytes += take;
  if (c->hello_bytes == sizeof(c->hello)) self->handle_hello(*c);
}

void ControlLoop::refuse(Connection& c, ErrorCode code, const std::string& message) {
  spdlog::warn("refused client (pid {}, uid {}): {}", c.pid, c.uid, message);
  wire::HelloReply reply{};
  reply.magic = wire::kHelloMagic;
  reply.protocol_version = wire::kProtocolVersion;
  reply.status = static_cast<int32_t>(code);
  std::strncpy(reply.message, message.c_str(), sizeof(reply.message) - 1);
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&c.pipe), &fd);
  [[maybe_unused]] ssize_t n = ::send(fd, &reply, sizeof(reply), MSG_NOSIGNAL);
  close_connection(c, "refused");
}

void ControlLoop::handle_hello(Connection& c) {
  using namespace wire;
  if (c.hello.magic != kHelloMagic) {
    refuse(c, ErrorCode::kInvalidArgument, "not a coproc hello");
    return;
  }
  if (c.hello.protocol_version != kProtocolVersion) {
    refuse(c, ErrorCode::kUnsupported,
           "protocol version mismatch: client speaks " + std::to_string(c.hello.protocol_version) +
               ", daemon speaks " + std::to_string(kProtocolVersion));
    return;
  }
  if (shutting_down_) {
    refuse(c, ErrorCode::kUnavailable, "the daemon is shutting down");
    return;
  }
  if (sessions_.size() >= config_.max_clients) {
    refuse(c, ErrorCode::kResourceExhausted,
           "too many clients (limits.max_clients = " + std::to_string(config_.max_clients) + ")");
    return;
  }
  SegmentGeometry geometry{config_.ring_slots, config_.slot_bytes, config_.arena_bytes};
  auto session = ClientSession::create(c.id, c.pid, c.uid, geometry, numa_node_);
  if (!session.ok()) {
    refuse(c, session.error().code, "cannot create the client segment: " + session.error().message);
    return;
  }
  c.session = session.value();
  // Into the poller's table before the reply: once the client has its fds it
  // may push and ring at once, and the poller must already know its ring.
  sessions_.add(c.session);

  HelloReply reply{};
  reply.magic = kHelloMagic;
  reply.protocol_version = kProtocolVersion;
  reply.status = 0;
  reply.client_id = c.id;
  reply.segment_bytes = c.session->segment_bytes();
  reply.registry_bytes = registry_.registry_bytes();
  int fds[kHelloFdCount] = {c.session->segment_fd(), registry_.registry_fd(),
                            registry_.doorbell_fd(), c.session->event_fd()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
  iovec iov{&reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(fds));
  std::memcpy(CMSG_DATA(cm), fds, sizeof(fds));
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&c.pipe), &fd);
  if (::sendmsg(fd, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(reply))) {
    spdlog::warn("hello reply to pid {} failed: {}", c.pid, std::strerror(errno));
    close_connection(c, "hello reply failed");
    return;
  }
  spdlog::info("client {} connected: pid {}, uid {}, segment {} bytes", c.id, c.pid, c.uid,
               c.session->segment_bytes());
}

void ControlLoop::close_connection(Connection& c, const char* why) {
  if (c.closing) return;
  c.closing = true;
  if (c.session) {
    c.session->close();
    sessions_.remove(c.id);
    // Wake the poller so it drops its snapshot's reference now: the segment
    // is unmapped when the last reference (queued work included) goes.
    registry_.ring_doorbell();
    spdlog::info("client {} (pid {}) {}: reclaimed", c.id, c.pid, why);
    c.session.reset();
  }
  connections_.erase(c.id);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.pipe),
           [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
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
  uv_timer_start(&drain_timer_, [](uv_timer_t* t) {
    static_cast<ControlLoop*>(t->loop->data)->check_drained();
  }, kDrainCheckMs, kDrainCheckMs);
}

void ControlLoop::check_drained() {
  if (!poller_->finished() || !batcher_->idle()) return;
  spdlog::info("drained: closing {} client(s)", connections_.size());
  std::vector<Connection*> all;
  for (auto& [id, c] : connections_) all.push_back(c);
  for (Connection* c : all) close_connection(*c, "closed at shutdown");
  registry_.set_state(wire::DaemonState::kStopped);
  auto close = [](auto* handle) { uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr); };
  close(&sigterm_);
  close(&sigint_);
  close(&sighup_);
  close(&heartbeat_);
  close(&drain_timer_);
  close(&broken_async_);
}

}  // namespace coproc::daemon
