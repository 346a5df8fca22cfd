// The one way the tests and coproc-bench start a coprocd of their own: a private
// directory under /tmp with the socket (and the config and log, when asked for),
// fork and exec, and a bounded wait until the socket accepts connections. Every
// wait is bounded, so a daemon that does not come up fails its caller instead of
// hanging it.
//
// No test framework here: coproc-bench is an installed binary and links this too.
// tests/support/daemon_process.h and bench/common/private_daemon.h are the two
// sets of defaults over it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace coproc::launcher {

// Whether a daemon accepts connections on the socket at `path` (a connect() that succeeds).
bool socket_accepts(const std::string& path);

struct LaunchOptions {
  std::string coprocd;  // path of the coprocd binary
  // Its flags. --socket DIR/coprocd.sock goes before them, and --http-listen 127.0.0.1:0
  // (any free port: daemons run side by side) unless they name --http-listen.
  std::vector<std::string> args;
  // Non-empty: written to DIR/coprocd.toml and passed as --config, first.
  std::string config_toml;
  std::string dir_prefix = "coproc";  // DIR is /tmp/<dir_prefix>-XXXXXX
  // true: the daemon's stderr goes to DIR/coprocd.log (log()); false: it shares ours.
  bool capture_log = false;
  // What the destructor sends a daemon that is still running, before it waits for it to exit.
  int stop_signal = SIGKILL;
};

class PrivateDaemon {
 public:
  // Starts the daemon; waits up to 30 s for its socket to accept. started() is false if it
  // exited first, did not open the socket in time or could not be started (error() says which).
  explicit PrivateDaemon(LaunchOptions options);
  ~PrivateDaemon();
  PrivateDaemon(const PrivateDaemon&) = delete;
  PrivateDaemon& operator=(const PrivateDaemon&) = delete;

  bool started() const { return started_; }
  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& log();  // its stderr so far (capture_log)

  void signal(int sig) const;
  // SIGSTOP, then waits until every thread of the daemon is stopped.
  bool stop_and_wait(int timeout_ms) const;
  // Waits for the process to exit (up to timeout_ms); returns the raw wait status, or -1 on
  // timeout.
  int wait_exit(int timeout_ms);

 private:
  void start(LaunchOptions& options);

  int stop_signal_;
  pid_t pid_ = -1;
  bool started_ = false;
  bool reaped_ = false;
  int exit_status_ = 0;
  std::string dir_;
  std::string socket_path_;
  std::string log_path_;
  std::string log_;
  std::string error_;
};

}  // namespace coproc::launcher
