// Where a client looks for coprocd when it is not told: $COPROC_SOCKET, else
// the daemon's default path. Shared by libcoproc and the tools so that every
// program a user runs finds the same daemon.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace coproc::wire {

inline std::string default_socket_path() {
  if (const char* env = std::getenv("COPROC_SOCKET"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
    return std::string(xdg) + "/coproc/coprocd.sock";
  }
  return "/tmp/coproc-" + std::to_string(::getuid()) + "/coprocd.sock";
}

}  // namespace coproc::wire
