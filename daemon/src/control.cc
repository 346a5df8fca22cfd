#include "control.h"

#include <fmt/format.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include "coproc/ring/wait.h"

namespace coproc::daemon {

namespace {
namespace fs = std::filesystem;

constexpr uint64_t kHeartbeatMs = 1000;
constexpr uint64_t kDrainCheckMs = 1;
// A connection that has not sent its whole hello by then is closed (checked
// on the heartbeat, so after 5 to 6 s); the client library waits 5 s for the
// reply.
constexpr uint64_t kHelloTimeoutMs = 5000;
// At most this many refusals are logged per second; the rest are counted and
// the count logged, so a peer connecting in a loop cannot flood the log.
// Descriptors a connected client holds in the daemon: its socket, its
// segment's memfd and its eventfd.
constexpr rlim_t kFdsPerClient = 3;
// The daemon's own descriptors: stdio, the listening socket, libuv's, the
// registry and the doorbell, files while models load.
constexpr rlim_t kFdsReserved = 64;
// While bind() creates the socket file it gets 0600 at most, so it is never
// wider than the configured mode, not even before the chmod.
constexpr mode_t kBindUmask = 0177;

Error start_error(std::string message) {
  return make_error(ErrorCode::kUnavailable, std::move(message));
}

// Clients beyond the descriptor limit would be refused for want of a memfd;
// raise the soft limit to what limits.max_clients needs, as far as the hard
// limit allows, and say so when it does not.
void raise_descriptor_limit(uint32_t max_clients) {
  // Each client's three, plus one per connection waiting to say hello.
  const rlim_t need = (kFdsPerClient + 1) * max_clients + kFdsReserved;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= need) return;
  rlimit raised = limit;
  raised.rlim_cur = std::min(need, limit.rlim_max);
  if (raised.rlim_cur > limit.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  if (limit.rlim_cur < need) {
    spdlog::warn(
        "RLIMIT_NOFILE is {} (hard {}), below the {} descriptors that "
        "limits.max_clients = {} needs: connections beyond it will be refused",
        limit.rlim_cur, limit.rlim_max, need, max_clients);
  }
}

// Whoever may write the socket's directory can replace the socket with their
// own and receive the clients' requests (and the tensors in them).
Status check_socket_directory(const fs::path& dir, uid_t daemon_uid) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return start_error(
        fmt::format("cannot use socket directory {}: {}", dir.string(), std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return start_error(fmt::format("socket directory {} is not a directory", dir.string()));
  }
  if (st.st_uid != 0 && st.st_uid != daemon_uid) {
    return start_error(fmt::format(
        "socket directory {} belongs to uid {}, not to the daemon's uid {} or root: its owner "
        "could replace the socket",
        dir.string(), st.st_uid, daemon_uid));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return start_error(fmt::format(
        "socket directory {} has mode {:04o}: group or others may write there and replace the "
        "socket (chmod go-w, or set the sticky bit)",
        dir.string(), st.st_mode & 07777));
  }
  return {};
}

// security.socket_group: digits are a gid (config.cc keeps only valid ones),
// anything else a group name looked up now.
Result<std::optional<gid_t>> resolve_socket_group(const std::string& group) {
  if (group.empty()) return std::optional<gid_t>();
  uint32_t gid = 0;
  const auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), gid);
  if (ec == std::errc{} && end == group.data() + group.size()) return std::optional<gid_t>(gid);
  std::vector<char> buffer(4096);
  struct group entry {};
  struct group* found = nullptr;
  int err = 0;
  while ((err = ::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found)) ==
         ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (err != 0 || found == nullptr) {
    return start_error(fmt::format("security.socket_group = \"{}\": {}", group,
                                   err != 0 ? std::strerror(err) : "no such group"));
  }
  return std::optional<gid_t>(found->gr_gid);
}

// The peer's supplementary groups as the kernel recorded them at connect()
// (SO_PEERGROUPS, Linux 4.13): the connecting process's own, not a lookup in
// the group database. Empty when the kernel cannot say.
std::vector<gid_t> peer_groups(int fd) {
  std::vector<gid_t> groups(32);
  for (;;) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    // ERANGE: len now holds the size needed (NGROUPS_MAX bounds it).
    if (errno != ERANGE || len / sizeof(gid_t) <= groups.size()) return {};
    groups.resize(len / sizeof(gid_t));
  }
}

// The control loop is the only writer of the daemon's client gauges (relaxed: standalone values).
void bump_gauge(std::atomic<uint64_t>& gauge, uint64_t by) {
  gauge.store(gauge.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

bool contains(const std::vector<uint32_t>& ids, uint32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}
}  // namespace

struct ControlLoop::Connection {
  uv_pipe_t pipe{};
  ControlLoop* owner = nullptr;
  uint32_t id = 0;
  // From SO_PEERCRED, taken by the kernel when the peer called connect().
  bool credentials_known = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary; read only when allowed_gids is set
  uint64_t accepted_ms = 0;   // uv_now() at accept
  bool awaiting_hello = true;
  wire::HelloRequest hello{};
  std::size_t hello_bytes = 0;
  char read_buffer[256];
  std::shared_ptr<ClientSession> session;
  int stats_slot = -1;  // the client's slot in the stats page, -1: none
  bool counted = false;   // in clients_connected_
  bool closing = false;
};

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
  raise_descriptor_limit(config_.max_clients);
  fs::path path(config_.socket_path);
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (Status s = check_socket_directory(dir, daemon_uid_); !s) return s;
  auto group = resolve_socket_group(config_.socket_group);
  if (!group) return group.error();

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
  // umask is per process; no other thread creates files while the daemon
  // starts (the poller and batcher start after listen()).
  const mode_t old_umask = ::umask(kBindUmask);
  const int bound = uv_pipe_bind(&server_, config_.socket_path.c_str());
  ::umask(old_umask);
  if (bound != 0) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot bind " + config_.socket_path + ": " + uv_strerror(bound));
  }
  // Group and mode before listen(): until then a connect() is refused, so no
  // one can connect under looser permissions. chown first, since it may clear
  // mode bits.
  const char* socket_file = config_.socket_path.c_str();
  if (group.value() && ::chown(socket_file, static_cast<uid_t>(-1), **group) != 0) {
    const int err = errno;
    ::unlink(socket_file);
    return start_error(fmt::format("cannot give {} to group {} (security.socket_group): {}",
                                   config_.socket_path, **group, std::strerror(err)));
  }
  if (::chmod(socket_file, static_cast<mode_t>(config_.socket_mode)) != 0) {
    const int err = errno;
    ::unlink(socket_file);
    return start_error(fmt::format("cannot set mode {:04o} on {} (security.socket_mode): {}",
                                   config_.socket_mode, config_.socket_path, std::strerror(err)));
  }
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, on_connection); rc != 0) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot listen on " + config_.socket_path + ": " + uv_strerror(rc));
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

