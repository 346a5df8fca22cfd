// The paged attention of paged_attention.h: two passes over the row's positions per KV head.
// Pass one computes every query head's scores a block of 16 keys at a time (one load of a key
// dimension serves the 16 positions and the group's heads), pass two the softmax weights and the weighted sum of the values (one value load serves
// the group). The body is written once on 16-float GCC vectors and compiled for AVX-512 and for
// the baseline (where GCC splits each vector into SSE registers); the choice is made once per
// process from the CPU, so every row on a machine runs the same instructions.
#include "coproc/kernels/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "vexp.h"

namespace coproc::kernels::cpu {

namespace {

using v16 = float __attribute__((vector_size(64), aligned(4)));
constexpr int kLanes = 16;

#define COPROC_ALWAYS_INLINE inline __attribute__((always_inline))

COPROC_ALWAYS_INLINE v16 load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
COPROC_ALWAYS_INLINE void store(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }

// Where position t's block starts for KV head kv_head: its transposed keys or its value rows.
const float* block_of(const float* base, const PagedKvView& kv, int32_t kv_head, const int32_t* table, int32_t t) {
  return base + table[t / kv.block_tokens] * kv.block_stride + kv_head * kv.head_stride;
}

// head_dim a multiple of 16, at most 256: VD vectors per head. Blocks of 16 slots.
template <int VD>
COPROC_ALWAYS_INLINE void attend(const float* q, int32_t group, const PagedKvView& kv, int32_t kv_head,
                                 const int32_t* table, int32_t n, float scale, float* out, float* scores,
                                 float* inverse_sums) {
  const int32_t hd = kv.head_dim;
  const int32_t n_blocks = (n + kLanes - 1) / kLanes;
  // Pass one: scores[h * n_pad + t] = scale * q[h] . K[t], a block of 16 positions per vector:
  // the block's keys are [dim][slot], so each dimension is one FMA of a query scalar into the
  // 16 slots' scores. Slots past n in the last block are computed and never used.
  const int32_t n_pad = n_blocks * kLanes;
  for (int32_t h0 = 0; h0 < group; h0 += 4) {
    const int32_t hn = std::min(4, group - h0);
    float qs[4][VD * kLanes];
    for (int32_t h = 0; h < hn; ++h) {
      for (int32_t d = 0; d < hd; ++d) qs[h][d] = q[(h0 + h) * hd + d] * scale;
    }
    for (int32_t b = 0; b < n_blocks; ++b) {
      const float* kt = block_of(kv.keys, kv, kv_head, table, b * kLanes);
      v16 acc[4] = {};
      for (int32_t d = 0; d < VD * kLanes; ++d) {
        const v16 k = load(kt + d * kLanes);
        for (int32_t h = 0; h < hn; ++h) acc[h] += qs[h][d] * k;
      }
      for (int32_t h = 0; h < hn; ++h) store(scores + (h0 + h) * n_pad + b * kLanes, acc[h]);
    }
  }
  // Softmax weights, unnormalised, each head's sum in position order.
  for (int32_t h = 0; h < group; ++h) {
    float* sc = scores + h * n_pad;
    float mx = sc[0];
    for (int32_t t = 1; t < n; ++t) mx = std::max(mx, sc[t]);
    for (int32_t t = 0; t < n; ++t) sc[t] = detail::vexp(sc[t] - mx);
    float sum = 0;
    for (int32_t t = 0; t < n; ++t) sum += sc[t];
    inverse_sums[h] = 1.0f / sum;
  }
  // Pass two: out[h] = sum_t p[h][t] V[t] / sum[h]; one value row load serves the group.
  for (int32_t h0 = 0; h0 < group; h0 += 4) {
    const int32_t hn = std::min(4, group - h0);
    v16 acc[4][VD] = {};
    for (int32_t t = 0; t < n; ++t) {
      const float* v = block_of(kv.values, kv, kv_head, table, t) + static_cast<int64_t>(t % kLanes) * hd;
      v16 vvec[VD];
      for (int d = 0; d < VD; ++d) vvec[d] = load(v + d * kLanes);
      for (int32_t h = 0; h < hn; ++h) {
        const float p = scores[(h0 + h) * n_pad + t];
        for (int d = 0; d < VD; ++d) acc[h][d] += p * vvec[d];
      }
    }
    for (int32_t h = 0; h < hn; ++h) {
      for (int d = 0; d < VD; ++d) store(out + (h0 + h) * hd + d * kLanes, acc[h][d] * inverse_sums[h0 + h]);
    }
  }
}

// Any even head_dim or block size: the same two passes, one float at a time.
void attend_scalar(const float* q, int32_t group, const PagedKvView& kv, int32_t kv_head, const int32_t* table,
                   int32_t n, float scale, float* out, float* scores, float* /*inverse_sums*/) {
  const int32_t hd = kv.head_dim;
  const int32_t bt = kv.block_tokens;
  for (int32_t h = 0; h < group; ++h) {
    float* sc = scores + h * n;
    for (int32_t t = 0; t < n; ++t) {
      const float* kt = block_of(kv.keys, kv, kv_head, table, t);
      float acc = 0;
      for (int32_t d = 0; d < hd; ++d) acc += q[h * hd + d] * scale * kt[d * bt + t % bt];
      sc[t] = acc;
    }
    float mx = sc[0];
    for (int32_t t = 1; t < n; ++t) mx = std::max(mx, sc[t]);
    float sum = 0;
    for (int32_t t = 0; t < n; ++t) {
      sc[t] = detail::vexp(sc[t] - mx);
      sum += sc[t];
    }
    float* o = out + h * hd;
    std::fill(o, o + hd, 0.0f);
    for (int32_t t = 0; t < n; ++t) {
      const float* v = block_of(kv.values, kv, kv_head, table, t) + static_cast<int64_t>(t % bt) * hd;
      for (int32_t d = 0; d < hd; ++d) o[d] += sc[t] * v[d];
    }
    for (int32_t d = 0; d < hd; ++d) o[d] *= 1.0f / sum;
  }
}

using AttendFn = void (*)(const float*, int32_t, const PagedKvView&, int32_t, const int32_t*, int32_t, float,
                          float*, float*, float*);

template <int VD>
void attend_baseline(const float* q, int32_t group, const PagedKvView& kv, int32_t kv_head, const int32_t* table,
                     int32_t n, float scale, float* out, float* scores, float* inverse_sums) {
  attend<VD>(q, group, kv, kv_head, table, n, scale, out, scores, inverse_sums);
}

template <int VD>
__attribute__((target("avx512f,fma"))) void attend_avx512(const float* q, int32_t group, const PagedKvView& kv,
                                                          int32_t kv_head, const int32_t* table, int32_t n,
                                                          float scale, float* out, float* scores,
                                                          float* inverse_sums) {
  attend<VD>(q, group, kv, kv_head, table, n, scale, out, scores, inverse_sums);
}

bool use_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  }();
  return yes;
}

