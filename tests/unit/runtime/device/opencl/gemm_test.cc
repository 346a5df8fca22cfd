// Device::gemm and gemm_batched (CLBlast) against a double-precision host GEMM: every
// transpose, odd sizes, padded leading dimensions, operands at offsets, beta 0 over NaN, a size
// large enough for CLBlast's indirect kernel (the one that needs the reserved temporary
// buffer), shared batch operands, and the empty product.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace coproc::kernels::opencl::test {
namespace {

struct GemmCase {
  bool trans_a = false, trans_b = false;
  int64_t m = 1, n = 1, k = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad = 0;  // elements per row beyond the minimum leading dimension
  int64_t batch = 1;
  bool shared_b = false;  // every batch multiplies by the same B (stride 0)

  int64_t lda() const { return (trans_a ? m : k) + pad; }
  int64_t ldb() const { return (trans_b ? k : n) + pad; }
  int64_t ldc() const { return n + pad; }
  int64_t a_size() const { return (trans_a ? k : m) * lda(); }
  int64_t b_size() const { return (trans_b ? n : k) * ldb(); }
  int64_t c_size() const { return m * ldc(); }
  std::string name() const {
    return std::string(trans_a ? "T" : "N") + (trans_b ? "T" : "N") + " " + std::to_string(m) +
           " x " + std::to_string(n) + " x " + std::to_string(k) + " pad " + std::to_string(pad) +
           " batch " + std::to_string(batch) + " beta " + std::to_string(beta);
  }
};

class GemmTest : public OpenClTest {
 protected:
  // Runs the case through gemm() (batch 1) or gemm_batched() and compares every element of C,
  // padding included (which must keep its value), with a double-precision product.
  void check(const GemmCase& g) {
    SCOPED_TRACE(g.name());
    const int64_t b_stride = g.shared_b ? 0 : g.b_size();
    const auto a = test_floats(static_cast<std::size_t>(g.a_size() * g.batch), 51, 1.0f, false);
    const auto b = test_floats(
        static_cast<std::size_t>(g.shared_b ? g.b_size() : g.b_size() * g.batch), 52, 1.0f, false);
    auto c = test_floats(static_cast<std::size_t>(g.c_size() * g.batch), 53, 1.0f, false);
    for (std::size_t i = 0; i < c.size(); ++i) {
      // beta == 0 must ignore C entirely, NaN included; the padding shows stray writes.
      const bool padding = static_cast<int64_t>(i) % g.ldc() >= g.n;
      if (g.beta == 0.0f && !padding) c[i] = std::numeric_limits<float>::quiet_NaN();
    }
    const Tensor ta = upload(a, 3), tb = upload(b, 5), tc = upload(c, 1);
    std::string error;
    ASSERT_TRUE(device().reserve_gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.lda(), g.ldb(),
                                      g.ldc(), &error))
        << error;
    if (g.batch == 1) {
      device().gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, ta.mem, g.lda(), tb.mem, g.ldb(),
                    g.beta, tc.mem, g.ldc());
    } else {
      device().gemm_batched(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, ta.mem, g.lda(),
                            g.a_size(), tb.mem, g.ldb(), b_stride, g.beta, tc.mem, g.ldc(),
                            g.c_size(), g.batch);
    }
    const auto got = download<float>(tc.mem, c.size());
    for (int64_t p = 0; p < g.batch; ++p) {
      const float* ap = a.data() + p * g.a_size();
      const float* bp = b.data() + p * b_stride;
      const int64_t c0 = p * g.c_size();
      for (int64_t i = 0; i < g.m; ++i) {
        for (int64_t j = 0; j < g.ldc(); ++j) {
          const std::size_t at = static_cast<std::size_t>(c0 + i * g.ldc() + j);
          if (j >= g.n) {
            ASSERT_EQ(got[at], c[at]) << "padding written at " << i << ", " << j;
            continue;
          }
          double sum = 0, magnitude = 0;
          for (int64_t q = 0; q < g.k; ++q) {
            const double av = g.trans_a ? ap[q * g.lda() + i] : ap[i * g.lda() + q];
            const double bv = g.trans_b ? bp[j * g.ldb() + q] : bp[q * g.ldb() + j];
            sum += av * bv;
            magnitude += std::fabs(av * bv);
          }
          const double old = g.beta == 0.0f ? 0.0 : g.beta * double{c[at]};
          const double want = g.alpha * sum + old;
          const double tolerance = 1e-5 * (std::fabs(g.alpha) * magnitude + std::fabs(old));
          ASSERT_TRUE(near(got[at], want, 0, tolerance + 1e-30)) << "C[" << i << ", " << j << "]";
        }
      }
    }
  }
};

