// Device::cast and Device::reduce against host loops: every dtype pair and the edge values of
// each (NaN, infinities, out of range, bools other than 0 and 1), and reductions over boxes of
// several shapes, empty ones included.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.h"

namespace coproc::kernels::opencl::test {
namespace {

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  if constexpr (std::is_same_v<T, int64_t>) return DType::kInt64;
  if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
  return DType::kBool;
}

// numpy's astype as the CPU device defines every case: float to integer truncates, and NaN or
// a value out of range gives the minimum; anything nonzero is true; narrowing wraps.
template <class To, class From>
To expected_cast(From v) {
  if constexpr (std::is_same_v<To, uint8_t>) {
    return v != From{0} ? 1 : 0;
  } else if constexpr (std::is_same_v<From, uint8_t>) {
    return v != 0 ? To{1} : To{0};
  } else if constexpr (std::is_same_v<From, float> && !std::is_same_v<To, float>) {
    const float low = std::ldexp(-1.0f, std::numeric_limits<To>::digits);
    return v >= low && v < -low ? static_cast<To>(v) : std::numeric_limits<To>::min();
  } else if constexpr (std::is_same_v<To, int32_t> && std::is_same_v<From, int64_t>) {
    return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v)));
  } else {
    return static_cast<To>(v);
  }
}

class CastReduceTest : public OpenClTest {
 protected:
  template <class From, class To>
  void check_cast(const std::vector<From>& in) {
    SCOPED_TRACE(std::string("from ") + std::to_string(static_cast<int>(dtype_of<From>())) +
                 " to " + std::to_string(static_cast<int>(dtype_of<To>())));
    const Tensor source = upload(in, 1);
    // One element more than the cast writes: it must keep its marker.
    const Tensor target = upload(std::vector<To>(in.size() + 1, To{3}), 2);
    device().cast({dtype_of<From>(), dtype_of<To>(), static_cast<int64_t>(in.size())}, target.mem,
                  source.mem);
    const auto got = download<To>(target.mem, in.size() + 1);
    for (std::size_t i = 0; i < in.size(); ++i) {
      const To want = expected_cast<To>(in[i]);
      if constexpr (std::is_same_v<To, float>) {
        EXPECT_TRUE(near(got[i], want, 0, 0)) << "element " << i;
      } else {
        EXPECT_EQ(+got[i], +want) << "element " << i << " of value " << +in[i];
      }
    }
    EXPECT_EQ(got.back(), To{3}) << "written past the end";
  }

  template <class From>
  void check_casts_from(const std::vector<From>& in) {
    check_cast<From, float>(in);
    check_cast<From, int64_t>(in);
    check_cast<From, int32_t>(in);
    check_cast<From, uint8_t>(in);
  }

  // Runs `call` over `in` (offsets from its start) into a fresh output.
  template <class TO, class TI>
  std::vector<TO> run_reduce(const ReduceCall& call, const std::vector<TI>& in) {
    int64_t outputs = 1;
    for (int d = 0; d < call.out_rank; ++d) outputs *= call.out_dims[d];
    const Tensor source = upload(in, 3);
    const Tensor target = upload(std::vector<TO>(static_cast<std::size_t>(outputs), TO{7}), 1);
    device().reduce(call, target.mem, source.mem);
    return download<TO>(target.mem, static_cast<std::size_t>(outputs));
  }
};

// The values output i of `call` reduces, in the box's row-major order.
template <class T>
std::vector<T> box_values(const ReduceCall& call, const std::vector<T>& in, int64_t i) {
  int64_t base = 0;
  for (int d = call.out_rank - 1; d >= 0; --d) {
    base += i % call.out_dims[d] * call.in_strides[d];
    i /= call.out_dims[d];
  }
  int64_t count = 1;
  for (int d = 0; d < call.reduced_rank; ++d) count *= call.reduced_dims[d];
  std::vector<T> values;
  for (int64_t j = 0; j < count; ++j) {
    int64_t offset = base, rest = j;
    for (int d = call.reduced_rank - 1; d >= 0; --d) {
      offset += rest % call.reduced_dims[d] * call.reduced_strides[d];
      rest /= call.reduced_dims[d];
    }
    values.push_back(in[static_cast<std::size_t>(offset)]);
  }
  return values;
}

