// The control socket, from the configured path to a listening libuv pipe
// (docs/threat-model.md, "Who may connect"): the socket's directory must not let
// anyone but the daemon's uid or root replace the socket; a socket a live daemon
// answers on is refused, a stale one taken over; the file is bound under a umask
// that keeps it private, then given security.socket_group and security.socket_mode
// before listen(), so no one connects under looser permissions than configured.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "coproc/base/result.h"

namespace coproc::daemon {

// Initialises `server` on `loop` (server->data = owner) and makes it listen on
// config.socket_path, calling on_connection for each connection. On an error the
// socket file is left as the step that failed found it (a chown or chmod that
// fails removes the file it bound). Call before any other thread starts: the
// umask is per process.
Status listen_on_control_socket(const Config& config, uid_t daemon_uid, uv_loop_t* loop,
                                uv_pipe_t* server, void* owner, uv_connection_cb on_connection);

}  // namespace coproc::daemon
