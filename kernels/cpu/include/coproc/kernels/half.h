// IEEE half precision to float: the one conversion the quantized kernels (block scales and mins)
// and the LLM engine's dequantizing references (runtime/llm/ggml_types.cc) share.
#pragma once

#include <cstdint>
#include <cstring>

namespace coproc::kernels::cpu {

// Exactly, as vcvtph2ps does: subnormals exact, infinities kept, NaNs quiet with their payload.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    float f = static_cast<float>(mantissa) * 0x1p-24f;
    std::memcpy(&bits, &f, sizeof bits);
    bits |= sign;
  } else if (exponent == 31) {
    bits = sign | 0x7F800000u | (mantissa << 13) | (mantissa != 0 ? 0x00400000u : 0u);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace coproc::kernels::cpu
