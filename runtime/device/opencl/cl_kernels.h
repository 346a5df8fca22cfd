// Kernels for the OpenCL device (kernels/opencl), made by the same plan() functions that make the
// CPU's (PlanContext::cl): the operator's checks, shapes and layouts are derived once, in its
// plan(), and only the last step, binding a kernel, differs. Internal to the runtime.
//
// A kernel made here ENQUEUES its work on the device's queue and returns; ClSession::run waits
// once, at the end of a run. Its KernelIO pointers are `const kernels::opencl::Mem*` (nullptr for
// an absent tensor), never host memory.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "coproc/kernels/opencl.h"
#include "ops/ops.h"

namespace coproc::runtime::detail {

namespace ocl = kernels::opencl;

ocl::DType cl_dtype(DType dtype);

// The device Mem behind operand k of a kernel made here; Mem{} for an absent one.
ocl::Mem cl_in(const KernelIO& io, std::size_t k);
ocl::Mem cl_out(const KernelIO& io, std::size_t k);
// A Mem `bytes` further into the same buffer.
ocl::Mem cl_advance(ocl::Mem mem, int64_t bytes);

// Dense row-major strides of `shape`, right-aligned into `rank` dims (0 for dims it lacks).
void cl_dense_strides(const Shape& shape, int rank, int64_t* strides);

// An elementwise operator over numpy broadcasting: inputs 0..n-1 of the node (n = 1 to 3, in
// ElementwiseCall operand order a, b, c) broadcast to `out`.
Result<std::unique_ptr<Kernel>> cl_elementwise(const PlanContext& ctx, ocl::Elementwise op,
                                               DType value_dtype, const Shape& out);

std::unique_ptr<Kernel> cl_cast(ocl::Device& device, DType from, DType to, int64_t elements);

// One strided copy of an operator made of them (Transpose, Slice, Concat, Expand): input
// `input`'s elements at src_offset plus index times src strides go to the output at dst_offset
// plus index times dst strides. Offsets and strides in elements.
struct ClCopy {
  std::size_t input = 0;
  ocl::Strided layout;  // out: the destination's strides; a: the source's
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
};
std::unique_ptr<Kernel> cl_copies(ocl::Device& device, DType dtype, std::vector<ClCopy> copies);

std::unique_ptr<Kernel> cl_fill(ocl::Device& device, DType dtype, const void* value,
                                int64_t elements);
std::unique_ptr<Kernel> cl_gather(ocl::Device& device, const ocl::GatherCall& call);
std::unique_ptr<Kernel> cl_reduce(ocl::Device& device, const ocl::ReduceCall& call);
std::unique_ptr<Kernel> cl_softmax(ocl::Device& device, const ocl::SoftmaxCall& call);
std::unique_ptr<Kernel> cl_layer_norm(ocl::Device& device, const ocl::LayerNormCall& call);

// C = alpha * op(A) op(B) + beta * C over `batch` matrices (stride in elements, 0: shared), with
// the operand order of a node: A input 0, B input 1, C the output. With copy_c, input 2
// broadcast into C first (Gemm's C); with bias, input 2 (n values) added to each row and then
// the activation (MatMulBias).
struct ClGemm {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0, lda = 1, ldb = 1, ldc = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
  bool copy_c = false;
  ocl::Strided c_layout;  // copy_c: input 2 (a) broadcast into the output (out)
  bool bias = false;
  ocl::Activation activation = ocl::Activation::kNone;
};
Result<std::unique_ptr<Kernel>> cl_gemm(const PlanContext& ctx, const ClGemm& gemm);

// MatMul whose batch dims broadcast irregularly: one GEMM per output matrix, operands at the
// given element offsets.
struct ClGemmList {
  int64_t m = 0, n = 0, k = 0;
  std::vector<std::array<int64_t, 3>> offsets;  // a, b, c
};
Result<std::unique_ptr<Kernel>> cl_gemm_list(const PlanContext& ctx, const ClGemmList& list);

}  // namespace coproc::runtime::detail
