// The LLM device's OpenCL program text (llm.cl), embedded at build time by
// kernels/opencl/embed_cl.cmake into the build directory. Internal to runtime/llm.
#pragma once

#include <span>

namespace coproc::llm::cl {

// The program's source strings, in the order clCreateProgramWithSource must see them.
std::span<const char* const> program_sources();

}  // namespace coproc::llm::cl
