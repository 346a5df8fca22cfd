#include "control/peer_acl.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace coproc::daemon {

namespace {

bool contains(const std::vector<uint32_t>& ids, uint32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

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

bool allowed_to_connect(uid_t uid, gid_t gid, std::span<const gid_t> groups, const Config& config,
                        uid_t daemon_uid) {
  if (uid == 0 || uid == daemon_uid) return true;
  if (contains(config.allowed_uids, uid) || contains(config.allowed_gids, gid)) return true;
  return std::any_of(groups.begin(), groups.end(),
                     [&](gid_t g) { return contains(config.allowed_gids, g); });
}

}  // namespace coproc::daemon
