#include "control/listener.h"

#include <fmt/format.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace coproc::daemon {

namespace {
namespace fs = std::filesystem;

// While bind() creates the socket file it gets 0600 at most, so it is never
// wider than the configured mode, not even before the chmod.
constexpr mode_t kBindUmask = 0177;

Error start_error(std::string message) {
  return make_error(ErrorCode::kUnavailable, std::move(message));
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

}  // namespace

Status listen_on_control_socket(const Config& config, uid_t daemon_uid, uv_loop_t* loop,
                                uv_pipe_t* server, void* owner, uv_connection_cb on_connection) {
  fs::path path(config.socket_path);
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (Status s = check_socket_directory(dir, daemon_uid); !s) return s;
  auto group = resolve_socket_group(config.socket_group);
  if (!group) return group.error();

  // A socket file may be left over from a daemon that crashed. Take it over
  // only if nothing answers on it.
  if (fs::exists(path, ec)) {
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, config.socket_path.c_str(), sizeof(addr.sun_path) - 1);
    bool alive = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(probe);
    if (alive) {
      return make_error(ErrorCode::kUnavailable,
                        "another daemon is already listening on " + config.socket_path);
    }
    ::unlink(config.socket_path.c_str());
  }

  uv_pipe_init(loop, server, 0);
  server->data = owner;
  // umask is per process; no other thread creates files while the daemon
  // starts (the poller and dispatcher start after listen()).
  const mode_t old_umask = ::umask(kBindUmask);
  const int bound = uv_pipe_bind(server, config.socket_path.c_str());
  ::umask(old_umask);
  if (bound != 0) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot bind " + config.socket_path + ": " + uv_strerror(bound));
  }
  // Group and mode before listen(): until then a connect() is refused, so no
  // one can connect under looser permissions. chown first, since it may clear
  // mode bits.
  const char* socket_file = config.socket_path.c_str();
  if (group.value() && ::chown(socket_file, static_cast<uid_t>(-1), **group) != 0) {
    const int err = errno;
    ::unlink(socket_file);
    return start_error(fmt::format("cannot give {} to group {} (security.socket_group): {}",
                                   config.socket_path, **group, std::strerror(err)));
  }
  if (::chmod(socket_file, static_cast<mode_t>(config.socket_mode)) != 0) {
    const int err = errno;
    ::unlink(socket_file);
    return start_error(fmt::format("cannot set mode {:04o} on {} (security.socket_mode): {}",
                                   config.socket_mode, config.socket_path, std::strerror(err)));
  }
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(server), 128, on_connection); rc != 0) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot listen on " + config.socket_path + ": " + uv_strerror(rc));
  }
  return {};
}

}  // namespace coproc::daemon
