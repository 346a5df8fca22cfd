// Relu, Sigmoid and Tanh as straight loops with no branches and no libm calls, so -O3 vectorises
// each one (check with -fopt-info-vec).
#include <cassert>
#include <cmath>

#include "coproc/kernels/cpu.h"
#include "vexp.h"

namespace coproc::kernels::cpu {

using detail::vexp;

void relu(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void sigmoid(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  // With e = exp(-|x|) in (0, 1]: sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) otherwise.
  // exp never sees a positive argument, so nothing overflows and the tails keep their precision.
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float e = vexp(-std::fabs(v));
    const float s = 1.0f / (1.0f + e);
    y[i] = v >= 0.0f ? s : e * s;
  }
}

void tanh(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  // Cephes tanhf: an odd polynomial below |x| = kSmall, where (1 - e) / (1 + e) with
  // e = exp(-2|x|) would lose relative precision to cancellation; that formula above it.
  constexpr float kSmall = 0.625f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float z = v * v;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = v + v * z * p;
    const float e = vexp(-2.0f * std::fabs(v));
    const float large = (1.0f - e) / (1.0f + e);
    y[i] = std::fabs(v) < kSmall ? small : (v < 0.0f ? -large : large);
  }
}

}  // namespace coproc::kernels::cpu
