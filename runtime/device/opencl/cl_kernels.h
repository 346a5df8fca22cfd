// The OpenCL device's Binder (plan/plan.h): the DeviceCalls operators choose (ops/device_call.h)
// made into kernels of kernels/opencl. Internal to the runtime.
//
// A kernel made here ENQUEUES its work on the device's queue and returns; ClSession::run waits
// once, at the end of a run. Its KernelIO pointers are `const kernels::opencl::Mem*` (nullptr for
// an absent tensor), never host memory. Binding compiles (CLBlast's GEMMs) and allocates
// (attention's scores) what a kernel will need, so that running it does neither; a call the
// device does not run is refused with kUnsupported, naming the node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "coproc/kernels/opencl.h"
#include "ops/ops.h"
#include "plan/plan.h"

namespace coproc::runtime::detail {

namespace ocl = kernels::opencl;

// The binder for `device`, which must outlive it. Holding the device's lock is the caller's part
// (ClSession binds under it).
std::unique_ptr<Binder> make_cl_binder(ocl::Device& device);

// For the kernels of this folder: the device Mem behind operand k of a kernel; Mem{} for an
// absent one.
ocl::Mem cl_in(const KernelIO& io, std::size_t k);
ocl::Mem cl_out(const KernelIO& io, std::size_t k);
// A Mem `bytes` further into the same buffer.
ocl::Mem cl_advance(ocl::Mem mem, int64_t bytes);

// coproc.Attention (cl_attention.cc).
Result<std::unique_ptr<Kernel>> bind_cl_attention(ocl::Device& device, const Node& node,
                                                  const AttentionCall& call);

}  // namespace coproc::runtime::detail
