// One connection on the control socket, from accept until it closes: waiting for its hello, then
// either a client (with a session) or gone. Loop thread only; private to control*.cc.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "control/control.h"
#include "coproc/segment.h"
#include "ingest/client_session.h"

namespace coproc::daemon {

// The uid of a peer whose credentials the kernel did not give (never a real uid: (uid_t)-1 means
// "no change" to chown).
inline constexpr uid_t kUnknownUid = static_cast<uid_t>(-1);

struct ControlLoop::Connection {
  uv_pipe_t pipe{};
  ControlLoop* owner = nullptr;
  uint32_t id = 0;
  // From SO_PEERCRED, taken by the kernel when the peer called connect().
  bool credentials_known = false;
  pid_t pid = 0;
  uid_t uid = kUnknownUid;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary; read only when allowed_gids is set
  uint64_t accepted_ms = 0;   // uv_now() at accept
  // In pending_hellos_ and pending_by_uid_ (ControlLoop::end_pending takes it out).
  bool awaiting_hello = false;
  wire::HelloRequest hello{};
  std::size_t hello_bytes = 0;
  char read_buffer[256];
  std::shared_ptr<ClientSession> session;
  int stats_slot = -1;   // the client's slot in the stats page, -1: none
  bool counted = false;  // in clients_connected_
  bool closing = false;
};

}  // namespace coproc::daemon