ReduceCall reduce_call(Reduce op, DType dtype, const std::vector<int64_t>& out_dims,
                       const std::vector<int64_t>& in_strides,
                       const std::vector<int64_t>& reduced_dims,
                       const std::vector<int64_t>& reduced_strides) {
  ReduceCall call;
  call.op = op;
  call.dtype = dtype;
  call.out_rank = static_cast<int>(out_dims.size());
  call.reduced_rank = static_cast<int>(reduced_dims.size());
  for (std::size_t d = 0; d < out_dims.size(); ++d) {
    call.out_dims[d] = out_dims[d];
    call.in_strides[d] = in_strides[d];
  }
  for (std::size_t d = 0; d < reduced_dims.size(); ++d) {
    call.reduced_dims[d] = reduced_dims[d];
    call.reduced_strides[d] = reduced_strides[d];
  }
  return call;
}

TEST_F(CastReduceTest, shouldCastEveryPairAsTheCpuDevice) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  check_casts_from<float>({0.0f, -0.0f, 1.5f, -1.5f, 2.9f, -2.9f,
                           std::numeric_limits<float>::quiet_NaN(), kInf, -kInf, 3e9f, -3e9f,
                           2147483520.0f, -2147483648.0f, 2147483648.0f, 1e19f,
                           -9223372036854775808.0f, 9223372036854775808.0f, 1e-30f, 16777216.0f});
  check_casts_from<int64_t>({0, 1, -1, (int64_t{1} << 40) + 5, -(int64_t{1} << 40) - 7,
                             std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::max(), int64_t{1} << 31, 16777217});
  check_casts_from<int32_t>({0, 1, -1, std::numeric_limits<int32_t>::min(),
                             std::numeric_limits<int32_t>::max(), 16777217, 7});
  check_casts_from<uint8_t>({0, 1, 2, 255, 0});
}

TEST_F(CastReduceTest, shouldReduceFloatBoxesOfEveryShape) {
  struct Box {
    std::string name;
    std::vector<int64_t> out_dims, in_strides, reduced_dims, reduced_strides;
    std::size_t storage;
  };
  const std::vector<Box> boxes = {
      {"all of [7, 33]", {}, {}, {7, 33}, {33, 1}, 231},
      {"rows of [7, 33]", {7}, {33}, {33}, {1}, 231},
      {"columns of [7, 33]", {33}, {1}, {7}, {33}, 231},
      {"axes 0 and 2 of [3, 5, 4]", {5}, {4}, {3, 4}, {20, 1}, 60},
      {"axis 1 of [3, 5, 4]", {3, 4}, {20, 1}, {5}, {4}, 60},
      {"a long row", {2}, {100000}, {100000}, {1}, 200000},
  };
  const Reduce ops[] = {Reduce::kSum, Reduce::kSumSquare, Reduce::kMean, Reduce::kMax};
  for (const Box& box : boxes) {
    const auto in = test_floats(box.storage, 11, 2.0f, false);
    for (const Reduce op : ops) {
      SCOPED_TRACE(box.name + ", op " + std::to_string(static_cast<int>(op)));
      const ReduceCall call = reduce_call(op, DType::kFloat32, box.out_dims, box.in_strides,
                                          box.reduced_dims, box.reduced_strides);
      const auto got = run_reduce<float>(call, in);
      for (std::size_t i = 0; i < got.size(); ++i) {
        const auto values = box_values(call, in, static_cast<int64_t>(i));
        double want = op == Reduce::kMax ? -INFINITY : 0.0, magnitude = 0.0;
        for (const float v : values) {
          const double term = op == Reduce::kSumSquare ? double{v} * v : v;
          want = op == Reduce::kMax ? std::max(want, term) : want + term;
          magnitude += std::fabs(term);
        }
        if (op == Reduce::kMean) want /= static_cast<double>(values.size());
        if (op == Reduce::kMean) magnitude /= static_cast<double>(values.size());
        EXPECT_TRUE(near(got[i], want, 0, 1e-6 * magnitude + 1e-30)) << "output " << i;
      }
    }
  }
}

