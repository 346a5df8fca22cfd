// Row operations: softmax, layer normalisation, and the epilogues of a GEMM. Semantics are the
// CPU device's (kernels/cpu/src/softmax.cc, layer_norm.cc, fused_gelu.cc).
//
// The kernels that reduce a long row run one work-group per row: each work item takes every
// L-th element (L the group size, a power of two), then the group combines its partial results
// in local memory, pairwise.

// The sum (or maximum) over the work-group of every item's v, returned to every item. All items
// must call it (it holds barriers); `scratch` holds one float per item.
inline float group_sum(float v, __local float *scratch) {
  const size_t lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (size_t width = get_local_size(0) / 2; width > 0; width /= 2) {
    if (lid < width) scratch[lid] += scratch[lid + width];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);  // everyone has read scratch[0] before it is written again
  return total;
}

// The CPU softmax's maximum: a NaN b is passed over (the NaN then reaches every output through
// the sum of exponentials anyway).
inline float larger(float a, float b) { return b > a ? b : a; }

inline float group_max(float v, __local float *scratch) {
  const size_t lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (size_t width = get_local_size(0) / 2; width > 0; width /= 2) {
    if (lid < width) scratch[lid] = larger(scratch[lid], scratch[lid + width]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

// ---------------------------------------------------------------- softmax

// Numerically stable: the maximum is subtracted before exp, so no exponential overflows; the
// outputs are then scaled by the reciprocal of their sum. out may be in (each item reads an
// element before it writes it, and only its own).

// Softmax of each row of n contiguous values ([outer, n, 1]): one work-group per row.
__kernel void softmax_rows_float(__global float *out, const long out_off, __global const float *in,
                                 const long in_off, const long n, __local float *scratch) {
  const long lid = get_local_id(0);
  const long size = get_local_size(0);
  __global const float *x = in + in_off + (long)get_group_id(0) * n;
  __global float *y = out + out_off + (long)get_group_id(0) * n;
  float m = -INFINITY;
  for (long j = lid; j < n; j += size) m = larger(m, x[j]);
  m = group_max(m, scratch);
  float sum = 0.0f;
  for (long j = lid; j < n; j += size) {
    const float e = exp(x[j] - m);
    y[j] = e;
    sum += e;
  }
  const float scale = 1.0f / group_sum(sum, scratch);
  for (long j = lid; j < n; j += size) y[j] *= scale;
}

// Softmax along the middle dim of [outer, n, inner], inner > 1: one work item per (outer, inner)
// line, so that neighbouring items read neighbouring elements.
__kernel void softmax_lines_float(__global float *out, const long out_off,
                                  __global const float *in, const long in_off, const long n,
                                  const long inner, const ulong lines) {
  const ulong line = get_global_id(0);
  if (line >= lines) return;
  const long o = (long)(line / (ulong)inner);
  const long first = o * n * inner + ((long)line - o * inner);
  __global const float *x = in + in_off + first;
  __global float *y = out + out_off + first;
  float m = -INFINITY;
  for (long j = 0; j < n; ++j) m = larger(m, x[j * inner]);
  float sum = 0.0f;
  for (long j = 0; j < n; ++j) {
    const float e = exp(x[j * inner] - m);
    y[j * inner] = e;
    sum += e;
  }
  const float scale = 1.0f / sum;
  for (long j = 0; j < n; ++j) y[j * inner] *= scale;
}

// ---------------------------------------------------------------- layer normalisation

// One work-group per row of n. Precision without doubles (the CPU device sums in double): a row
// with a large offset (1e4 + noise of 1) loses the noise in a one-pass E[x^2] - E[x]^2 in float.
// So the mean is taken in two steps: hi, the float mean of x; then the mean lo of d = x - hi,
// where x - hi is exact for x near hi (Sterbenz) and lo is small. The variance is the mean of
// d^2 less lo^2, which cancels nothing significant because lo is tiny next to the spread of d.
// y = ((x - hi) - lo) * inv_std_dev * scale + bias. n == 0 gives NaN statistics, as on the CPU.
__kernel void layer_norm_float(__global float *y, const long y_off, __global const float *x,
                               const long x_off, __global const float *scale,
                               const long scale_off, __global const float *bias,
                               const long bias_off, __global float *mean, const long mean_off,
                               __global float *inv_std_dev, const long inv_std_dev_off,
                               const long n, const float epsilon, const int operands,
                               __local float *scratch) {
  const long row = get_group_id(0);
  const long lid = get_local_id(0);
  const long size = get_local_size(0);
  __global const float *xr = x + x_off + row * n;
  __global float *yr = y + y_off + row * n;

  float s = 0.0f;
  for (long j = lid; j < n; j += size) s += xr[j];
  const float count = (float)n;
  const float hi = group_sum(s, scratch) / count;

  float s1 = 0.0f;
  float s2 = 0.0f;
  for (long j = lid; j < n; j += size) {
    const float d = xr[j] - hi;
    s1 += d;
    s2 += d * d;
  }
  const float lo = group_sum(s1, scratch) / count;
  float variance = group_sum(s2, scratch) / count - lo * lo;
  variance = variance < 0.0f ? 0.0f : variance;  // rounding; a NaN stays NaN
  const float inv = 1.0f / sqrt(variance + epsilon);

  if (lid == 0 && (operands & COPROC_LAYER_NORM_MEAN)) mean[mean_off + row] = hi + lo;
  if (lid == 0 && (operands & COPROC_LAYER_NORM_INV_STD_DEV)) {
    inv_std_dev[inv_std_dev_off + row] = inv;
  }
  const bool scaled = operands & COPROC_LAYER_NORM_SCALE;
  const bool biased = operands & COPROC_LAYER_NORM_BIAS;
  for (long j = lid; j < n; j += size) {
    float v = ((xr[j] - hi) - lo) * inv;
    if (scaled) v *= scale[scale_off + j];
    if (biased) v += bias[bias_off + j];
    yr[j] = v;
  }
}

// ---------------------------------------------------------------- GEMM epilogues

inline float activate(int activation, float x) {
  switch (activation) {
    case COPROC_ACTIVATION_RELU:
      return relu_float(x);
    case COPROC_ACTIVATION_GELU:
      return gelu_float(x);
    case COPROC_ACTIVATION_TANH:
      return tanh(x);
    case COPROC_ACTIVATION_SIGMOID:
      return sigmoid_float(x);
  }
  return x;
}

// y[r, c] = act(y[r, c] + bias[c]) over a dense [rows, cols] (elements = rows * cols).
__kernel void bias_activation_float(__global float *y, const long y_off,
                                    __global const float *bias, const long bias_off,
                                    const int has_bias, const long cols, const ulong elements,
                                    const int activation) {
  const ulong i = get_global_id(0);
  if (i >= elements) return;
  float v = y[y_off + (long)i];
  if (has_bias) v += bias[bias_off + (long)(i % (ulong)cols)];
  y[y_off + (long)i] = activate(activation, v);
}

// C = beta * C over `batch` [m, n] matrices (row stride ldc, matrix stride `stride`): a GEMM
// with k == 0, which CLBlast refuses. beta == 0 writes zeros whatever C held (NaN included).
__kernel void scale_matrix_float(__global float *c, const long c_off, const long ldc,
                                 const long stride, const long m, const long n,
                                 const ulong elements, const float beta) {
  const ulong i = get_global_id(0);
  if (i >= elements) return;
  const ulong mn = (ulong)(m * n);
  const long b = (long)(i / mn);
  const long rest = (long)(i - (ulong)b * mn);
  const long r = rest / n;
  const long at = c_off + b * stride + r * ldc + (rest - r * n);
  c[at] = beta == 0.0f ? 0.0f : beta * c[at];
}
