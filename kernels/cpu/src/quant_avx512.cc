// AVX-512 VNNI tiles: the 16 rows of a tile are the 16 int32 lanes of a zmm. One vpdpbusd takes a
// quant group (4 bytes of each of the 16 rows) against 4 bytes of one activation row broadcast to
// every lane: 64 multiply-adds. A block is 8 of them per activation row; the tile's block is
// loaded and unpacked once for up to kMr activation rows (8 int sums + 8 float accumulators + the
// unpacked weights: 24 of 32 zmm).
// vpdpbusd multiplies unsigned by signed bytes: Q4 nibbles are unsigned as they stand (kQ4_0's
// offset of 8 comes off as 8 * sum(q)); kQ8_0's signed weights get 128 added (xor 0x80) and
// 128 * sum(q) taken off. Both give the exact integer dot product.
// Built with -ffp-contract=off: the float steps are the separate multiplies and adds of
// quant_matmul.h, the same in every variant.
// GCC 12 reports the _mm512_undefined_* that many AVX-512 intrinsics pass as their unused
// source operand as maybe-uninitialized; it is a false positive (the values are never read).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "quant_tiles.h"

#define COPROC_TARGET_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

namespace coproc::kernels::cpu::detail {
namespace {

constexpr int kMr = 8;

// Horizontal max and sum.
COPROC_TARGET_VNNI512 inline float max_of(__m512 v) {
  __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_max_ss(q, _mm_shuffle_ps(q, q, 1)));
}

COPROC_TARGET_VNNI512 inline int32_t sum_of(__m512i v) {
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
}

COPROC_TARGET_VNNI512 inline __m512i broadcast4(const int8_t* q) {
  return _mm512_set1_epi32(load_i32(q));
}

template <QuantWeight kType, int R>
COPROC_TARGET_VNNI512 void rows_of_tile(const TileJob& job, int64_t i0) {
  constexpr int64_t kStep = tile_block_bytes(kType);
  constexpr int64_t kQuants = quants_offset(kType);
  const __mmask16 lanes =
      static_cast<__mmask16>(((1u << job.lane_end) - 1u) & ~((1u << job.lane_begin) - 1u));
  const BlockQ8A* xr[R];
  const int32_t* sr[R];
  __m512 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    xr[r] = job.x + (i0 + r) * job.x_stride;
    sr[r] = job.sums + (i0 + r) * job.sums_stride;
    acc[r] = job.accumulate ? _mm512_maskz_loadu_ps(lanes, job.y + (i0 + r) * job.ldy)
                            : _mm512_setzero_ps();
  }
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bias8 = _mm512_set1_epi8(static_cast<char>(0x80));
  const uint8_t* block = job.tile;
  for (int64_t b = 0; b < job.blocks; ++b, block += kStep) {
    const uint8_t* q = block + kQuants;
    // With few activation rows the vpdpbusd chain of one row's block is the critical path (its
    // latency, not the loads): two integer partial sums halve it. Integer sums are exact, so the
    // result is the same bits for every R.
    constexpr bool kSplit = R <= 2;
    __m512i isum[R], isum2[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) isum[r] = isum2[r] = _mm512_setzero_si512();
    if constexpr (kType == QuantWeight::kQ8_0) {
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        const __m512i w = _mm512_xor_si512(_mm512_loadu_si512(q + g * kGroupBytes), bias8);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          __m512i& into = kSplit && (g & 1) ? isum2[r] : isum[r];
          into = _mm512_dpbusd_epi32(into, w, broadcast4(xr[r][b].q + 4 * g));
        }
      }
    } else {
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m512i raw = _mm512_loadu_si512(q + g * kGroupBytes);
        const __m512i lo = _mm512_and_si512(raw, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          isum[r] = _mm512_dpbusd_epi32(isum[r], lo, broadcast4(xr[r][b].q + 4 * g));
          __m512i& into = kSplit ? isum2[r] : isum[r];
          into = _mm512_dpbusd_epi32(into, hi, broadcast4(xr[r][b].q + 16 + 4 * g));
        }
      }
    }
    if constexpr (kSplit) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) isum[r] = _mm512_add_epi32(isum[r], isum2[r]);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block)));
    __m512 mw = _mm512_setzero_ps();
    if constexpr (kType == QuantWeight::kQ4_1) {
      mw =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kMinOffset)));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      if constexpr (kType == QuantWeight::kQ4_0) {
        isum[r] = _mm512_sub_epi32(isum[r], _mm512_set1_epi32(8 * sr[r][b]));
      } else if constexpr (kType == QuantWeight::kQ8_0) {
        isum[r] = _mm512_sub_epi32(isum[r], _mm512_set1_epi32(128 * sr[r][b]));
      }
      const __m512 dd = _mm512_mul_ps(dw, _mm512_set1_ps(xr[r][b].d));
      acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(dd, _mm512_cvtepi32_ps(isum[r])));
      if constexpr (kType == QuantWeight::kQ4_1) {
        acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(mw, _mm512_set1_ps(xr[r][b].s)));
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(job.y + (i0 + r) * job.ldy, lanes, acc[r]);
}

