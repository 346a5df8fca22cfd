// What the OpenCL kernel tests share: one Device for the whole process (opening one builds our
// program and CLBlast's, seconds on PoCL), moving vectors to and from it, and the host side of
// strided layouts.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "coproc/kernels/opencl.h"

namespace coproc::kernels::opencl::test {

// The first GPU, else the first device, opened on first use; null (the reason in *error) when
// none opens.
Device* shared_device(std::string* error);

struct Tensor {
  Buffer buffer;
  Mem mem;
};

// A fixture whose tests fail, not skip, without a device.
class OpenClTest : public ::testing::Test {
 protected:
  void SetUp() override;
  Device& device() { return *device_; }

  // A new buffer holding `values` after `pad` unused elements, so that its Mem has an offset.
  template <class T>
  Tensor upload(const std::vector<T>& values, std::size_t pad = 0) {
    std::string error;
    Tensor t;
    t.buffer = device_->alloc((values.size() + pad) * sizeof(T), &error);
    EXPECT_NE(t.buffer.get(), nullptr) << error;
    t.mem = t.buffer.at(pad * sizeof(T));
    device_->write(t.mem, values.data(), values.size() * sizeof(T));
    expect_clean_finish();
    return t;
  }

  template <class T>
  std::vector<T> download(Mem mem, std::size_t count) {
    std::vector<T> values(count);
    device_->read(values.data(), mem, count * sizeof(T));
    expect_clean_finish();
    return values;
  }

  // finish(), expecting no failure.
  void expect_clean_finish();

 private:
  Device* device_ = nullptr;
};

// A box's dims and the strides of out, a, b and c, from vectors (all of one length, the rank).
Strided make_layout(const std::vector<int64_t>& dims, const std::vector<int64_t>& out,
                    const std::vector<int64_t>& a, const std::vector<int64_t>& b = {},
                    const std::vector<int64_t>& c = {});
// Row-major strides of dims.
std::vector<int64_t> dense_strides(const std::vector<int64_t>& dims);

// Where an operand's elements lie: `base` is the offset (in elements) of index 0 in a storage of
// `size` elements that holds every element the strides reach, negative strides included.
struct Extent {
  int64_t base = 0;
  int64_t size = 1;
};
Extent extent(const Strided& layout, const int64_t* strides);

// Calls f(out, a, b, c) with the storage offsets (bases included) of every index of the box.
void for_each_index(const Strided& layout, const Extent bases[4],
                    const std::function<void(int64_t, int64_t, int64_t, int64_t)>& f);

// Floats agree: both NaN, or |got - want| <= atol + rtol * |want| (infinities exactly).
::testing::AssertionResult near(double got, double want, double rtol, double atol);

// Reproducible values: specials (0, -0, +-1, +-inf, NaN) first, then normal(0, scale).
std::vector<float> test_floats(std::size_t n, uint32_t seed, float scale = 3.0f,
                               bool specials = true);

}  // namespace coproc::kernels::opencl::test