template <int VD>
AttendFn pick() {
  return use_avx512() ? &attend_avx512<VD> : &attend_baseline<VD>;
}

AttendFn kernel_for(int32_t hd, int32_t block_tokens) {
  if (block_tokens != kLanes) return &attend_scalar;
  switch (hd) {
    case 16: return pick<1>();
    case 32: return pick<2>();
    case 48: return pick<3>();
    case 64: return pick<4>();
    case 80: return pick<5>();
    case 96: return pick<6>();
    case 112: return pick<7>();
    case 128: return pick<8>();
    case 160: return pick<10>();
    case 192: return pick<12>();
    case 256: return pick<16>();
    default: return &attend_scalar;
  }
}

}  // namespace

void paged_attention_group(const float* q, int32_t group, const PagedKvView& kv, int32_t kv_head,
                           const int32_t* table, int32_t n, float scale, float* out) {
  // Per thread, grown as needed: every head's scores (padded to whole blocks), then each head's
  // inverse softmax sum. Any group size works; the buffer is the only thing that grows with it.
  thread_local std::vector<float> scratch;
  const size_t padded = static_cast<size_t>(group) * static_cast<size_t>((n + kLanes - 1) / kLanes * kLanes);
  if (scratch.size() < padded + static_cast<size_t>(group)) scratch.resize(padded + static_cast<size_t>(group));
  kernel_for(kv.head_dim, kv.block_tokens)(q, group, kv, kv_head, table, n, scale, out, scratch.data(),
                                           scratch.data() + padded);
}

}  // namespace coproc::kernels::cpu
