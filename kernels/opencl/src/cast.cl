// Cast between the four dtypes over dense operands, as the CPU device's (daemon/runtime/
// ops_tensor.cc, cast_value): numpy's astype with every case defined. One kernel per pair, named
// cast_<from>_<to>; a same-type cast is a copy that also works in place (out over in).

// Float to integer truncates toward zero; NaN and values outside the integer's range give its
// minimum (what numpy and ONNX Runtime give on x86, where C leaves the cast undefined). The
// bounds are -2^k and 2^k, both exact floats.
inline int float_to_int(float v) {
  return v >= -2147483648.0f && v < 2147483648.0f ? (int)v : INT_MIN;
}
inline long float_to_long(float v) {
  return v >= -9223372036854775808.0f && v < 9223372036854775808.0f ? (long)v : LONG_MIN;
}
// Narrowing wraps: the low 32 bits.
inline int long_to_int(long v) { return as_int((uint)as_ulong(v)); }

#define COPROC_CAST_KERNEL(NAME, FROM, TO, CONVERT)                                        \
  __kernel void cast_##NAME(__global TO *out, const long out_off, __global const FROM *in, \
                            const long in_off, const ulong elements) {                     \
    const ulong i = get_global_id(0);                                                      \
    if (i >= elements) return;                                                             \
    const FROM v = in[in_off + i];                                                         \
    out[out_off + i] = CONVERT;                                                            \
  }

// Anything nonzero is true (NaN too); a bool reads as 0 or 1. Integer to float rounds to nearest.
COPROC_CAST_KERNEL(float_float, float, float, v)
COPROC_CAST_KERNEL(float_long, float, long, float_to_long(v))
COPROC_CAST_KERNEL(float_int, float, int, float_to_int(v))
COPROC_CAST_KERNEL(float_bool, float, uchar, v != 0.0f)
COPROC_CAST_KERNEL(long_float, long, float, (float)v)
COPROC_CAST_KERNEL(long_long, long, long, v)
COPROC_CAST_KERNEL(long_int, long, int, long_to_int(v))
COPROC_CAST_KERNEL(long_bool, long, uchar, v != 0)
COPROC_CAST_KERNEL(int_float, int, float, (float)v)
COPROC_CAST_KERNEL(int_long, int, long, (long)v)
COPROC_CAST_KERNEL(int_int, int, int, v)
COPROC_CAST_KERNEL(int_bool, int, uchar, v != 0)
COPROC_CAST_KERNEL(bool_float, uchar, float, v != 0 ? 1.0f : 0.0f)
COPROC_CAST_KERNEL(bool_long, uchar, long, v != 0 ? 1L : 0L)
COPROC_CAST_KERNEL(bool_int, uchar, int, v != 0 ? 1 : 0)
COPROC_CAST_KERNEL(bool_bool, uchar, uchar, v != 0)
