// The OpenCL program's source text, embedded at build time (embed_cl.cmake writes the
// definition into the build directory). Internal to kernels/opencl.
#pragma once

#include <span>

namespace coproc::kernels::opencl::detail {

// kernel_codes.h and the .cl files, in the order clCreateProgramWithSource must see them.
std::span<const char* const> program_sources();

}  // namespace coproc::kernels::opencl::detail
