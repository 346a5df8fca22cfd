// AVX-VNNI tiles (the VEX-encoded vpdpbusd of Alder Lake, Sapphire Rapids, Zen 5): the AVX2
// variant's halves of 8 rows in ymm lanes (quant_avx2.cc), with one vpdpbusd per quant group and
// activation row instead of vpmaddubsw + vpmaddwd. As in the AVX-512 VNNI variant, Q4 nibbles go
// in unsigned as they stand (kQ4_0's 8 comes off as 8 * sum(q)) and kQ8_0 weights get 128 added
// (xor 0x80), taken off as 128 * sum(q): the exact integer dot products of every variant.
// Built with -ffp-contract=off: the float steps are the separate multiplies and adds of
// quant_matmul.h, the same in every variant.
#include <immintrin.h>

#include <algorithm>

#include "quant_tiles.h"

#define COPROC_TARGET_AVXVNNI __attribute__((target("avx2,f16c,avxvnni")))

namespace coproc::kernels::cpu::detail {
namespace {

constexpr int kMr = 4;
constexpr int kHalf = 8;

COPROC_TARGET_AVXVNNI inline __m256i broadcast4(const int8_t* q) {
  return _mm256_set1_epi32(load_i32(q));
}

COPROC_TARGET_AVXVNNI inline __m256i lane_mask(const TileJob& job, int h) {
  const __m256i lane =
      _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(h * kHalf));
  const __m256i ge = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(job.lane_begin - 1));
  const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(job.lane_end), lane);
  return _mm256_and_si256(ge, lt);
}

template <QuantWeight kType, int R>
COPROC_TARGET_AVXVNNI void rows_of_half(const TileJob& job, int h, int64_t i0) {
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
  const __m256i bias8 = _mm256_set1_epi8(static_cast<char>(0x80));
  const uint8_t* block = job.tile;
  for (int64_t b = 0; b < job.blocks; ++b, block += kStep) {
    const uint8_t* q = block + kQuants + h * 32;
    __m256i isum[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    if constexpr (kType == QuantWeight::kQ8_0) {
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        const __m256i w = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g * kGroupBytes)), bias8);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          isum[r] = _mm256_dpbusd_avx_epi32(isum[r], w, broadcast4(xr[r][b].q + 4 * g));
        }
      }
    } else {
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m256i raw =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g * kGroupBytes));
        const __m256i lo = _mm256_and_si256(raw, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          isum[r] = _mm256_dpbusd_avx_epi32(isum[r], lo, broadcast4(xr[r][b].q + 4 * g));
          isum[r] = _mm256_dpbusd_avx_epi32(isum[r], hi, broadcast4(xr[r][b].q + 16 + 4 * g));
        }
      }
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
      } else if constexpr (kType == QuantWeight::kQ8_0) {
        isum[r] = _mm256_sub_epi32(isum[r], _mm256_set1_epi32(128 * sr[r][b]));
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
COPROC_TARGET_AVXVNNI void tile_of_type(const TileJob& job) {
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

void tile_avxvnni(const TileJob& job) {
  switch (job.type) {
    case QuantWeight::kQ4_0:
      return tile_of_type<QuantWeight::kQ4_0>(job);
    case QuantWeight::kQ4_1:
      return tile_of_type<QuantWeight::kQ4_1>(job);
    case QuantWeight::kQ8_0:
      return tile_of_type<QuantWeight::kQ8_0>(job);
  }
}

}  // namespace coproc::kernels::cpu::detail
