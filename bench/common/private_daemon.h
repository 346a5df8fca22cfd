// A coprocd started by the benchmark for its own use: a private socket in a
// temporary directory, the requested model, stopped with SIGTERM at the end.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace coproc::bench {

struct ServedModel {
  std::string name;
  std::string path;
};

class PrivateDaemon {
 public:
  // Starts build/bin/coprocd (next to this binary) serving `model_path` as
  // `model_name`, with `batching` (TOML keys of its [[model]] table, e.g.
  // "max_batch = 1"), OpenBLAS on `cpu_threads` and coproc's own kernels on
  // `intra_op_threads`; waits until its socket accepts connections.
  PrivateDaemon(const std::string& model_name, const std::string& model_path, int cpu_threads,
                const std::string& batching = "", int intra_op_threads = 1);
  // The same serving every one of `models`, `batching` in each [[model]] table.
  PrivateDaemon(const std::vector<ServedModel>& models, int cpu_threads,
                const std::string& batching = "", int intra_op_threads = 1);
  ~PrivateDaemon();
  PrivateDaemon(const PrivateDaemon&) = delete;
  PrivateDaemon& operator=(const PrivateDaemon&) = delete;

  bool ok() const { return pid_ > 0 && error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& socket_path() const { return socket_path_; }

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string socket_path_;
  std::string error_;
};

// Directory of the running executable (build/bin).
std::string executable_dir();

}  // namespace coproc::bench
