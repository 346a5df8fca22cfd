// Strided boxes as the kernels take them. Internal to kernels/opencl.
#pragma once

#include <CL/cl.h>

#include <cstdint>
#include <initializer_list>

#include "coproc/kernels/opencl.h"

namespace coproc::kernels::opencl::detail {

inline constexpr int kMaxOperands = 4;  // an elementwise output and three operands

// A box of `rank` dims (outermost first) and the strides each operand walks it with, in
// elements.
struct Box {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[kMaxOperands][kMaxRank] = {};
};

// The same box visiting the same elements in the same row-major order, with fewer dims: dims of
// length 1 are dropped (their strides never move), and a dim merges into the one outside it when
// every operand's stride there is its stride inside times the inner length. Dense operands of
// one shape become one dim; the kernels divide once per remaining dim but the outermost.
// `strides` holds one array of `rank` strides per operand (at most kMaxOperands).
Box simplify(int rank, const int64_t* dims, std::initializer_list<const int64_t*> strides);

// The product of dims[0, rank): 1 for rank 0.
int64_t product(const int64_t* dims, int rank);

// Eight values as a kernel's long8 argument (a box's dims or strides, zero past its rank).
cl_long8 long8(const int64_t (&values)[kMaxRank]);

}  // namespace coproc::kernels::opencl::detail
