// The control loop's door (control.h): accepting a connection, bounding those that have not said
// hello, reading and checking the hello against the peer's credentials, and answering it with
// the client's segment or a refusal that says why.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "control/control.h"
#include "control/control_connection.h"
#include "control/peer_acl.h"

namespace coproc::daemon {

namespace {

// A connection that has not sent its whole hello by then is closed (checked
// on the heartbeat, so after 5 to 6 s); the client library waits 5 s for the
// reply.
constexpr uint64_t kHelloTimeoutMs = 5000;

// The control loop is the only writer of the daemon's client gauges (relaxed: standalone values).
void bump_gauge(std::atomic<uint64_t>& gauge, uint64_t by) {
  gauge.store(gauge.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

int fd_of(uv_pipe_t& pipe) {
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&pipe), &fd);
  return fd;
}

// Answers with a refusal, without waiting: the socket is non-blocking and the reply (a few hundred
// bytes) is the first thing the daemon writes to it, so it fits in the socket buffer. The peer
// can read it even after the daemon closed the connection, and even if its own hello arrives
// after that (its send then fails, the reply is still queued for it).
void send_refusal(int fd, ErrorCode code, const std::string& message) {
  wire::HelloReply reply{};
  reply.magic = wire::kHelloMagic;
  reply.protocol_version = wire::kProtocolVersion;
  reply.status = static_cast<int32_t>(code);
  std::strncpy(reply.message, message.c_str(), sizeof(reply.message) - 1);
  [[maybe_unused]] ssize_t n = ::send(fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
}
}  // namespace

void ControlLoop::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlLoop*>(server->data);
  if (status < 0) {
    self->logs_.failed_accepts.log(uv_now(&self->loop_),
                                   fmt::format("accept failed: {}", uv_strerror(status)));
    return;
  }
  auto* c = new Connection();
  c->owner = self;
  uv_pipe_init(&self->loop_, &c->pipe, 0);
  c->pipe.data = c;
  auto drop = [](Connection* dropped) {
    uv_close(reinterpret_cast<uv_handle_t*>(&dropped->pipe),
             [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
  };
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    drop(c);
    return;
  }
  const int fd = fd_of(c->pipe);
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    c->credentials_known = true;
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->gid = cred.gid;
  }
  // A client sends its hello right after connect(), so it is usually in the socket by the time
  // the daemon accepts: take it now. Only a connection whose hello has not arrived waits, and
  // only those count against the pending limits.
  const HelloRead read = read_waiting_hello(*c);
  if (read == HelloRead::kGone) {
    drop(c);
    return;
  }
  // Connections that never say hello hold a descriptor each for up to kHelloTimeoutMs: bounded
  // per uid, so one user cannot keep another out, and in all, within the descriptor budget.
  if (read == HelloRead::kPartial) {
    // libuv accepts every queued connection before it reads any, so in a burst of clients of one
    // uid the earlier ones may have said their hello by now without the daemon having read it:
    // read those first, so that the burst is not refused for itself.
    if (self->pending_limit_reached(*c)) self->catch_up_hellos(c->uid);
    if (auto refusal = self->pending_limit_reached(*c)) {
      self->logs_.pending_refusals.log(
          uv_now(&self->loop_),
          fmt::format("refused connection (pid {}, uid {}, gid {}) before its hello: {}", c->pid,
                      c->uid, c->gid, *refusal));
      // A peer that may not connect learns nothing about the daemon's limits, as at its hello.
      if (!self->config_.allowed_gids.empty()) c->groups = peer_groups(fd);
      if (c->credentials_known && self->peer_allowed(*c)) {
        send_refusal(fd, ErrorCode::kResourceExhausted, *refusal);
      } else {
        send_refusal(fd, ErrorCode::kPermissionDenied, "permission denied");
      }
      drop(c);
      return;
    }
  }
  if (!self->config_.allowed_gids.empty()) c->groups = peer_groups(fd);
  c->id = self->next_client_id_++;
  c->accepted_ms = uv_now(&self->loop_);
  self->connections_[c->id] = c;
  // Read on even after the hello: EOF is how a client's end is seen.
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read);
  if (read == HelloRead::kWhole) {
    self->handle_hello(*c);
  } else {
    self->start_pending(*c);
  }
}

ControlLoop::HelloRead ControlLoop::read_waiting_hello(Connection& c) {
  const ssize_t got = ::recv(fd_of(c.pipe), reinterpret_cast<char*>(&c.hello) + c.hello_bytes,
                             sizeof(c.hello) - c.hello_bytes, MSG_DONTWAIT);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return HelloRead::kGone;
  if (got > 0) c.hello_bytes += static_cast<std::size_t>(got);
  return c.hello_bytes == sizeof(c.hello) ? HelloRead::kWhole : HelloRead::kPartial;
}

