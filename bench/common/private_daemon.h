// A coprocd started by the benchmark for its own use: the launcher's private
// socket in a temporary directory, the requested models in a config written
// there, stopped with SIGTERM at the end. Its log shares the benchmark's stderr.
#pragma once

#include <string>
#include <vector>

#include "launcher/private_daemon.h"

namespace coproc::bench {

struct ServedModel {
  std::string name;
  std::string path;
};

class PrivateDaemon : public launcher::PrivateDaemon {
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
};

// Directory of the running executable (build/bin).
std::string executable_dir();

}  // namespace coproc::bench
