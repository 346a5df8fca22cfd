// The LLM engine's OpenCL kernels (cl_device.cc launches them). Each follows the CPU piece of
// layers.h it replaces; where the arithmetic may differ from the CPU's, the comment says how.
//
// No contraction of a * b + c into fma: the CPU build does not contract either, and the
// cross-device test holds the two within a tolerance that this keeps small.
#pragma OPENCL FP_CONTRACT OFF

// Weight types, as cl_device.cc passes them.
#define TYPE_Q4_0 0
#define TYPE_Q4_1 1
#define TYPE_Q8_0 2
#define TYPE_F32 3

// Work-group sizes (cl_device.cc launches with the same): powers of two.
#define MATMUL_TILE 8  // activation rows per work item
#define ROW_GROUP 64   // rms_norm and attention
#define MAX_HEAD_DIM 256

inline int block_bytes(int type) {
  return type == TYPE_Q4_0 ? 18 : type == TYPE_Q4_1 ? 20 : 34;
}

inline float load_half(const __global uchar* p) { return vload_half(0, (const __global half*)p); }

// Element e (< 32) of one weight block, dequantized as ggml_types.cc's reference does.
inline float dequantize(int type, const __global uchar* blk, int e) {
  const float d = load_half(blk);
  if (type == TYPE_Q8_0) return d * (float)((const __global char*)(blk + 2))[e];
  const __global uchar* qs = blk + (type == TYPE_Q4_1 ? 4 : 2);
  const int nibble = e < 16 ? (qs[e] & 15) : (qs[e - 16] >> 4);
  if (type == TYPE_Q4_0) return d * (float)(nibble - 8);
  return d * (float)nibble + load_half(blk + 2);
}

// x[r] = row tokens[r] of the table, for a [rows, n] x. One work item per element.
__kernel void embed(__global const uchar* table, int type, int n, __global const int* tokens,
                    int rows, __global float* x) {
  const int c = get_global_id(0);
  const int r = get_global_id(1);
  if (c >= n || r >= rows) return;
  const long token = tokens[r];
  float v;
  if (type == TYPE_F32) {
    v = ((const __global float*)table)[token * n + c];
  } else {
    const long row_bytes = (long)(n / 32) * block_bytes(type);
    v = dequantize(type, table + token * row_bytes + (c / 32) * block_bytes(type), c % 32);
  }
  x[(long)r * n + c] = v;
}