TEST_F(CastReduceTest, shouldReduceEmptyBoxesToTheirIdentityAndPropagateNaN) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> in = {1.0f, kNaN, 3.0f, -0.0f, INFINITY, 1.0f};
  const auto empty = [](Reduce op) { return reduce_call(op, DType::kFloat32, {2}, {1}, {0}, {1}); };
  EXPECT_EQ(run_reduce<float>(empty(Reduce::kSum), in), (std::vector<float>{0.0f, 0.0f}));
  EXPECT_EQ(run_reduce<float>(empty(Reduce::kMax), in), (std::vector<float>{-INFINITY, -INFINITY}));
  EXPECT_TRUE(std::isnan(run_reduce<float>(empty(Reduce::kMean), in)[0]));
  // Max and sums over [1, NaN], [3, -0] and [inf, 1]: NaN wins wherever it is, and the
  // compensated sum keeps an infinity infinite.
  const auto pairs = [](Reduce op) { return reduce_call(op, DType::kFloat32, {3}, {2}, {2}, {1}); };
  const auto max = run_reduce<float>(pairs(Reduce::kMax), in);
  EXPECT_TRUE(std::isnan(max[0]));
  EXPECT_EQ(max[1], 3.0f);
  EXPECT_EQ(max[2], INFINITY);
  const auto sum = run_reduce<float>(pairs(Reduce::kSum), in);
  EXPECT_TRUE(std::isnan(sum[0]));
  EXPECT_EQ(sum[2], INFINITY);
  // A sum of one -0 is -0, as numpy's.
  const auto single =
      run_reduce<float>(reduce_call(Reduce::kSum, DType::kFloat32, {2}, {3}, {1}, {1}), in);
  EXPECT_EQ(single[0], 1.0f);
  EXPECT_TRUE(std::signbit(single[1]) && single[1] == 0.0f);
}

TEST_F(CastReduceTest, shouldWrapIntegerSumsAndStartMaximaAtTheMinimum) {
  constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
  const std::vector<int32_t> in32 = {kMax32, 1, -4, 65536, 65536, 3};
  const auto pairs = [](Reduce op, DType t) { return reduce_call(op, t, {3}, {2}, {2}, {1}); };
  EXPECT_EQ(run_reduce<int32_t>(pairs(Reduce::kSum, DType::kInt32), in32),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 65532, 65539}));
  EXPECT_EQ(run_reduce<int32_t>(pairs(Reduce::kSumSquare, DType::kInt32), in32),
            (std::vector<int32_t>{2, 16, 9}));  // (2^31 - 1)^2 + 1 and 2 * 2^32 wrap
  EXPECT_EQ(run_reduce<int32_t>(pairs(Reduce::kMax, DType::kInt32), in32),
            (std::vector<int32_t>{kMax32, 65536, 65536}));
  const auto empty = [](Reduce op) { return reduce_call(op, DType::kInt64, {2}, {1}, {0}, {1}); };
  const std::vector<int64_t> in64 = {std::numeric_limits<int64_t>::max(), 1, 5, -9, 0, 0};
  EXPECT_EQ(run_reduce<int64_t>(empty(Reduce::kSum), in64), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(run_reduce<int64_t>(empty(Reduce::kMax), in64),
            (std::vector<int64_t>(2, std::numeric_limits<int64_t>::min())));
  EXPECT_EQ(run_reduce<int64_t>(pairs(Reduce::kSum, DType::kInt64), in64),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -4, 0}));
}

TEST_F(CastReduceTest, shouldFindTheFirstOrLastMaximumWithNaNTheLargest) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  const auto rows = [](Reduce op, DType t) { return reduce_call(op, t, {2}, {6}, {6}, {1}); };
  const std::vector<float> floats = {1, 5, 2, 5, 0, -1, 3, 1, 3, kNaN, 2, kNaN};
  EXPECT_EQ(run_reduce<int64_t>(rows(Reduce::kArgMax, DType::kFloat32), floats),
            (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(run_reduce<int64_t>(rows(Reduce::kArgMaxLast, DType::kFloat32), floats),
            (std::vector<int64_t>{3, 5}));
  const std::vector<int32_t> ints = {4, 9, 9, -1, 0, 2, -7, -7, -7, -7, -7, -7};
  EXPECT_EQ(run_reduce<int64_t>(rows(Reduce::kArgMax, DType::kInt32), ints),
            (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(run_reduce<int64_t>(rows(Reduce::kArgMaxLast, DType::kInt32), ints),
            (std::vector<int64_t>{2, 5}));
  // A [2, 3] box with a column stride: the position is row-major within the box.
  const std::vector<int64_t> longs = {0, 1, 2, 3, 4, 99, 6, 7, 8, 9, 10, 11};
  EXPECT_EQ(run_reduce<int64_t>(
                reduce_call(Reduce::kArgMax, DType::kInt64, {2}, {1}, {2, 3}, {6, 2}), longs),
            (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(
      run_reduce<int64_t>(reduce_call(Reduce::kArgMax, DType::kInt64, {2}, {1}, {0}, {1}), longs),
      (std::vector<int64_t>{0, 0}));
}

}  // namespace
}  // namespace coproc::kernels::opencl::test
