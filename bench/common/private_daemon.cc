#include "common/private_daemon.h"

#include <filesystem>

namespace coproc::bench {

namespace {

launcher::LaunchOptions bench_daemon(const std::vector<ServedModel>& models, int cpu_threads,
                                     const std::string& batching, int intra_op_threads) {
  launcher::LaunchOptions o;
  o.coprocd = executable_dir() + "/coprocd";
  for (const ServedModel& m : models) {
    o.config_toml +=
        "[[model]]\nname = \"" + m.name + "\"\npath = \"" + m.path + "\"\n" + batching + "\n";
  }
  o.args = {"--http-listen",      "127.0.0.1:0",
            "--cpu-threads",      std::to_string(cpu_threads),
            "--intra-op-threads", std::to_string(intra_op_threads),
            "--log-level",        "warn"};
  o.dir_prefix = "coproc-bench";
  o.capture_log = false;
  o.stop_signal = SIGTERM;
  return o;
}

}  // namespace

std::string executable_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

PrivateDaemon::PrivateDaemon(const std::string& model_name, const std::string& model_path,
                             int cpu_threads, const std::string& batching, int intra_op_threads)
    : PrivateDaemon(std::vector<ServedModel>{{model_name, model_path}}, cpu_threads, batching,
                    intra_op_threads) {}

PrivateDaemon::PrivateDaemon(const std::vector<ServedModel>& models, int cpu_threads,
                             const std::string& batching, int intra_op_threads)
    : launcher::PrivateDaemon(bench_daemon(models, cpu_threads, batching, intra_op_threads)) {}

}  // namespace coproc::bench
