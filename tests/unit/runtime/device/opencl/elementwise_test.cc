// Device::elementwise against host loops, over layouts that exercise the index arithmetic:
// odd lengths, rank 0 and rank 5 and 8, broadcasting (stride 0), transposition and negative
// strides. Every output starts filled with a marker, and the whole storage is compared, so a
// write outside the box fails too.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.h"

namespace coproc::kernels::opencl::test {
namespace {

struct Case {
  std::string name;
  Strided layout;
};

// Layouts of an output and one operand.
std::vector<Case> unary_layouts() {
  std::vector<Case> cases;
  for (const int64_t n : {1, 7, 33, 1000}) {
    cases.push_back({"dense " + std::to_string(n), make_layout({n}, {1}, {1})});
  }
  cases.push_back({"rank 0", Strided{}});
  cases.push_back({"transposed", make_layout({7, 33}, {33, 1}, {1, 7})});
  cases.push_back({"reversed", make_layout({33}, {1}, {-1})});
  cases.push_back(
      {"rank 5", make_layout({2, 3, 1, 4, 5}, dense_strides({2, 3, 1, 4, 5}), {60, -20, 7, 1, 4})});
  return cases;
}

// Layouts of an output and three operands, with broadcasting.
std::vector<Case> nary_layouts() {
  const std::vector<int64_t> dims5 = {2, 3, 1, 4, 5};
  const std::vector<int64_t> dense5 = dense_strides(dims5);
  return {
      {"dense 1000", make_layout({1000}, {1}, {1}, {1}, {1})},
      {"rank 0", Strided{}},
      {"row broadcast", make_layout({7, 33}, {33, 1}, {33, 1}, {0, 1}, {1, 0})},
      {"scalar", make_layout({7, 33}, {33, 1}, {0, 0}, {33, 1}, {0, 0})},
      {"outer product", make_layout({7, 33}, {33, 1}, {1, 0}, {0, 1}, {-1, 7})},
      {"rank 5", make_layout(dims5, dense5, dense5, {0, 4, 7, 0, 1}, {-60, 20, 0, 5, -1})},
  };
}

Mem at(const Tensor& t, int64_t element, std::size_t size) {
  return {t.mem.buffer, t.mem.offset + static_cast<std::size_t>(element) * size};
}

class ElementwiseTest : public OpenClTest {
 protected:
  // Runs `call` with a, b and c as the operands' storages (as extent() lays them out; empty for
  // an absent operand) and returns the output's storage, which starts filled with `marker`.
  template <class TO, class TA, class TB = TA, class TC = TB>
  std::vector<TO> run(const ElementwiseCall& call, TO marker, const std::vector<TA>& a,
                      const std::vector<TB>& b = {}, const std::vector<TC>& c = {}) {
    const Strided& l = call.layout;
    const Extent out_extent = extent(l, l.out);
    const Tensor out =
        upload(std::vector<TO>(static_cast<std::size_t>(out_extent.size), marker), 1);
    const Tensor ta = upload(a, 3);
    const Tensor tb = upload(b, 2);
    const Tensor tc = upload(c, 1);
    const auto operand = [&](const Tensor& t, bool present, const int64_t* strides,
                             std::size_t size) {
      return present ? at(t, extent(l, strides).base, size) : Mem{};
    };
    device().elementwise(
        call, at(out, out_extent.base, sizeof(TO)), operand(ta, !a.empty(), l.a, sizeof(TA)),
        operand(tb, !b.empty(), l.b, sizeof(TB)), operand(tc, !c.empty(), l.c, sizeof(TC)));
    return download<TO>(out.mem, static_cast<std::size_t>(out_extent.size));
  }

