// coproc-bench compare (every transport against a private daemon, one run) and
// coproc-bench latency (ping-pong against a running daemon).
#pragma once

#include "common/command.h"

namespace coproc::bench {

Command add_compare_command(CLI::App& app);
Command add_latency_command(CLI::App& app);

}  // namespace coproc::bench
