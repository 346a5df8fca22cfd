// coproc-bench llm: the LLM engine against llama.cpp (llm_bench.h).
#pragma once

#include "common/command.h"

namespace coproc::bench {

Command add_llm_command(CLI::App& app);

}  // namespace coproc::bench
