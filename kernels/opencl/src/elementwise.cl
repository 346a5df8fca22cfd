// Elementwise kernels: one work item per output element of a strided box (locate() in
// common.cl). Every one takes the same arguments, so the host binds them all one way: the output
// and three operands (an absent one is a null buffer the kernel never reads), the box, and an
// operation code where the kernel has a choice (kernel_codes.h). Semantics are the CPU device's
// (runtime/ops/elementwise.cc); the comments say where they are not obvious.

#define COPROC_ELEMENTWISE_PARAMS(TO, TA, TB, TC)                                             \
  __global TO *out, const long out_off, __global const TA *a, const long a_off,               \
      __global const TB *b, const long b_off, __global const TC *c, const long c_off,         \
      const ulong elements, const int rank, const long8 dims, const long8 so, const long8 sa, \
      const long8 sb, const long8 sc, const int op

#define COPROC_ELEMENTWISE_INDEX    \
  const ulong i = get_global_id(0); \
  if (i >= elements) return;        \
  const Offsets p = locate(i, rank, dims, so, sa, sb, sc);

#define COPROC_A a[a_off + p.a]
#define COPROC_B b[b_off + p.b]
#define COPROC_C c[c_off + p.c]
#define COPROC_OUT out[out_off + p.out]

// ---------------------------------------------------------------- float32

inline float apply_unary_float(int op, float x) {
  switch (op) {
    case COPROC_UNARY_RELU:
      return relu_float(x);
    case COPROC_UNARY_SIGMOID:
      return sigmoid_float(x);
    case COPROC_UNARY_TANH:
      return tanh(x);
    case COPROC_UNARY_ERF:
      return erf(x);
    case COPROC_UNARY_EXP:
      return exp(x);
    case COPROC_UNARY_SQRT:
      return sqrt(x);
    case COPROC_UNARY_RECIPROCAL:
      return 1.0f / x;
    case COPROC_UNARY_GELU:
      return gelu_float(x);
    case COPROC_UNARY_NEG:
      return -x;
  }
  return NAN;  // the host sends no other code
}

inline float apply_binary_float(int op, float x, float y) {
  switch (op) {
    case COPROC_BINARY_ADD:
      return x + y;
    case COPROC_BINARY_SUB:
      return x - y;
    case COPROC_BINARY_MUL:
      return x * y;
    case COPROC_BINARY_DIV:
      return x / y;
    case COPROC_BINARY_POW:
      return pow(x, y);
  }
  return NAN;  // the host sends no other code
}

__kernel void unary_float(COPROC_ELEMENTWISE_PARAMS(float, float, float, float)) {
  COPROC_ELEMENTWISE_INDEX
  COPROC_OUT = apply_unary_float(op, COPROC_A);
}

__kernel void binary_float(COPROC_ELEMENTWISE_PARAMS(float, float, float, float)) {
  COPROC_ELEMENTWISE_INDEX
  COPROC_OUT = apply_binary_float(op, COPROC_A, COPROC_B);
}

// ---------------------------------------------------------------- int32 and int64

// Integers wrap around, as numpy's do: the arithmetic runs on the unsigned type (U), where
// overflow is defined, and as_T reinterprets the bits. Division truncates toward zero; x / 0 is 0
// and MIN / -1 is MIN, where C leaves both undefined.
#define COPROC_INTEGER_KERNELS(T, U, MIN)                           \
  inline T apply_binary_##T(int op, T x, T y) {                     \
    switch (op) {                                                   \
      case COPROC_BINARY_ADD:                                       \
        return as_##T((U)x + (U)y);                                 \
      case COPROC_BINARY_SUB:                                       \
        return as_##T((U)x - (U)y);                                 \
      case COPROC_BINARY_MUL:                                       \
        return as_##T((U)x * (U)y);                                 \
      case COPROC_BINARY_DIV:                                       \
        if (y == 0) return 0;                                       \
        if (x == MIN && y == -1) return x;                          \
        return x / y;                                               \
    }                                                               \
    return 0; /* the host sends no other code */                    \
  }                                                                 \
  __kernel void binary_##T(COPROC_ELEMENTWISE_PARAMS(T, T, T, T)) { \
    COPROC_ELEMENTWISE_INDEX                                        \
    COPROC_OUT = apply_binary_##T(op, COPROC_A, COPROC_B);          \
  }                                                                 \
  /* Negating MIN gives MIN back. */                                \
  __kernel void neg_##T(COPROC_ELEMENTWISE_PARAMS(T, T, T, T)) {    \
    COPROC_ELEMENTWISE_INDEX                                        \
    COPROC_OUT = as_##T((U)0 - (U)COPROC_A);                        \
  }

COPROC_INTEGER_KERNELS(int, uint, INT_MIN)
COPROC_INTEGER_KERNELS(long, ulong, LONG_MIN)

// ---------------------------------------------------------------- any dtype

// Equal: IEEE for floats (NaN equals nothing, -0 equals +0); bools compare as true or false.
#define COPROC_EQUAL_KERNEL(NAME, T, KEY)                                 \
  __kernel void equal_##NAME(COPROC_ELEMENTWISE_PARAMS(uchar, T, T, T)) { \
    COPROC_ELEMENTWISE_INDEX                                              \
    COPROC_OUT = KEY(COPROC_A) == KEY(COPROC_B);                          \
  }
#define COPROC_AS_IS(x) (x)
#define COPROC_TRUTH(x) ((x) != 0)

COPROC_EQUAL_KERNEL(float, float, COPROC_AS_IS)
COPROC_EQUAL_KERNEL(int, int, COPROC_AS_IS)
COPROC_EQUAL_KERNEL(long, long, COPROC_AS_IS)
COPROC_EQUAL_KERNEL(bool, uchar, COPROC_TRUTH)

// Copy and Where move values by size (float32 and int32 are both 32 bits), except bools, which
// are written as 0 or 1 whatever nonzero byte they were read as.
#define COPROC_MOVE_KERNELS(NAME, T, VALUE)                               \
  __kernel void copy_##NAME(COPROC_ELEMENTWISE_PARAMS(T, T, T, T)) {      \
    COPROC_ELEMENTWISE_INDEX                                              \
    COPROC_OUT = VALUE(COPROC_A);                                         \
  }                                                                       \
  /* a is the bool condition, any nonzero byte true */                    \
  __kernel void where_##NAME(COPROC_ELEMENTWISE_PARAMS(T, uchar, T, T)) { \
    COPROC_ELEMENTWISE_INDEX                                              \
    COPROC_OUT = COPROC_A != 0 ? VALUE(COPROC_B) : VALUE(COPROC_C);       \
  }

COPROC_MOVE_KERNELS(bits32, uint, COPROC_AS_IS)
COPROC_MOVE_KERNELS(bits64, ulong, COPROC_AS_IS)
COPROC_MOVE_KERNELS(bool, uchar, COPROC_TRUTH)
