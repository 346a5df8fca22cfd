// What every benchmark prints beside its numbers: the CPU they were measured on.
#pragma once

#include <string>

namespace coproc::bench {

// /proc/cpuinfo's first "model name", e.g. "AMD EPYC"; "unknown" where there is none.
std::string cpu_model();

}  // namespace coproc::bench