TEST_F(GemmTest, shouldMatchDoubleGemmForEveryTransposeAndLeadingDimension) {
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      check({.trans_a = ta, .trans_b = tb, .m = 1, .n = 1, .k = 1});
      check({.trans_a = ta, .trans_b = tb, .m = 7, .n = 33, .k = 5, .alpha = 1.5f, .pad = 3});
      check({.trans_a = ta, .trans_b = tb, .m = 33, .n = 7, .k = 64, .alpha = 0.5f, .beta = 0.5f});
    }
  }
}

TEST_F(GemmTest, shouldRunTheIndirectKernelWithTheReservedBuffer) {
  // CLBlast switches to its indirect kernel (with padded copies in the temporary buffer) from
  // about 384^3 multiply-adds; odd sizes and padding make every operand need a copy.
  check({.trans_b = true, .m = 401, .n = 385, .k = 390, .beta = 1.0f, .pad = 1});
}

TEST_F(GemmTest, shouldMultiplyBatchesIncludingOneSharedOperand) {
  check({.m = 7, .n = 5, .k = 9, .batch = 3});
  check({.trans_a = true,
         .m = 7,
         .n = 5,
         .k = 9,
         .beta = 0.25f,
         .pad = 2,
         .batch = 4,
         .shared_b = true});
  check({.trans_b = true, .m = 16, .n = 33, .k = 3, .alpha = -1.0f, .batch = 2, .shared_b = true});
}

TEST_F(GemmTest, shouldScaleCWhenTheProductIsEmpty) {
  const std::vector<float> c = {1.0f, 2.0f, 3.0f, std::numeric_limits<float>::quiet_NaN(),
                                5.0f, 6.0f};
  const Tensor empty = upload(std::vector<float>(1, 0.0f));
  const Tensor scaled = upload(c, 1);
  device().gemm(false, false, 2, 2, 0, 1.0f, empty.mem, 1, empty.mem, 2, 0.5f, scaled.mem, 3);
  const auto halves = download<float>(scaled.mem, 6);
  EXPECT_EQ(halves[0], 0.5f);
  EXPECT_EQ(halves[1], 1.0f);
  EXPECT_EQ(halves[2], 3.0f) << "padding kept";
  EXPECT_TRUE(std::isnan(halves[3]));
  const Tensor zeroed = upload(c, 1);
  device().gemm_batched(false, false, 1, 3, 0, 1.0f, empty.mem, 1, 0, empty.mem, 3, 0, 0.0f,
                        zeroed.mem, 3, 3, 2);
  EXPECT_EQ(download<float>(zeroed.mem, 6), std::vector<float>(6, 0.0f));
}

TEST_F(GemmTest, shouldRefuseLeadingDimensionsShorterThanTheRows) {
  std::string error;
  EXPECT_FALSE(device().reserve_gemm(false, false, 4, 4, 4, 2, 4, 4, &error));
  EXPECT_NE(error.find("leading dimensions"), std::string::npos) << error;
  EXPECT_TRUE(device().reserve_gemm(false, false, 0, 4, 4, 1, 4, 4, &error)) << "nothing to run";
}

}  // namespace
}  // namespace coproc::kernels::opencl::test
