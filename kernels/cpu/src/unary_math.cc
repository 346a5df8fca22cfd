// Exp, Sqrt, Neg and Reciprocal as straight loops the compiler vectorises. This file is built
// with -fno-math-errno (kernels/cpu/CMakeLists.txt): otherwise std::sqrt must set errno for a
// negative argument, which keeps its loop scalar.
#include <cassert>
#include <cmath>

#include "coproc/kernels/cpu.h"
#include "vexp.h"

namespace coproc::kernels::cpu {

using detail::kExpMax;
using detail::kExpMin;
using detail::vexp;

void exp(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  // vexp clamps its argument to [kExpMin, kExpMax], where 2^n is a normal float. Outside that
  // range e^x = (e^(x/2))^2: the square overflows to +inf above ln(FLT_MAX) ~ 88.72 and
  // underflows through the subnormals to 0 below about -103.97, as IEEE exp does. NaN fails the
  // range test and squares to NaN.
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float half = vexp(0.5f * v);
    y[i] = v >= kExpMin && v <= kExpMax ? vexp(v) : half * half;
  }
}

void sqrt(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
}

void neg(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
}

void reciprocal(const float* x, float* y, int64_t n) {
  assert(n == 0 || (x != nullptr && y != nullptr));
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / x[i];
}

}  // namespace coproc::kernels::cpu
