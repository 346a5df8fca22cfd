// Gather along one axis of data viewed as [outer, axis_dim, units]: out[o, j, :] =
// data[o, indices[j], :], moving `units` units of 1 or 4 bytes per slice (the host picks 4 when
// the slice and both offsets allow). One work item per unit of the output, which is
// [outer, count, units]; the launch covers at least one outer position and one unit, so that
// every index is checked even when there is nothing to move (the CPU device checks them too).
//
// Indices are untrusted data: one outside [-axis_dim, axis_dim) is never read through. The
// launch records it in the device's error record (kernel_codes.h) unless an earlier one holds
// a value already: the in-order queue runs launches one after another, so the record names the
// first launch with a bad index. Within that launch, which of its bad indices is recorded is
// whichever work item claims the record first.

inline void record_bad_index(volatile __global int *record, int tag, long value, long dim) {
  if (atomic_cmpxchg(&record[COPROC_GATHER_CLAIMED], 0, 1) != 0) return;
  record[COPROC_GATHER_TAG] = tag;
  record[COPROC_GATHER_VALUE_LO] = as_int((uint)as_ulong(value));
  record[COPROC_GATHER_VALUE_HI] = as_int((uint)(as_ulong(value) >> 32));
  record[COPROC_GATHER_DIM_LO] = as_int((uint)as_ulong(dim));
  record[COPROC_GATHER_DIM_HI] = as_int((uint)(as_ulong(dim) >> 32));
}

#define COPROC_GATHER_KERNEL(NAME, UNIT, INDEX)                                                   \
  __kernel void gather_##NAME(                                                                    \
      __global UNIT *out, const long out_off, __global const UNIT *data, const long data_off,     \
      __global const INDEX *indices, const long indices_off, const long outer,                    \
      const long axis_dim, const long count, const long units, const ulong elements,              \
      volatile __global int *record, const int tag) {                                             \
    const ulong i = get_global_id(0);                                                             \
    if (i >= elements) return;                                                                    \
    const ulong slice = (ulong)(units > 0 ? units : 1);                                           \
    const ulong oj = i / slice;                                                                   \
    const long e = (long)(i - oj * slice);                                                        \
    const long o = (long)(oj / (ulong)count);                                                     \
    const long j = (long)oj - o * count;                                                          \
    const long raw = indices[indices_off + j];                                                    \
    const long k = raw < 0 ? raw + axis_dim : raw;                                                \
    if (k < 0 || k >= axis_dim) {                                                                 \
      if (e == 0 && o == 0) record_bad_index(record, tag, raw, axis_dim);                         \
      return;                                                                                     \
    }                                                                                             \
    if (e >= units || o >= outer) return;                                                         \
    out[out_off + (o * count + j) * units + e] = data[data_off + (o * axis_dim + k) * units + e]; \
  }

COPROC_GATHER_KERNEL(bits8_int, uchar, int)
COPROC_GATHER_KERNEL(bits8_long, uchar, long)
COPROC_GATHER_KERNEL(bits32_int, uint, int)
COPROC_GATHER_KERNEL(bits32_long, uint, long)
