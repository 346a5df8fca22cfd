// Who may connect (docs/threat-model.md, "Who may connect"): a peer's kernel
// credentials, taken when it called connect(), against security.allowed_uids and
// security.allowed_gids. The control loop asks at each hello, and before telling
// a peer over a pending-hello limit which limit it hit.
#pragma once

#include <sys/types.h>

#include <span>
#include <vector>

#include "config/config.h"

namespace coproc::daemon {

// The peer's supplementary groups as the kernel recorded them at connect()
// (SO_PEERGROUPS, Linux 4.13): the connecting process's own, not a lookup in
// the group database. Empty when the kernel cannot say.
std::vector<gid_t> peer_groups(int fd);

// Root and the daemon's own uid are always allowed: they can read and write the
// daemon's memory anyway (ptrace, /proc/PID/mem), so refusing them would protect
// nothing. Beyond them, a peer whose uid is in allowed_uids, or whose gid or one
// of whose supplementary `groups` is in allowed_gids.
bool allowed_to_connect(uid_t uid, gid_t gid, std::span<const gid_t> groups, const Config& config,
                        uid_t daemon_uid);

}  // namespace coproc::daemon
