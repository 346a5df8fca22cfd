// The tensor types of ggml that GGUF files carry, and the ones we run: F32, F16, BF16, Q8_0, Q4_0
// and Q4_1. Their block layouts are the file format's (little-endian), described below; each has
// a dequantizing reference that the kernels and the tests are held against.
#pragma once

#include <cstdint>

namespace coproc::llm {

// The numeric values are ggml's `ggml_type`, as stored in a GGUF tensor info.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kBF16 = 30,
};

// Elements per block; 32 for the Q types, 1 for the float types.
inline constexpr int64_t kQuantBlock = 32;

// Block layouts (packed, no padding):
//   Q8_0: f16 d; int8 q[32]                          x = d * q                  (34 bytes)
//   Q4_0: f16 d; uint8 qs[16]                        x = d * (nibble - 8)       (18 bytes)
//   Q4_1: f16 d; f16 m; uint8 qs[16]                 x = d * nibble + m         (20 bytes)
// where element j < 16 is the low nibble of qs[j] and element j + 16 its high nibble.
struct BlockQ8_0 { uint16_t d; int8_t q[32]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[16]; };
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);

struct GgmlTypeTraits {
  const char* name;       // "q4_1", as ggml names it; "type 42" style names come from type_name()
  int64_t block_elems;    // 0: a type we do not know
  int64_t block_bytes;
  bool supported;         // we can run it
};

// Traits of a type; unknown values get {name "unknown", 0, 0, false}.
GgmlTypeTraits type_traits(uint32_t type);
// "q4_1", or "unknown type 42".
const char* type_name(uint32_t type);

// Bytes of a row of n elements, or -1 when n is not a multiple of the block or the type is
// unknown.
int64_t row_bytes(GgmlType type, int64_t n);

// The reference: n elements (a multiple of the block) from src into dst. Only supported types.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

float f16_to_f32(uint16_t h);  // exactly; kernels/cpu half.h, shared with the kernels
uint16_t f32_to_f16(float f);  // round to nearest even
float bf16_to_f32(uint16_t h);

}  // namespace coproc::llm
