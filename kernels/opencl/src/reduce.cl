// Reductions: one work item per output element. Output element i reduces the input elements of
// a box (box_rank dims with box_strides) that starts at its own offset: index i located in
// out_dims under in_strides. Semantics are the CPU device's (runtime/ops/reduce.cc).

// Walks a box row by row: `len` elements `step` apart along the innermost dim, the other dims
// advanced like an odometer between rows, so the inner loop divides nothing.
typedef struct {
  long dims[8];
  long strides[8];
  long idx[8];
  int outer;  // dims before the innermost
  long len;
  long step;
  long off;  // the current row's first element
  ulong rows;
} Box;

inline Box box_begin(long base, int rank, long8 box_dims, long8 box_strides, ulong count) {
  Box box;
  vstore8(box_dims, 0, box.dims);
  vstore8(box_strides, 0, box.strides);
  vstore8((long8)(0), 0, box.idx);
  box.outer = rank > 0 ? rank - 1 : 0;
  box.len = rank > 0 ? box.dims[rank - 1] : 1;
  box.step = rank > 0 ? box.strides[rank - 1] : 0;
  box.off = base;
  box.rows = count == 0 ? 0 : count / (ulong)box.len;
  return box;
}

inline void box_next_row(Box *box) {
  for (int d = box->outer - 1; d >= 0; --d) {
    box->off += box->strides[d];
    if (++box->idx[d] < box->dims[d]) return;
    box->off -= box->strides[d] * box->dims[d];
    box->idx[d] = 0;
  }
}

#define COPROC_REDUCE_PARAMS(TO, TI)                                                         \
  __global TO *out, const long out_off, __global const TI *in, const long in_off,            \
      const ulong outputs, const int out_rank, const long8 out_dims, const long8 in_strides, \
      const int box_rank, const long8 box_dims, const long8 box_strides, const ulong count

// Declares i and the Box of output element i, or returns when i is past the outputs.
#define COPROC_REDUCE_BOX                                                                   \
  const ulong i = get_global_id(0);                                                         \
  if (i >= outputs) return;                                                                 \
  const long8 none = (long8)(0);                                                            \
  const long base = in_off + locate(i, out_rank, out_dims, none, in_strides, none, none).a; \
  Box box = box_begin(base, box_rank, box_dims, box_strides, count);

// ---------------------------------------------------------------- float32

// The maximum that propagates NaN from either side, as numpy's.
inline float larger_or_nan(float a, float b) { return b > a || isnan(b) ? b : a; }

// Compensated (Kahan) summation: float sums of many terms keep about float precision, where
// the CPU device gets the same by adding float blocks in double (OpenCL 1.2 devices need not
// have doubles). Once the sum is infinite or NaN the compensation would turn inf into NaN, so it
// stops: the sum then stays what IEEE addition makes it.
inline void kahan_add(float *sum, float *carry, float v) {
  const float y = v - *carry;
  const float t = *sum + y;
  *carry = isfinite(t) ? (t - *sum) - y : 0.0f;
  *sum = t;
}

// Empty boxes: 0 for the sums, NaN for the mean, -inf for the max. A nonempty sum starts at -0,
// the identity of addition (-0 + v == v for every v, -0 included), so a sum of one -0 stays -0.
__kernel void reduce_float(COPROC_REDUCE_PARAMS(float, float), const int op) {
  COPROC_REDUCE_BOX
  if (count == 0) {
    out[out_off + i] =
        op == COPROC_REDUCE_MEAN ? NAN : (op == COPROC_REDUCE_MAX ? -INFINITY : 0.0f);
    return;
  }
  const bool maximum = op == COPROC_REDUCE_MAX;
  const bool square = op == COPROC_REDUCE_SUM_SQUARE;
  float sum = maximum ? -INFINITY : -0.0f;
  float carry = 0.0f;
  for (ulong row = 0; row < box.rows; ++row, box_next_row(&box)) {
    for (long e = 0; e < box.len; ++e) {
      const float v = in[box.off + e * box.step];
      if (maximum) {
        sum = larger_or_nan(sum, v);
      } else {
        kahan_add(&sum, &carry, square ? v * v : v);
      }
    }
  }
  out[out_off + i] = op == COPROC_REDUCE_MEAN ? sum / (float)count : sum;
}

// ---------------------------------------------------------------- int32 and int64

// Sums wrap around (on the unsigned type U), as numpy's do; an empty box gives 0, or MIN for the
// max. The host refuses an integer mean, as the CPU device's planner does.
#define COPROC_REDUCE_INTEGER_KERNEL(T, U, MIN)                        \
  __kernel void reduce_##T(COPROC_REDUCE_PARAMS(T, T), const int op) { \
    COPROC_REDUCE_BOX                                                  \
    const bool maximum = op == COPROC_REDUCE_MAX;                      \
    const bool square = op == COPROC_REDUCE_SUM_SQUARE;                \
    U sum = 0;                                                         \
    T largest = MIN;                                                   \
    for (ulong row = 0; row < box.rows; ++row, box_next_row(&box)) {   \
      for (long e = 0; e < box.len; ++e) {                             \
        const T v = in[box.off + e * box.step];                        \
        if (maximum) {                                                 \
          largest = v > largest ? v : largest;                         \
        } else {                                                       \
          sum += square ? (U)v * (U)v : (U)v;                          \
        }                                                              \
      }                                                                \
    }                                                                  \
    out[out_off + i] = maximum ? largest : as_##T(sum);                \
  }

COPROC_REDUCE_INTEGER_KERNEL(int, uint, INT_MIN)
COPROC_REDUCE_INTEGER_KERNEL(long, ulong, LONG_MIN)

// ---------------------------------------------------------------- ArgMax

// The position in the box (row-major) of the maximum: the first one, or the last one when
// `last`. NaN is the largest float, as in numpy's argmax: the first NaN wins, or the last one
// when `last`. An empty box gives 0.
inline bool beats_float(float v, float best, int last) {
  if (isnan(best)) return last && isnan(v);
  if (isnan(v)) return true;
  return last ? v >= best : v > best;
}
inline bool beats_int(int v, int best, int last) { return last ? v >= best : v > best; }
inline bool beats_long(long v, long best, int last) { return last ? v >= best : v > best; }

#define COPROC_ARGMAX_KERNEL(T)                                             \
  __kernel void argmax_##T(COPROC_REDUCE_PARAMS(long, T), const int last) { \
    COPROC_REDUCE_BOX                                                       \
    long at = 0;                                                            \
    long j = 0;                                                             \
    T best = 0;                                                             \
    for (ulong row = 0; row < box.rows; ++row, box_next_row(&box)) {        \
      for (long e = 0; e < box.len; ++e, ++j) {                             \
        const T v = in[box.off + e * box.step];                             \
        if (j == 0 || beats_##T(v, best, last)) {                           \
          best = v;                                                         \
          at = j;                                                           \
        }                                                                   \
      }                                                                     \
    }                                                                       \
    out[out_off + i] = at;                                                  \
  }

COPROC_ARGMAX_KERNEL(float)
COPROC_ARGMAX_KERNEL(int)
COPROC_ARGMAX_KERNEL(long)