  // The storages' index-0 offsets, as run() lays them out.
  static void bases(const Strided& l, Extent out[4]) {
    out[0] = extent(l, l.out);
    out[1] = extent(l, l.a);
    out[2] = extent(l, l.b);
    out[3] = extent(l, l.c);
  }
};

constexpr float kMarker = -12345.0f;

double reference_unary(Elementwise op, double x) {
  switch (op) {
    case Elementwise::kRelu:
      return x > 0 ? x : 0.0;
    case Elementwise::kSigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Elementwise::kTanh:
      return std::tanh(x);
    case Elementwise::kErf:
      return std::erf(x);
    case Elementwise::kExp:
      return std::exp(x);
    case Elementwise::kSqrt:
      return std::sqrt(x);
    case Elementwise::kReciprocal:
      return 1.0 / x;
    case Elementwise::kGelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    default:
      return -x;
  }
}

TEST_F(ElementwiseTest, shouldMatchHostForEveryFloatFunctionOverEveryLayout) {
  const Elementwise ops[] = {Elementwise::kRelu,       Elementwise::kSigmoid, Elementwise::kTanh,
                             Elementwise::kErf,        Elementwise::kExp,     Elementwise::kSqrt,
                             Elementwise::kReciprocal, Elementwise::kGelu,    Elementwise::kNeg};
  for (const Case& c : unary_layouts()) {
    Extent e[4];
    bases(c.layout, e);
    const std::vector<float> a = test_floats(static_cast<std::size_t>(e[1].size), 1);
    for (const Elementwise op : ops) {
      SCOPED_TRACE(c.name + ", op " + std::to_string(static_cast<int>(op)));
      const auto got = run<float>({op, DType::kFloat32, c.layout}, kMarker, a);
      std::vector<float> want(got.size(), kMarker);
      for_each_index(c.layout, e, [&](int64_t o, int64_t ia, int64_t, int64_t) {
        want[o] = static_cast<float>(reference_unary(op, a[ia]));
      });
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(near(got[i], want[i], 1e-5, 4e-6)) << "element " << i;
      }
    }
  }
}

TEST_F(ElementwiseTest, shouldMatchHostForFloatArithmeticWithBroadcasting) {
  const Elementwise ops[] = {Elementwise::kAdd, Elementwise::kSub, Elementwise::kMul,
                             Elementwise::kDiv, Elementwise::kPow};
  for (const Case& c : nary_layouts()) {
    Extent e[4];
    bases(c.layout, e);
    const auto a = test_floats(static_cast<std::size_t>(e[1].size), 2);
    // Exponents: small integers (negative bases have real powers only for those) and fractions.
    auto b = test_floats(static_cast<std::size_t>(e[2].size), 3, 1.0f);
    for (std::size_t i = 0; i < b.size(); i += 3) b[i] = std::round(b[i] * 3);
    for (const Elementwise op : ops) {
      SCOPED_TRACE(c.name + ", op " + std::to_string(static_cast<int>(op)));
      const auto got = run<float>({op, DType::kFloat32, c.layout}, kMarker, a, b);
      std::vector<float> want(got.size(), kMarker);
      for_each_index(c.layout, e, [&](int64_t o, int64_t ia, int64_t ib, int64_t) {
        const float x = a[ia], y = b[ib];
        want[o] = op == Elementwise::kAdd   ? x + y
                  : op == Elementwise::kSub ? x - y
                  : op == Elementwise::kMul ? x * y
                  : op == Elementwise::kDiv ? x / y
                                            : std::pow(x, y);
      });
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(near(got[i], want[i], 1e-5, 1e-30)) << "element " << i;
      }
    }
  }
}

// x op y as the CPU device computes it: wrapping, and division defined everywhere.
template <class T>
T integer_reference(Elementwise op, T x, T y) {
  using U = std::make_unsigned_t<T>;
  switch (op) {
    case Elementwise::kAdd:
      return static_cast<T>(static_cast<U>(x) + static_cast<U>(y));
    case Elementwise::kSub:
      return static_cast<T>(static_cast<U>(x) - static_cast<U>(y));
    case Elementwise::kMul:
      return static_cast<T>(static_cast<U>(x) * static_cast<U>(y));
    default:
      if (y == 0) return 0;
      if (x == std::numeric_limits<T>::min() && y == -1) return x;
      return x / y;
  }
}

// Every pair of the edge values, by broadcasting a column against a row.
template <class T>
void check_integer_arithmetic(
    const std::function<std::vector<T>(const ElementwiseCall&, const std::vector<T>&)>& run) {
  constexpr T kMin = std::numeric_limits<T>::min(), kMax = std::numeric_limits<T>::max();
  const std::vector<T> values = {0, 1, -1, 2, -2, 7, -7, 100003, -100003, kMax, kMin, kMin + 1};
  const auto n = static_cast<int64_t>(values.size());
  const Strided pairs = make_layout({n, n}, {n, 1}, {1, 0}, {0, 1});
  for (const Elementwise op :
       {Elementwise::kAdd, Elementwise::kSub, Elementwise::kMul, Elementwise::kDiv}) {
    const auto got = run({op, sizeof(T) == 8 ? DType::kInt64 : DType::kInt32, pairs}, values);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const T x = values[i], y = values[j];
        EXPECT_EQ(got[i * n + j], integer_reference(op, x, y))
            << "op " << static_cast<int>(op) << ": " << x << ", " << y;
      }
    }
  }
}