void ControlLoop::catch_up_hellos(uid_t uid) {
  const auto it = pending_by_uid_.find(uid);
  if (it == pending_by_uid_.end()) return;
  // A copy: handling a hello takes its connection out of the list. Closed connections are only
  // deleted in their close callback, later, so every pointer stays valid through the loop.
  const std::vector<Connection*> waiting = it->second;
  for (Connection* w : waiting) {
    switch (read_waiting_hello(*w)) {
      case HelloRead::kGone:
        close_connection(*w, "disconnected");
        break;
      case HelloRead::kWhole:
        handle_hello(*w);
        break;
      case HelloRead::kPartial:
        break;
    }
  }
}

std::optional<std::string> ControlLoop::pending_limit_reached(const Connection& c) const {
  const auto mine = pending_by_uid_.find(c.uid);
  if (mine != pending_by_uid_.end() && mine->second.size() >= config_.max_pending_hellos_per_uid) {
    return fmt::format(
        "too many connections waiting for their hello from uid {} "
        "(limits.max_pending_hellos_per_uid = {})",
        c.uid, config_.max_pending_hellos_per_uid);
  }
  if (pending_hellos_ >= config_.max_pending_hellos) {
    return fmt::format(
        "too many connections waiting for their hello: {} from {} uids "
        "(limits.max_pending_hellos = {})",
        pending_hellos_, pending_by_uid_.size(), config_.max_pending_hellos);
  }
  return std::nullopt;
}

void ControlLoop::start_pending(Connection& c) {
  c.awaiting_hello = true;
  ++pending_hellos_;
  pending_by_uid_[c.uid].push_back(&c);
}

void ControlLoop::end_pending(Connection& c) {
  if (!c.awaiting_hello) return;
  c.awaiting_hello = false;
  --pending_hellos_;
  const auto it = pending_by_uid_.find(c.uid);
  std::erase(it->second, &c);
  if (it->second.empty()) pending_by_uid_.erase(it);
}

void ControlLoop::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(c->read_buffer, sizeof(c->read_buffer));
}

