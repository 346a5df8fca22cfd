// Test harness: a real coprocd process on a private socket (tools/launcher, which
// coproc-bench shares), and helpers to run code in real child processes. Every wait
// is bounded, so a broken daemon fails a test instead of hanging it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "launcher/private_daemon.h"

namespace coproc::test {

std::string models_dir();    // build/models
std::string coprocd_path();  // build/bin/coprocd

// A coprocd for one test: launcher::PrivateDaemon with the tests' defaults (build/bin/coprocd,
// stderr collected in log(), SIGKILL at the end). `args` are its flags; a private --socket is
// added. started() is false if it exited first or did not open its socket within 30 s.
class DaemonProcess : public launcher::PrivateDaemon {
 public:
  explicit DaemonProcess(std::vector<std::string> args);
};

// The standard daemon of the tests: noop and mlp models.
std::vector<std::string> standard_models();

// Writes a TOML config for a test daemon (a file per test process and name); returns its path.
std::string write_config(const std::string& name, const std::string& text);
// A [[model]] table for build/models/NAME.onnx with extra `keys` (batching policy lines).
std::string model_block(const std::string& name, const std::string& keys = "");

// Runs `body` in a forked child; returns its exit code (or 128 + signal).
// The child exits with body()'s return value.
int run_in_child(const std::function<int()>& body, int timeout_ms = 60000);

// The same in two steps, for children that run while the test does other work: fork now, wait
// later. Fork only from a test's one thread: a child forked while another thread of the test
// holds a lock (the allocator's, a stream's) inherits it held, and hangs on it.
pid_t start_child(const std::function<int()>& body);
// Waits up to timeout_ms for a child of start_child; its exit code (or 128 + signal), or 255
// after killing it at the timeout.
int wait_child(pid_t pid, int timeout_ms = 60000);

// Counts this daemon's mappings of client segments, from /proc/PID/maps.
int count_client_segment_mappings(pid_t daemon_pid);

// Reads a raw float32 file.
std::vector<float> read_f32(const std::string& path);

}  // namespace coproc::test
