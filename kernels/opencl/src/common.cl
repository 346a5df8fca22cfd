// What every kernel of the program shares: index arithmetic over strided boxes and the float
// functions that more than one kernel applies. The program is kernel_codes.h followed by this
// file and then the other .cl files (CMakeLists.txt), built with -cl-std=CL1.2.
//
// Conventions: a tensor operand is a __global pointer and an element offset (long); strides and
// offsets are in elements and may be negative; counts of work items are ulong. Every kernel is
// launched over a global size rounded up to its work-group size, so each one first checks its
// index against the real count.

// The element offsets of one index of a box: the output's and up to three operands'.
typedef struct {
  long out;
  long a;
  long b;
  long c;
} Offsets;

// One dim of locate(): the index along dim k is what i leaves when divided by the dim's length.
#define COPROC_LOCATE_DIM(k)                         \
  {                                                  \
    const ulong q = i / (ulong)dims.s##k;            \
    const long r = (long)(i - q * (ulong)dims.s##k); \
    p.out += r * so.s##k;                            \
    p.a += r * sa.s##k;                              \
    p.b += r * sb.s##k;                              \
    p.c += r * sc.s##k;                              \
    i = q;                                           \
  }

// The offsets of flat row-major index i of a box of `rank` dims (components 0 .. rank-1 of dims,
// outermost first) under four sets of strides. The cases fall through from the innermost dim
// outwards; the outermost dim takes what is left of i, so a box of rank r costs r - 1 divisions.
// Rank 0 is one element, at every operand's origin.
inline Offsets locate(ulong i, int rank, long8 dims, long8 so, long8 sa, long8 sb, long8 sc) {
  Offsets p = {0, 0, 0, 0};
  switch (rank) {
    case 8:
      COPROC_LOCATE_DIM(7)
    case 7:
      COPROC_LOCATE_DIM(6)
    case 6:
      COPROC_LOCATE_DIM(5)
    case 5:
      COPROC_LOCATE_DIM(4)
    case 4:
      COPROC_LOCATE_DIM(3)
    case 3:
      COPROC_LOCATE_DIM(2)
    case 2:
      COPROC_LOCATE_DIM(1)
    case 1:
      p.out += (long)i * so.s0;
      p.a += (long)i * sa.s0;
      p.b += (long)i * sb.s0;
      p.c += (long)i * sc.s0;
      break;
    default:
      break;
  }
  return p;
}

// The CPU device's sigmoid (kernels/cpu/src/unary.cc): exp only ever sees -|x|, so nothing
// overflows and both tails keep their precision.
inline float sigmoid_float(float x) {
  const float e = exp(-fabs(x));
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}

// Exact (erf) GELU, as the CPU device's: x (1 + erf(x / sqrt 2)) / 2.
inline float gelu_float(float x) { return 0.5f * x * (1.0f + erf(x * M_SQRT1_2_F)); }

// Relu as the CPU device's: NaN and -0 give +0.
inline float relu_float(float x) { return x > 0.0f ? x : 0.0f; }
