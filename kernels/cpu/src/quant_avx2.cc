// AVX2 tiles: a tile is two halves of 8 rows, each the 8 int32 lanes of a ymm. Per quant group
// (4 bytes of each row) and activation row: vpmaddubsw against the row's 4 bytes broadcast, then
// vpmaddwd by 1 to int32. Q4 nibbles are unsigned as they stand; kQ4_0's offset of 8 comes off as
// 8 * sum(q). The Q4 pair sums are added in int16 over the block's 4 groups first (at most
// 8 * 2 * 15 * 128 = 30720, no saturation). kQ8_0 uses |w| and sign(x, w) (vpsignb), since
// vpmaddubsw wants its first operand unsigned; those pair sums (up to 2 * 128 * 127) go to int32
// at once. Every step is exact: the integer dot products are those of every other variant.
// Built with -ffp-contract=off: the float steps are the separate multiplies and adds of
// quant_matmul.h, the same in every variant.
#include <immintrin.h>

#include <algorithm>

#include "quant_tiles.h"

#define COPROC_TARGET_AVX2 __attribute__((target("avx2,f16c")))

namespace coproc::kernels::cpu::detail {
namespace {

constexpr int kMr = 4;
constexpr int kHalf = 8;

COPROC_TARGET_AVX2 inline __m256i broadcast4(const int8_t* q) {
  return _mm256_set1_epi32(load_i32(q));
}

// The lanes of half h that are stored: all-ones int32 lanes.
COPROC_TARGET_AVX2 inline __m256i lane_mask(const TileJob& job, int h) {
  const __m256i lane =
      _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(h * kHalf));
  const __m256i ge = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(job.lane_begin - 1));
  const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(job.lane_end), lane);
  return _mm256_and_si256(ge, lt);
}

template <QuantWeight kType, int R>
COPROC_TARGET_AVX2 void rows_of_half(const TileJob& job, int h, int64_t i0) {
  constexpr int64_t kStep = tile_block_bytes(kType);
  constexpr int64_t kQuants = quants_offset(kType);
  const __m256i lanes = lane_mask(job, h);
  const BlockQ8A* xr[R];
  const int32_t* sr[R];
  float* yr[R];
  __m256 acc[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    xr[r] = job.x + (i0 + r) * job.x_stride;
    sr[r] = job.sums + (i0 + r) * job.sums_stride;
    yr[r] = job.y + (i0 + r) * job.ldy + h * kHalf;
    acc[r] = job.accumulate ? _mm256_maskload_ps(yr[r], lanes) : _mm256_setzero_ps();
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  const uint8_t* block = job.tile;
  for (int64_t b = 0; b < job.blocks; ++b, block += kStep) {
    const uint8_t* q = block + kQuants + h * 32;
    __m256i isum[R];
    if constexpr (kType == QuantWeight::kQ8_0) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g * kGroupBytes));
        const __m256i aw = _mm256_abs_epi8(w);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m256i sx = _mm256_sign_epi8(broadcast4(xr[r][b].q + 4 * g), w);
          isum[r] =
              _mm256_add_epi32(isum[r], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones));
        }
      }
    } else {
      __m256i s16[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) s16[r] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m256i raw =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g * kGroupBytes));
        const __m256i lo = _mm256_and_si256(raw, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m256i p =
              _mm256_add_epi16(_mm256_maddubs_epi16(lo, broadcast4(xr[r][b].q + 4 * g)),
                               _mm256_maddubs_epi16(hi, broadcast4(xr[r][b].q + 16 + 4 * g)));
          s16[r] = _mm256_add_epi16(s16[r], p);
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) isum[r] = _mm256_madd_epi16(s16[r], ones);
    }
    const __m256 dw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 * h * kHalf)));
    __m256 mw = _mm256_setzero_ps();
    if constexpr (kType == QuantWeight::kQ4_1) {
      mw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kMinOffset + 2 * h * kHalf)));
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      if constexpr (kType == QuantWeight::kQ4_0) {
        isum[r] = _mm256_sub_epi32(isum[r], _mm256_set1_epi32(8 * sr[r][b]));
      }
      const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(xr[r][b].d));
      acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum[r])));
      if constexpr (kType == QuantWeight::kQ4_1) {
        acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(mw, _mm256_set1_ps(xr[r][b].s)));
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) _mm256_maskstore_ps(yr[r], lanes, acc[r]);
}

template <QuantWeight kType>
COPROC_TARGET_AVX2 void tile_of_type(const TileJob& job) {
  for (int h = 0; h < 2; ++h) {
    if (job.lane_end <= h * kHalf || job.lane_begin >= (h + 1) * kHalf) continue;
    int64_t i = 0;
    for (; i + kMr <= job.rows; i += kMr) rows_of_half<kType, kMr>(job, h, i);
    switch (job.rows - i) {
      case 1:
        rows_of_half<kType, 1>(job, h, i);
        break;
      case 2:
        rows_of_half<kType, 2>(job, h, i);
        break;
      case 3:
        rows_of_half<kType, 3>(job, h, i);
        break;
      default:
        break;
    }
  }
}

}  // namespace

void tile_avx2(const TileJob& job) {
  switch (job.type) {
    case QuantWeight::kQ4_0:
      return tile_of_type<QuantWeight::kQ4_0>(job);
    case QuantWeight::kQ4_1:
      return tile_of_type<QuantWeight::kQ4_1>(job);
    case QuantWeight::kQ8_0:
      return tile_of_type<QuantWeight::kQ8_0>(job);
  }
}

// As quantize_portable, 8 lanes at a time: the same max, the same scalar d and 1 / d, the same
// products, rounding (nearest, ties to even) and range check, and an exact integer sum.
COPROC_TARGET_AVX2 void quantize_avx2(const float* x, int64_t k, BlockQ8A* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 lo = _mm256_set1_ps(-127.0f);
  const __m256 hi = _mm256_set1_ps(127.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + b * kBlock + 8 * j);
      m = _mm256_max_ps(_mm256_and_ps(v[j], abs_mask), m);  // a NaN never wins
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 scale = _mm256_set1_ps(id);
    __m256i q[4];
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[j], scale),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m256 ok =
          _mm256_and_ps(_mm256_cmp_ps(r, lo, _CMP_GE_OQ), _mm256_cmp_ps(r, hi, _CMP_LE_OQ));
      q[j] = _mm256_and_si256(_mm256_cvttps_epi32(r), _mm256_castps_si256(ok));
      sum = _mm256_add_epi32(sum, q[j]);
    }
    const __m256i q16 =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q),
                        _mm256_permutevar8x32_epi32(q16, order));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    out[b].d = d;
    out[b].s = d * static_cast<float>(_mm_cvtsi128_si32(s4));
  }
}

}  // namespace coproc::kernels::cpu::detail
