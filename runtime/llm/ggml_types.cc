#include "llm/ggml_types.h"

#include <cstdlib>
#include <cstring>

#include "coproc/kernels/half.h"

namespace coproc::llm {

namespace {

GgmlTypeTraits unknown() { return {"unknown", 0, 0, false}; }

}  // namespace

GgmlTypeTraits type_traits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return {"f32", 1, 4, true};
    case GgmlType::kF16: return {"f16", 1, 2, true};
    case GgmlType::kBF16: return {"bf16", 1, 2, true};
    case GgmlType::kQ8_0: return {"q8_0", 32, 34, true};
    case GgmlType::kQ4_0: return {"q4_0", 32, 18, true};
    case GgmlType::kQ4_1: return {"q4_1", 32, 20, true};
    // Known to the format, not run here: their sizes still let the reader check a file that
    // carries them, so the refusal can name the tensor and the type.
    case GgmlType::kQ5_0: return {"q5_0", 32, 22, false};
    case GgmlType::kQ5_1: return {"q5_1", 32, 24, false};
    case GgmlType::kQ8_1: return {"q8_1", 32, 36, false};
    case GgmlType::kQ2_K: return {"q2_k", 256, 84, false};
    case GgmlType::kQ3_K: return {"q3_k", 256, 110, false};
    case GgmlType::kQ4_K: return {"q4_k", 256, 144, false};
    case GgmlType::kQ5_K: return {"q5_k", 256, 176, false};
    case GgmlType::kQ6_K: return {"q6_k", 256, 210, false};
    case GgmlType::kQ8_K: return {"q8_k", 256, 292, false};
  }
  return unknown();
}

const char* type_name(uint32_t type) { return type_traits(type).name; }

int64_t row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeTraits t = type_traits(static_cast<uint32_t>(type));
  if (t.block_elems == 0 || n < 0 || n % t.block_elems != 0) return -1;
  return n / t.block_elems * t.block_bytes;
}

float f16_to_f32(uint16_t h) { return kernels::cpu::half_to_float(h); }

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past the largest half: infinity
  if (abs < 0x38800000u) {                        // subnormal half (or zero)
    if (abs < 0x33000000u) return sign;           // below half the smallest subnormal
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14 .. 24
    const uint32_t half = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    const uint32_t rounded = half + (rest > mid || (rest == mid && (half & 1u)));
    return sign | static_cast<uint16_t>(rounded);
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);  // round to nearest even
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    case GgmlType::kQ8_0:
      for (int64_t b = 0; b < n / kQuantBlock; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, bytes + b * sizeof blk, sizeof blk);
        const float d = f16_to_f32(blk.d);
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * static_cast<float>(blk.q[j]);
      }
      return;
    case GgmlType::kQ4_0:
      for (int64_t b = 0; b < n / kQuantBlock; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, bytes + b * sizeof blk, sizeof blk);
        const float d = f16_to_f32(blk.d);
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = d * static_cast<float>((blk.qs[j] & 0x0f) - 8);
          dst[b * 32 + j + 16] = d * static_cast<float>((blk.qs[j] >> 4) - 8);
        }
      }
      return;
    case GgmlType::kQ4_1:
      for (int64_t b = 0; b < n / kQuantBlock; ++b) {
        BlockQ4_1 blk;
        std::memcpy(&blk, bytes + b * sizeof blk, sizeof blk);
        const float d = f16_to_f32(blk.d);
        const float m = f16_to_f32(blk.m);
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = d * static_cast<float>(blk.qs[j] & 0x0f) + m;
          dst[b * 32 + j + 16] = d * static_cast<float>(blk.qs[j] >> 4) + m;
        }
      }
      return;
    default:
      break;
  }
  // A type without a reference is a programmer error: loaders refuse such tensors first.
  std::abort();
}

}  // namespace coproc::llm
