// The numbers the host passes to a kernel to choose what it computes. Both sides compile this
// file: the C++ sources include it, and the OpenCL program is built with it ahead of the .cl
// files (CMakeLists.txt), so the two cannot disagree. Plain preprocessor definitions only, since
// OpenCL C has no enums to share with C++.
#ifndef COPROC_KERNELS_OPENCL_KERNEL_CODES_H_
#define COPROC_KERNELS_OPENCL_KERNEL_CODES_H_

// unary_f32: the float functions of Elementwise.
#define COPROC_UNARY_RELU 0
#define COPROC_UNARY_SIGMOID 1
#define COPROC_UNARY_TANH 2
#define COPROC_UNARY_ERF 3
#define COPROC_UNARY_EXP 4
#define COPROC_UNARY_SQRT 5
#define COPROC_UNARY_RECIPROCAL 6
#define COPROC_UNARY_GELU 7
#define COPROC_UNARY_NEG 8

// binary_*: arithmetic (POW for float32 only).
#define COPROC_BINARY_ADD 0
#define COPROC_BINARY_SUB 1
#define COPROC_BINARY_MUL 2
#define COPROC_BINARY_DIV 3
#define COPROC_BINARY_POW 4

// reduce_*: what one output element is made of.
#define COPROC_REDUCE_SUM 0
#define COPROC_REDUCE_SUM_SQUARE 1
#define COPROC_REDUCE_MEAN 2
#define COPROC_REDUCE_MAX 3

// bias_activation_f32: the activation after the bias.
#define COPROC_ACTIVATION_NONE 0
#define COPROC_ACTIVATION_RELU 1
#define COPROC_ACTIVATION_GELU 2
#define COPROC_ACTIVATION_TANH 3
#define COPROC_ACTIVATION_SIGMOID 4

// layer_norm_f32: which of the optional operands are present, as bits of one argument.
#define COPROC_LAYER_NORM_SCALE 1
#define COPROC_LAYER_NORM_BIAS 2
#define COPROC_LAYER_NORM_MEAN 4
#define COPROC_LAYER_NORM_INV_STD_DEV 8

// The gather error record, an array of ints in device memory: a claim flag (0 until a launch
// finds a bad index), the launch's tag, and the bad value and the axis length, each 64 bits
// stored as low and high halves (OpenCL 1.2 has no portable 64-bit atomics, so the record is
// claimed with a 32-bit compare-and-swap and then written by the one work item that claimed it).
#define COPROC_GATHER_CLAIMED 0
#define COPROC_GATHER_TAG 1
#define COPROC_GATHER_VALUE_LO 2
#define COPROC_GATHER_VALUE_HI 3
#define COPROC_GATHER_DIM_LO 4
#define COPROC_GATHER_DIM_HI 5
#define COPROC_GATHER_RECORD_INTS 6

#endif  // COPROC_KERNELS_OPENCL_KERNEL_CODES_H_