void ControlLoop::run(Poller& poller, Batcher& batcher) {
  poller_ = &poller;
  batcher_ = &batcher;
  uv_timer_init(&loop_, &heartbeat_);
  uv_timer_start(&heartbeat_, [](uv_timer_t* t) {
    auto* self = static_cast<ControlLoop*>(t->loop->data);
    self->registry_.heartbeat();
    self->sampler_.sample(static_cast<uint64_t>(ring::monotonic_ns()));
    self->expire_hellos();
    self->refusal_log_.flush(uv_now(&self->loop_));
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

void ControlLoop::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlLoop*>(server->data);
  if (status < 0) {
    self->log_refusal(fmt::format("accept failed: {}", uv_strerror(status)));
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
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd);
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    c->credentials_known = true;
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->gid = cred.gid;
  }
  // Connections that never say hello hold a descriptor each: at most
  // max_clients of them at once, each for at most kHelloTimeoutMs.
  if (self->pending_hellos_ >= self->config_.max_clients) {
    self->log_refusal(fmt::format(
        "closed connection (pid {}, uid {}, gid {}) at once: {} connections are already waiting "
        "to say hello (limits.max_clients = {})",
        c->pid, c->uid, c->gid, self->pending_hellos_, self->config_.max_clients));
    drop(c);
    return;
  }
  if (!self->config_.allowed_gids.empty()) c->groups = peer_groups(fd);
  c->id = self->next_client_id_++;
  c->accepted_ms = uv_now(&self->loop_);
  self->connections_[c->id] = c;
  ++self->pending_hellos_;
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

// docs/threat-model.md, "Who may connect". Root and the daemon's own uid can
// read and write the daemon's memory anyway (ptrace, /proc/PID/mem), so
// refusing them would protect nothing.
bool ControlLoop::peer_allowed(const Connection& c) const {
  if (c.uid == 0 || c.uid == daemon_uid_) return true;
  if (contains(config_.allowed_uids, c.uid) || contains(config_.allowed_gids, c.gid)) return true;
  return std::any_of(c.groups.begin(), c.groups.end(),
                     [&](gid_t g) { return contains(config_.allowed_gids, g); });
}

void ControlLoop::log_refusal(const std::string& line) { refusal_log_.warn(uv_now(&loop_), line); }

void ControlLoop::expire_hellos() {
  const uint64_t now = uv_now(&loop_);
  std::vector<Connection*> late;
  for (auto& [id, c] : connections_) {
    if (c->awaiting_hello && now - c->accepted_ms >= kHelloTimeoutMs) late.push_back(c);
  }
  for (Connection* c : late) {
    log_refusal(fmt::format("closed connection (pid {}, uid {}, gid {}): no hello within {} ms",
                            c->pid, c->uid, c->gid, kHelloTimeoutMs));
    close_connection(*c, "no hello");
  }
}

void ControlLoop::refuse(Connection& c, ErrorCode code, const std::string& message) {
  log_refusal(fmt::format("refused client (pid {}, uid {}, gid {}): {}", c.pid, c.uid, c.gid,
                          message));
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
  c.awaiting_hello = false;
  --pending_hellos_;
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
  // An observer (coproc-stat) only maps the registry: it gets that descriptor alone, no session,
  // no segment and no stats slot, and is hung up on at once. It is not a client, so the client
  // limit does not apply; pending_hellos_ bounds observers like any connection.
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
  wire::DaemonInfo& info = registry_.daemon_info();
  c.stats_slot = registry_.acquire_client_slot(c.id, c.pid, c.uid);
  if (c.stats_slot >= 0) {
    c.session->attach_stats(&registry_.client_stats(c.stats_slot),
                            [registry = &registry_, slot = c.stats_slot] {
                              registry->release_client_slot(slot);
                            });
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
  spdlog::info("client {} connected: pid {}, uid {}, gid {}, segment {} bytes", c.id, c.pid,
               c.uid, c.gid, c.session->segment_bytes());
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
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&c.pipe), &fd);
  if (::sendmsg(fd, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(reply))) {
    spdlog::warn("hello reply to pid {} failed: {}", c.pid, std::strerror(errno));
    close_connection(c, "hello reply failed");
    return false;
  }
  return true;
}

void ControlLoop::close_connection(Connection& c, const char* why) {
  if (c.closing) return;
  c.closing = true;
  if (c.awaiting_hello) {
    c.awaiting_hello = false;
    --pending_hellos_;
  }
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