// layers.cc's rms_norm, one work-group of ROW_GROUP per row. The sum of squares is a tree over
// the group, not the CPU's 16 lanes: the scale differs in the last bits.
__kernel void rms_norm(__global const float* x, __global const float* w, int n, float eps,
                       __global float* y) {
  __local float part[ROW_GROUP];
  const int r = get_group_id(0);
  const int lid = get_local_id(0);
  const __global float* xr = x + (long)r * n;
  float s = 0;
  for (int i = lid; i < n; i += ROW_GROUP) s += xr[i] * xr[i];
  part[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int h = ROW_GROUP / 2; h > 0; h >>= 1) {
    if (lid < h) part[lid] += part[lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float scale = 1.0f / sqrt(part[0] / (float)n + eps);
  for (int i = lid; i < n; i += ROW_GROUP) y[(long)r * n + i] = xr[i] * scale * w[i];
}

// Activations quantized per 32-block as the CPU's quantize_q8a: d = max|x| / 127, q = x / d
// rounded to nearest even, and ds = (d, d * sum(q)). One work item per block of a dense x.
__kernel void quantize_q8a(__global const float* x, int blocks, __global float2* ds,
                           __global char* q) {
  const int b = get_global_id(0);
  if (b >= blocks) return;
  const __global float* xb = x + (long)b * 32;
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = fmax(amax, fabs(xb[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    const int v = (int)rint(xb[j] * id);
    q[(long)b * 32 + j] = (char)v;
    sum += v;
  }
  ds[b] = (float2)(d, d * (float)sum);
}

// y[i][j] = sum_k W[j][k] x[i][k] on quantized weights and quantize_q8a's activations, with the
// CPU kernels' arithmetic (quant_matmul.h): per output, blocks in order,
//   acc = acc + (dw * dx) * float(isum);  (Q4_1) acc = acc + mw * sx.
// One work item per (weight row j, tile of MATMUL_TILE activation rows): a weight block is read
// once for the tile. No local memory and no barriers: PoCL runs many small work items well, and
// the output head has n_vocab rows.
__kernel void matmul_quant(__global const uchar* w, int type, int n, int blocks,
                           __global const float2* ds, __global const char* q, int m,
                           __global float* y) {
  const int j = get_global_id(0);
  const int i0 = get_global_id(1) * MATMUL_TILE;
  if (j >= n) return;
  const int rows = min(MATMUL_TILE, m - i0);
  const int bb = block_bytes(type);
  const __global uchar* row = w + (long)j * blocks * bb;
  float acc[MATMUL_TILE];
  for (int t = 0; t < MATMUL_TILE; ++t) acc[t] = 0;
  for (int b = 0; b < blocks; ++b) {
    const __global uchar* blk = row + (long)b * bb;
    const float dw = load_half(blk);
    const float mw = type == TYPE_Q4_1 ? load_half(blk + 2) : 0.0f;
    // The block's weight integers as two int16 vectors (elements 0..15 and 16..31): explicit
    // vectors, so that a CPU device (PoCL) runs the dot in SIMD.
    int16 w_lo, w_hi;
    if (type == TYPE_Q8_0) {
      w_lo = convert_int16(vload16(0, (const __global char*)(blk + 2)));
      w_hi = convert_int16(vload16(1, (const __global char*)(blk + 2)));
    } else {
      const uchar16 qs = vload16(0, blk + (type == TYPE_Q4_1 ? 4 : 2));
      const int offset = type == TYPE_Q4_0 ? 8 : 0;
      w_lo = convert_int16(qs & (uchar16)15) - offset;
      w_hi = convert_int16(qs >> (uchar16)4) - offset;
    }
    for (int t = 0; t < rows; ++t) {
      const long a = (long)(i0 + t) * blocks + b;
      const __global char* qa = q + a * 32;
      const int16 p = w_lo * convert_int16(vload16(0, qa)) + w_hi * convert_int16(vload16(1, qa));
      const int8 p8 = p.lo + p.hi;
      const int4 p4 = p8.lo + p8.hi;
      const int2 p2 = p4.lo + p4.hi;
      const int isum = p2.x + p2.y;  // exact: the order of an integer sum does not matter
      const float2 dsa = ds[a];
      acc[t] = acc[t] + (dw * dsa.x) * (float)isum;
      if (type == TYPE_Q4_1) acc[t] = acc[t] + mw * dsa.y;
    }
  }
  for (int t = 0; t < rows; ++t) y[(long)(i0 + t) * n + j] = acc[t];
}

// The same on F32 weights and float activations, one sum per output in order of k.
__kernel void matmul_f32(__global const float* w, int n, int k, __global const float* x, int m,
                         __global float* y) {
  const int j = get_global_id(0);
  const int i0 = get_global_id(1) * MATMUL_TILE;
  if (j >= n) return;
  const int rows = min(MATMUL_TILE, m - i0);
  const __global float* row = w + (long)j * k;
  float acc[MATMUL_TILE];
  for (int t = 0; t < MATMUL_TILE; ++t) acc[t] = 0;
  for (int c = 0; c < k; ++c) {
    const float wv = row[c];
    for (int t = 0; t < rows; ++t) acc[t] += wv * x[(long)(i0 + t) * k + c];
  }
  for (int t = 0; t < rows; ++t) y[(long)(i0 + t) * n + j] = acc[t];
}

// Adjacent-pair RoPE with the host's (cos, sin) of each row's angles: cs is [rows][pairs], the
// CPU's own values (computed in double on the host). One work item per (pair, head, row).
__kernel void rope(__global float* x, int n_heads, int head_dim, int pairs,
                   __global const float2* cs) {
  const int i = get_global_id(0);
  const int h = get_global_id(1);
  const int r = get_global_id(2);
  if (i >= pairs || h >= n_heads) return;
  __global float* p = x + ((long)r * n_heads + h) * head_dim + 2 * i;
  const float2 c = cs[(long)r * pairs + i];
  const float a = p[0];
  const float b = p[1];
  p[0] = a * c.x - b * c.y;
  p[1] = a * c.y + b * c.x;
}

// Where kv_cache.h's layout keeps `which` (0 key, 1 value) of head `head` at `slot` of `block`.
inline long kv_offset(int layer, int n_blocks, int block, int which, int n_head_kv, int head,
                      int slot, int head_dim) {
  return (((((long)layer * n_blocks + block) * 2 + which) * n_head_kv + head) * 16 + slot) *
         (long)head_dim;
}

// Row r of k and v into the cache at dest[r] = block * 16 + slot. One work item per (dim, head,
// row).
__kernel void store_kv(__global const float* k, __global const float* v, __global float* kv,
                       int layer, int n_blocks, int n_head_kv, int head_dim,
                       __global const int* dest) {
  const int d = get_global_id(0);
  const int h = get_global_id(1);
  const int r = get_global_id(2);
  if (d >= head_dim || h >= n_head_kv) return;
  const int block = dest[r] / 16;
  const int slot = dest[r] % 16;
  const long src = ((long)r * n_head_kv + h) * head_dim + d;
  kv[kv_offset(layer, n_blocks, block, 0, n_head_kv, h, slot, head_dim) + d] = k[src];
  kv[kv_offset(layer, n_blocks, block, 1, n_head_kv, h, slot, head_dim) + d] = v[src];
}

// layers.cc's attention for query head get_group_id(0) of row get_group_id(1), over positions
// 0 ..= pos[r] of the row's sequence, whose block table starts at tables[table_at[r]]. The
// softmax is taken online over chunks of ROW_GROUP positions (running max and sum, the output
// rescaled), where the CPU takes it over all scores at once: equal up to rounding.
__kernel void attention(__global const float* q, __global const float* kv, __global float* out,
                        int layer, int n_blocks, int n_head, int n_head_kv, int head_dim,
                        float scale, __global const int* pos, __global const int* table_at,
                        __global const int* tables) {
  __local float qh[MAX_HEAD_DIM];
  __local float p[ROW_GROUP];
  __local float red[ROW_GROUP];
  const int head = get_group_id(0);
  const int r = get_group_id(1);
  const int lid = get_local_id(0);
  const int kv_head = head / (n_head / n_head_kv);
  const long q_at = ((long)r * n_head + head) * head_dim;
  for (int d = lid; d < head_dim; d += ROW_GROUP) qh[d] = q[q_at + d];
  barrier(CLK_LOCAL_MEM_FENCE);
  const __global int* table = tables + table_at[r];
  const int n = pos[r] + 1;

  float acc[MAX_HEAD_DIM / ROW_GROUP];
  for (int i = 0; i < MAX_HEAD_DIM / ROW_GROUP; ++i) acc[i] = 0;
  float running_max = -INFINITY;
  float running_sum = 0;
  for (int c0 = 0; c0 < n; c0 += ROW_GROUP) {
    const int t = c0 + lid;
    float s = -INFINITY;
    if (t < n) {
      const __global float* key =
          kv + kv_offset(layer, n_blocks, table[t / 16], 0, n_head_kv, kv_head, t % 16, head_dim);
      float dot = 0;
      for (int d = 0; d < head_dim; ++d) dot += qh[d] * key[d];
      s = dot * scale;
    }
    red[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = ROW_GROUP / 2; h > 0; h >>= 1) {
      if (lid < h) red[lid] = fmax(red[lid], red[lid + h]);
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float new_max = fmax(running_max, red[0]);
    barrier(CLK_LOCAL_MEM_FENCE);
    const float e = t < n ? exp(s - new_max) : 0.0f;
    p[lid] = e;
    red[lid] = e;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = ROW_GROUP / 2; h > 0; h >>= 1) {
      if (lid < h) red[lid] += red[lid + h];
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float correction = exp(running_max - new_max);  // 0 on the first chunk
    running_sum = running_sum * correction + red[0];
    running_max = new_max;
    const int chunk = min(ROW_GROUP, n - c0);
    for (int i = 0; i * ROW_GROUP + lid < head_dim; ++i) {
      const int d = i * ROW_GROUP + lid;
      float a = acc[i] * correction;
      for (int u = 0; u < chunk; ++u) {
        const int tu = c0 + u;
        const __global float* val =
            kv + kv_offset(layer, n_blocks, table[tu / 16], 1, n_head_kv, kv_head, tu % 16, head_dim);
        a += p[u] * val[d];
      }
      acc[i] = a;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float inv = 1.0f / running_sum;
  for (int i = 0; i * ROW_GROUP + lid < head_dim; ++i) out[q_at + i * ROW_GROUP + lid] = acc[i] * inv;
}

// gate[i] = silu(gate[i]) * up[i].
__kernel void swiglu(__global float* gate, __global const float* up, long n) {
  const long i = get_global_id(0);
  if (i >= n) return;
  const float g = gate[i];
  gate[i] = g / (1.0f + exp(-g)) * up[i];
}

// x[i] += y[i].
__kernel void add(__global float* x, __global const float* y, long n) {
  const long i = get_global_id(0);
  if (i < n) x[i] += y[i];
}
