#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace coproc::kernels::opencl::test {

Device* shared_device(std::string* error) {
  // Opened once for the process (ctest runs each test in a process of its own; run by hand,
  // every test after the first finds the device ready) and never closed: the OpenCL driver's
  // own statics may be gone by the time ours would be destroyed.
  static std::string why;
  static Device* const device = Device::open(Selector{}, &why).release();
  *error = why;
  return device;
}

void OpenClTest::SetUp() {
  std::string error;
  device_ = shared_device(&error);
  ASSERT_NE(device_, nullptr) << "no OpenCL device to test (install pocl-opencl-icd): " << error;
}

void OpenClTest::expect_clean_finish() {
  const Failure failure = device_->finish();
  EXPECT_FALSE(failure.failed) << failure.message;
}

Strided make_layout(const std::vector<int64_t>& dims, const std::vector<int64_t>& out,
                    const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                    const std::vector<int64_t>& c) {
  Strided l;
  l.rank = static_cast<int>(dims.size());
  for (std::size_t d = 0; d < dims.size(); ++d) {
    l.dims[d] = dims[d];
    l.out[d] = out[d];
    l.a[d] = a[d];
    l.b[d] = b.empty() ? 0 : b[d];
    l.c[d] = c.empty() ? 0 : c[d];
  }
  return l;
}

std::vector<int64_t> dense_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size());
  int64_t s = 1;
  for (std::size_t d = dims.size(); d-- > 0;) {
    strides[d] = s;
    s *= dims[d];
  }
  return strides;
}

Extent extent(const Strided& layout, const int64_t* strides) {
  int64_t low = 0;
  int64_t high = 0;
  for (int d = 0; d < layout.rank; ++d) {
    const int64_t reach = (layout.dims[d] - 1) * strides[d];
    (reach < 0 ? low : high) += reach;
  }
  return {-low, high - low + 1};
}

void for_each_index(const Strided& layout, const Extent bases[4],
                    const std::function<void(int64_t, int64_t, int64_t, int64_t)>& f) {
  const int64_t* strides[4] = {layout.out, layout.a, layout.b, layout.c};
  const int64_t n = layout.elements();
  for (int64_t i = 0; i < n; ++i) {
    int64_t offsets[4] = {bases[0].base, bases[1].base, bases[2].base, bases[3].base};
    int64_t rest = i;
    for (int d = layout.rank - 1; d >= 0; --d) {
      const int64_t index = rest % layout.dims[d];
      rest /= layout.dims[d];
      for (int k = 0; k < 4; ++k) offsets[k] += index * strides[k][d];
    }
    f(offsets[0], offsets[1], offsets[2], offsets[3]);
  }
}

::testing::AssertionResult near(double got, double want, double rtol, double atol) {
  if (std::isnan(got) && std::isnan(want)) return ::testing::AssertionSuccess();
  if (std::isinf(want) && got == want) return ::testing::AssertionSuccess();
  if (std::fabs(got - want) <= atol + rtol * std::fabs(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want;
}

std::vector<float> test_floats(std::size_t n, uint32_t seed, float scale, bool specials) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float kSpecials[] = {
      0.0f, -0.0f, 1.0f, -1.0f, kInf, -kInf, std::numeric_limits<float>::quiet_NaN()};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = specials && i < std::size(kSpecials) ? kSpecials[i] : normal(rng);
  }
  return v;
}

}  // namespace coproc::kernels::opencl::test