template <QuantWeight kType>
COPROC_TARGET_VNNI512 void tile_of_type(const TileJob& job) {
  int64_t i = 0;
  for (; i + kMr <= job.rows; i += kMr) rows_of_tile<kType, kMr>(job, i);
  switch (job.rows - i) {
    case 1:
      rows_of_tile<kType, 1>(job, i);
      break;
    case 2:
      rows_of_tile<kType, 2>(job, i);
      break;
    case 3:
      rows_of_tile<kType, 3>(job, i);
      break;
    case 4:
      rows_of_tile<kType, 4>(job, i);
      break;
    case 5:
      rows_of_tile<kType, 5>(job, i);
      break;
    case 6:
      rows_of_tile<kType, 6>(job, i);
      break;
    case 7:
      rows_of_tile<kType, 7>(job, i);
      break;
    default:
      break;
  }
}

}  // namespace

void tile_avx512vnni(const TileJob& job) {
  switch (job.type) {
    case QuantWeight::kQ4_0:
      return tile_of_type<QuantWeight::kQ4_0>(job);
    case QuantWeight::kQ4_1:
      return tile_of_type<QuantWeight::kQ4_1>(job);
    case QuantWeight::kQ8_0:
      return tile_of_type<QuantWeight::kQ8_0>(job);
  }
}

// As quantize_portable, 16 lanes at a time: the same max, the same scalar d and 1 / d, the same
// products, rounding (nearest, ties to even) and range check, and an exact integer sum.
COPROC_TARGET_VNNI512 void quantize_avx512(const float* x, int64_t k, BlockQ8A* out) {
  const __m512 lo = _mm512_set1_ps(-127.0f);
  const __m512 hi = _mm512_set1_ps(127.0f);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * kBlock);
    const __m512 v1 = _mm512_loadu_ps(x + b * kBlock + 16);
    // maxps(a, m) returns m when a is NaN, as the portable loop does.
    __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
    m = _mm512_max_ps(_mm512_abs_ps(v1), m);
    const float amax = max_of(m);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 scale = _mm512_set1_ps(id);
    int32_t sum = 0;
    const __m512 halves[2] = {v0, v1};
    for (int h = 0; h < 2; ++h) {
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(halves[h], scale),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __mmask16 ok =
          _mm512_cmp_ps_mask(r, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(r, hi, _CMP_LE_OQ);
      const __m512i q = _mm512_maskz_cvttps_epi32(ok, r);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].q + 16 * h), _mm512_cvtepi32_epi8(q));
      sum += sum_of(q);
    }
    out[b].d = d;
    out[b].s = d * static_cast<float>(sum);
  }
}

}  // namespace coproc::kernels::cpu::detail