void ControlLoop::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  ControlLoop* self = c->owner;
  if (nread < 0) {
    self->close_connection(*c,
                           nread == UV_EOF ? "disconnected" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (c->session || c->closing) return;  // nothing is expected after hello
  std::size_t take =
      std::min<std::size_t>(static_cast<std::size_t>(nread), sizeof(c->hello) - c->hello_bytes);
  std::memcpy(reinterpret_cast<char*>(&c->hello) + c->hello_bytes, buf->base, take);
  c->hello_bytes += take;
  if (c->hello_bytes == sizeof(c->hello)) self->handle_hello(*c);
}

bool ControlLoop::peer_allowed(const Connection& c) const {
  return allowed_to_connect(c.uid, c.gid, c.groups, config_, daemon_uid_);
}

void ControlLoop::expire_hellos() {
  const uint64_t now = uv_now(&loop_);
  std::vector<Connection*> late;
  for (auto& [id, c] : connections_) {
    if (c->awaiting_hello && now - c->accepted_ms >= kHelloTimeoutMs) late.push_back(c);
  }
  for (Connection* c : late) {
    logs_.hello_timeouts.log(now, fmt::format("closed connection (pid {}, uid {}, gid {}): no "
                                              "hello within {} ms",
                                              c->pid, c->uid, c->gid, kHelloTimeoutMs));
    close_connection(*c, "no hello");
  }
}

void ControlLoop::refuse(Connection& c, ErrorCode code, const std::string& message) {
  logs_.refused_hellos.log(
      uv_now(&loop_),
      fmt::format("refused client (pid {}, uid {}, gid {}): {}", c.pid, c.uid, c.gid, message));
  send_refusal(fd_of(c.pipe), code, message);
  close_connection(c, "refused");
}

std::optional<std::pair<ErrorCode, std::string>> ControlLoop::check_hello_fields(
    const Connection& c) const {
  using namespace wire;
  if (c.hello.protocol_version != kProtocolVersion) {
    return std::pair{ErrorCode::kUnsupported,
                     fmt::format("protocol version mismatch: client speaks {}, daemon speaks {}",
                                 c.hello.protocol_version, kProtocolVersion)};
  }
  // A kind this daemon does not know may be a newer client's; it is not served as a client.
  const auto kind = static_cast<uint32_t>(c.hello.kind);
  if (c.hello.kind != HelloKind::kClient && c.hello.kind != HelloKind::kObserver) {
    return std::pair{ErrorCode::kUnsupported,
                     fmt::format("hello kind {} is unknown: this daemon knows {} (client) and {} "
                                 "(observer)",
                                 kind, static_cast<uint32_t>(HelloKind::kClient),
                                 static_cast<uint32_t>(HelloKind::kObserver))};
  }
  // Reserved fields are zero today, so that a later version can give them a meaning.
  if (c.hello.reserved0 != 0) {
    return std::pair{ErrorCode::kInvalidArgument,
                     fmt::format("hello field reserved0 is {}, must be 0", c.hello.reserved0)};
  }
  return std::nullopt;
}

void ControlLoop::handle_hello(Connection& c) {
  using namespace wire;
  end_pending(c);
  if (c.hello.magic != kHelloMagic) {
    refuse(c, ErrorCode::kInvalidArgument, "not a coproc hello");
    return;
  }
  // Before anything else is said: a peer that may not connect learns nothing
  // about the daemon beyond this refusal.
  if (!c.credentials_known) {
    refuse(c, ErrorCode::kPermissionDenied,
           "permission denied: the kernel gave no credentials for this peer (SO_PEERCRED)");
    return;
  }
  if (!peer_allowed(c)) {
    refuse(c, ErrorCode::kPermissionDenied,
           fmt::format("permission denied: uid {} (gid {}) is not in security.allowed_uids or "
                       "security.allowed_gids",
                       c.uid, c.gid));
    return;
  }
  if (auto wrong = check_hello_fields(c)) {
    refuse(c, wrong->first, wrong->second);
    return;
  }
  if (shutting_down_) {
    refuse(c, ErrorCode::kUnavailable, "the daemon is shutting down");
    return;
  }
  // An observer (coproc-stat) only maps the registry: it gets that descriptor alone, no session,
  // no segment and no stats slot, and is hung up on at once. It is not a client, so the client
  // limit does not apply; the pending-hello limits bound observers like any connection.
  if (c.hello.kind == HelloKind::kObserver) {
    const int registry_fd = registry_.registry_fd();
    if (send_hello_reply(c, 0, {&registry_fd, 1})) {
      spdlog::debug("observer {} (pid {}, uid {}) served", c.id, c.pid, c.uid);
      close_connection(c, "observer served");
    }
    return;
  }
  if (sessions_.size() >= config_.max_clients) {
    refuse(c, ErrorCode::kResourceExhausted,
           fmt::format("too many clients (limits.max_clients = {}): {} connected",
                       config_.max_clients, sessions_.size()));
    return;
  }
  SegmentGeometry geometry{config_.ring_slots, config_.slot_bytes, config_.arena_bytes};
  auto session = ClientSession::create(c.id, c.pid, c.uid, geometry, numa_node_);
  if (!session.ok()) {
    refuse(c, session.error().code, "cannot create the client segment: " + session.error().message);
    return;
  }
  c.session = session.value();
  wire::DaemonInfo& info = registry_.daemon_info();
  c.stats_slot = registry_.acquire_client_slot(c.id, c.pid, c.uid);
  if (c.stats_slot >= 0) {
    c.session->attach_stats(
        &registry_.client_stats(c.stats_slot),
        [registry = &registry_, slot = c.stats_slot] { registry->release_client_slot(slot); });
  } else {
    bump_gauge(info.clients_untracked, 1);
  }
  // Into the poller's table before the reply: once the client has its fds it
  // may push and ring at once, and the poller must already know its ring.
  sessions_.add(c.session);
  // Counted from here, so close_connection's decrement always has its increment, even when the
  // reply below fails.
  c.counted = true;
  bump_gauge(info.clients_total, 1);
  info.clients_connected.store(++clients_connected_, std::memory_order_relaxed);

  const int fds[kHelloFdCount] = {c.session->segment_fd(), registry_.registry_fd(),
                                  registry_.doorbell_fd(), c.session->event_fd()};
  if (!send_hello_reply(c, c.session->segment_bytes(), fds)) return;
  logs_.connects.log(uv_now(&loop_),
                     fmt::format("client {} connected: pid {}, uid {}, gid {}, segment {} bytes",
                                 c.id, c.pid, c.uid, c.gid, c.session->segment_bytes()));
}

bool ControlLoop::send_hello_reply(Connection& c, uint64_t segment_bytes,
                                   std::span<const int> fds) {
  using namespace wire;
  COPROC_CHECK(!fds.empty() && fds.size() <= static_cast<std::size_t>(kHelloFdCount));
  HelloReply reply{};
  reply.magic = kHelloMagic;
  reply.protocol_version = kProtocolVersion;
  reply.status = 0;
  reply.client_id = c.id;
  reply.segment_bytes = segment_bytes;
  reply.registry_bytes = registry_.registry_bytes();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kHelloFdCount)] = {};
  iovec iov{&reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  if (::sendmsg(fd_of(c.pipe), &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(reply))) {
    const int err = errno;
    logs_.failed_replies.log(
        uv_now(&loop_), fmt::format("hello reply to pid {} failed: {}", c.pid, std::strerror(err)));
    close_connection(c, "hello reply failed");
    return false;
  }
  return true;
}

}  // namespace coproc::daemon