TEST_F(ElementwiseTest, shouldWrapAndDivideIntegersAsTheCpuDevice) {
  check_integer_arithmetic<int32_t>(
      [&](const ElementwiseCall& call, const std::vector<int32_t>& v) {
        return run<int32_t>(call, int32_t{-5}, v, v);
      });
  check_integer_arithmetic<int64_t>(
      [&](const ElementwiseCall& call, const std::vector<int64_t>& v) {
        return run<int64_t>(call, int64_t{-5}, v, v);
      });
}

TEST_F(ElementwiseTest, shouldNegateIntegersWrappingTheMinimum) {
  const Strided l = make_layout({4}, {1}, {1});
  const auto n32 = run<int32_t>({Elementwise::kNeg, DType::kInt32, l}, 9,
                                std::vector<int32_t>{0, 5, std::numeric_limits<int32_t>::min(),
                                                     std::numeric_limits<int32_t>::max()});
  EXPECT_EQ(n32, (std::vector<int32_t>{0, -5, std::numeric_limits<int32_t>::min(),
                                       -std::numeric_limits<int32_t>::max()}));
  const auto n64 = run<int64_t>(
      {Elementwise::kNeg, DType::kInt64, l}, 9,
      std::vector<int64_t>{0, -5, std::numeric_limits<int64_t>::min(), int64_t{1} << 40});
  EXPECT_EQ(n64,
            (std::vector<int64_t>{0, 5, std::numeric_limits<int64_t>::min(), -(int64_t{1} << 40)}));
}

TEST_F(ElementwiseTest, shouldCopyEveryDtypeAndNormaliseBools) {
  std::vector<Case> layouts = unary_layouts();
  const std::vector<int64_t> dims8(8, 2);
  std::vector<int64_t> backwards = dense_strides(dims8);
  for (int64_t& s : backwards) s = -s;
  layouts.push_back({"rank 8", make_layout(dims8, dense_strides(dims8), backwards)});
  for (const Case& c : layouts) {
    SCOPED_TRACE(c.name);
    Extent e[4];
    bases(c.layout, e);
    const auto size = static_cast<std::size_t>(e[1].size);
    std::vector<uint8_t> bytes(size);
    std::vector<int32_t> words(size);
    std::vector<int64_t> longs(size);
    for (std::size_t i = 0; i < size; ++i) {
      bytes[i] = static_cast<uint8_t>(i * 37);  // 0, 37, 74, ...: any nonzero byte is true
      words[i] = static_cast<int32_t>(i * 2654435761u);
      longs[i] = static_cast<int64_t>(i * 0x9e3779b97f4a7c15u);
    }
    const auto got_bytes = run<uint8_t>({Elementwise::kCopy, DType::kBool, c.layout}, 0x5a, bytes);
    const auto got_words = run<int32_t>({Elementwise::kCopy, DType::kInt32, c.layout}, 7, words);
    const auto got_longs = run<int64_t>({Elementwise::kCopy, DType::kInt64, c.layout}, 7, longs);
    std::vector<uint8_t> want_bytes(got_bytes.size(), 0x5a);
    std::vector<int32_t> want_words(got_words.size(), 7);
    std::vector<int64_t> want_longs(got_longs.size(), 7);
    for_each_index(c.layout, e, [&](int64_t o, int64_t a, int64_t, int64_t) {
      want_bytes[o] = bytes[a] != 0 ? 1 : 0;
      want_words[o] = words[a];
      want_longs[o] = longs[a];
    });
    EXPECT_EQ(got_bytes, want_bytes);
    EXPECT_EQ(got_words, want_words);
    EXPECT_EQ(got_longs, want_longs);
  }
}

