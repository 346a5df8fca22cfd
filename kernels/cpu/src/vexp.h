// exp(x) for float, written so that a loop calling it vectorises: no branches, no libm call.
// Cephes expf: Cody-Waite reduction x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for
// e^r, and 2^n built in the exponent bits. About 2 ulp over the clamped range; NaN propagates.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace coproc::kernels::cpu::detail {

// Inputs are clamped so that 2^n stays a normal float: e^-87 is near FLT_MIN, e^88 near FLT_MAX.
inline constexpr float kExpMin = -87.0f;
inline constexpr float kExpMax = 88.0f;

inline float vexp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln2 = kLn2Hi + kLn2Lo, kLn2Hi exact in few bits
  constexpr float kLn2Lo = -2.12194440e-4f;
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
  constexpr float kRoundMagic = 12582912.0f;
  // std::max/min keep x when it is NaN (comparisons with NaN are false), so NaN propagates.
  x = std::min(std::max(x, kExpMin), kExpMax);
  const float n = (x * kLog2e + kRoundMagic) - kRoundMagic;
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  // n is integral and within [-127, 128] here, or NaN when x is: a NaN cast to int is undefined,
  // so it becomes 0 (a select, which still vectorises); er is NaN then and carries it out.
  const float n_finite = n == n ? n : 0.0f;
  const auto exponent = static_cast<int32_t>(n_finite) + 127;
  return er * std::bit_cast<float>(static_cast<uint32_t>(exponent) << 23);
}

}  // namespace coproc::kernels::cpu::detail