TEST_F(ElementwiseTest, shouldCompareEveryDtypeAsIeeeAndTruth) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  const Strided l = make_layout({5}, {1}, {1}, {1});
  const auto floats = run<uint8_t>({Elementwise::kEqual, DType::kFloat32, l}, 0x5a,
                                   std::vector<float>{1.0f, -0.0f, kNaN, 2.0f, 3.0f},
                                   std::vector<float>{1.0f, 0.0f, kNaN, 2.5f, 3.0f});
  EXPECT_EQ(floats, (std::vector<uint8_t>{1, 1, 0, 0, 1}));
  const auto bools =
      run<uint8_t>({Elementwise::kEqual, DType::kBool, l}, 0x5a,
                   std::vector<uint8_t>{2, 0, 1, 0, 255}, std::vector<uint8_t>{1, 0, 0, 3, 9});
  EXPECT_EQ(bools, (std::vector<uint8_t>{1, 1, 0, 0, 1}));
  const auto ints =
      run<uint8_t>({Elementwise::kEqual, DType::kInt32, l}, 0x5a,
                   std::vector<int32_t>{1, -1, 0, 5, 6}, std::vector<int32_t>{1, 1, 0, 6, 6});
  EXPECT_EQ(ints, (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  const int64_t big = int64_t{1} << 33;
  const auto longs = run<uint8_t>({Elementwise::kEqual, DType::kInt64, l}, 0x5a,
                                  std::vector<int64_t>{big, big + 1, 0, -1, 6},
                                  std::vector<int64_t>{big, big, 0, -1, 7});
  EXPECT_EQ(longs, (std::vector<uint8_t>{1, 0, 1, 1, 0}));
}

TEST_F(ElementwiseTest, shouldSelectWithWhereForEveryDtype) {
  for (const Case& c : nary_layouts()) {
    SCOPED_TRACE(c.name);
    Extent e[4];
    bases(c.layout, e);
    std::vector<uint8_t> condition(static_cast<std::size_t>(e[1].size));
    for (std::size_t i = 0; i < condition.size(); ++i)
      condition[i] = static_cast<uint8_t>((i % 3) * 100);
    const auto x = test_floats(static_cast<std::size_t>(e[2].size), 4);
    const auto y = test_floats(static_cast<std::size_t>(e[3].size), 5, 3.0f, false);
    std::vector<int64_t> lx(x.size()), ly(y.size());
    std::vector<uint8_t> bx(x.size()), by(y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      lx[i] = int64_t{1} << (i % 60);
      bx[i] = static_cast<uint8_t>(i % 4);
    }
    for (std::size_t i = 0; i < y.size(); ++i) {
      ly[i] = -static_cast<int64_t>(i);
      by[i] = static_cast<uint8_t>(i % 2);
    }
    const auto got_f =
        run<float>({Elementwise::kWhere, DType::kFloat32, c.layout}, kMarker, condition, x, y);
    const auto got_l =
        run<int64_t>({Elementwise::kWhere, DType::kInt64, c.layout}, int64_t{3}, condition, lx, ly);
    const auto got_b = run<uint8_t>({Elementwise::kWhere, DType::kBool, c.layout}, uint8_t{0x5a},
                                    condition, bx, by);
    std::vector<float> want_f(got_f.size(), kMarker);
    std::vector<int64_t> want_l(got_l.size(), 3);
    std::vector<uint8_t> want_b(got_b.size(), 0x5a);
    for_each_index(c.layout, e, [&](int64_t o, int64_t ic, int64_t ix, int64_t iy) {
      const bool pick_x = condition[ic] != 0;
      want_f[o] = pick_x ? x[ix] : y[iy];
      want_l[o] = pick_x ? lx[ix] : ly[iy];
      want_b[o] = (pick_x ? bx[ix] : by[iy]) != 0 ? 1 : 0;
    });
    for (std::size_t i = 0; i < got_f.size(); ++i) ASSERT_TRUE(near(got_f[i], want_f[i], 0, 0));
    EXPECT_EQ(got_l, want_l);
    EXPECT_EQ(got_b, want_b);
  }
}

TEST_F(ElementwiseTest, shouldReportAnOperationTheDtypeDoesNotHave) {
  const Tensor t = upload(std::vector<int32_t>{1, 2, 3});
  device().elementwise({Elementwise::kRelu, DType::kInt32, make_layout({3}, {1}, {1})}, t.mem,
                       t.mem);
  const Failure failure = device().finish();
  EXPECT_TRUE(failure.failed);
  EXPECT_FALSE(failure.bad_index);
  EXPECT_NE(failure.message.find("Relu"), std::string::npos) << failure.message;
  EXPECT_NE(failure.message.find("int32"), std::string::npos) << failure.message;
  EXPECT_FALSE(device().finish().failed) << "a failure is reported once";
}

}  // namespace
}  // namespace coproc::kernels::opencl::test
