// gemm_packed against a naive double-precision product, for every micro-kernel variant this CPU
// runs (so the AVX2 and portable tiles are checked on an AVX-512 machine too).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "coproc/kernels/cpu.h"

namespace cpu = coproc::kernels::cpu;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = 12345.0f;  // fills C's padding between rows, which must stay as is

std::vector<float> random_floats(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Product {
  int64_t m, n, k;
  bool trans_b;
  float alpha, beta;
  bool with_bias;
  int64_t pad;  // extra floats per row of A and of C
};

std::string describe(const Product& p) {
  return "m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) +
         " trans_b=" + std::to_string(p.trans_b) + " alpha=" + std::to_string(p.alpha) +
         " beta=" + std::to_string(p.beta) + " bias=" + std::to_string(p.with_bias) +
         " pad=" + std::to_string(p.pad);
}

// Runs one product with `kernel` and returns the worst error against the double-precision
// reference, judged against the O(sqrt(k)) scale of a sum of k products of unit normals. Padding
// that changed, or an element that is NaN, counts as an infinite error.
double worst_error(cpu::GemmKernel kernel, const Product& p, uint32_t seed) {
  const int64_t lda = p.k + p.pad;
  const int64_t ldc = p.n + p.pad;
  const auto a = random_floats(static_cast<std::size_t>(p.m * lda), seed);
  const auto b = random_floats(static_cast<std::size_t>(p.k * p.n), seed + 1);
  const auto bias = random_floats(static_cast<std::size_t>(p.n), seed + 2);
  auto c = random_floats(static_cast<std::size_t>(p.m * ldc), seed + 3);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      float& x = c[static_cast<std::size_t>(i * ldc + j)];
      if (j >= p.n) {
        x = kSentinel;
      } else if (p.beta == 0.0f) {
        x = kNaN;  // must be ignored
      }
    }
  }

  std::vector<double> want(c.size());
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double sum = 0.0;
      for (int64_t q = 0; q < p.k; ++q) {
        // B is stored [k, n], or [n, k] when trans_b.
        const double bv = p.trans_b ? b[static_cast<std::size_t>(j * p.k + q)]
                                    : b[static_cast<std::size_t>(q * p.n + j)];
        sum += static_cast<double>(a[static_cast<std::size_t>(i * lda + q)]) * bv;
      }
      const auto at = static_cast<std::size_t>(i * ldc + j);
      want[at] = p.alpha * sum + (p.beta == 0.0f ? 0.0 : p.beta * static_cast<double>(c[at])) +
                 (p.with_bias ? bias[static_cast<std::size_t>(j)] : 0.0);
    }
  }

  const cpu::PackedB packed = cpu::PackedB::pack(b.data(), p.k, p.n, p.trans_b, kernel);
  cpu::gemm_packed(p.m, a.data(), lda, packed, c.data(), ldc, p.alpha, p.beta,
                   p.with_bias ? bias.data() : nullptr);

  const double scale = std::sqrt(std::max<double>(1.0, static_cast<double>(p.k)));
  double worst = 0.0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const auto at = static_cast<std::size_t>(i * ldc + j);
      if (j >= p.n) {
        if (c[at] != kSentinel) return INFINITY;
        continue;
      }
      const double err = std::fabs(c[at] - want[at]) / scale;
      worst = std::isnan(err) ? INFINITY : std::max(worst, err);
    }
  }
  return worst;
}

std::vector<cpu::GemmKernel> supported_kernels() {
  std::vector<cpu::GemmKernel> kernels;
  for (const cpu::GemmKernel k : cpu::kAllGemmKernels) {
    if (cpu::gemm_kernel_supported(k)) kernels.push_back(k);
  }
  return kernels;
}

class PackedGemmTest : public ::testing::TestWithParam<cpu::GemmKernel> {};

// Row counts around the tile heights (4, 6, 8) and the row block (kMaxBlockRows); column and
// depth counts around the panel widths (16, 32) and the k pass (256).
constexpr int64_t kRows[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 64, 100};
constexpr int64_t kSmallSizes[] = {1, 3, 15, 16, 17, 33, 100};

struct Scaling {
  float alpha, beta;
  bool with_bias;
};
constexpr Scaling kScalings[] = {
    {1.0f, 0.0f, false}, {1.0f, 1.0f, true}, {-0.5f, 0.25f, false}, {2.0f, 0.0f, true}};

TEST_P(PackedGemmTest, shouldMatchNaiveProductForSmallShapesEitherLayoutOfB) {
  uint32_t index = 0;  // cycles through the scalings and paddings
  for (const int64_t m : kRows) {
    for (const int64_t n : kSmallSizes) {
      for (const int64_t k : kSmallSizes) {
        for (const bool trans_b : {false, true}) {
          const Scaling& s = kScalings[index % std::size(kScalings)];
          const int64_t pad = index % 3 == 0 ? 3 : 0;
          const Product p{m, n, k, trans_b, s.alpha, s.beta, s.with_bias, pad};
          ASSERT_LT(worst_error(GetParam(), p, 4 * index + 1), 1e-5) << describe(p);
          ++index;
        }
      }
    }
  }
}

TEST_P(PackedGemmTest, shouldMatchNaiveProductForModelSizedShapes) {
  // The MLP's layers (256 -> 1024 -> 1024 -> 16, B stored [n, k]), a B stored [k, n], depths that
  // are not a multiple of the k pass, and more rows than one row block.
  const Product products[] = {
      {1, 1024, 256, true, 1.0f, 1.0f, true, 0},    {8, 1024, 1024, true, 1.0f, 1.0f, true, 0},
      {33, 16, 1024, true, 1.0f, 0.0f, true, 0},    {64, 1024, 256, false, 1.0f, 0.0f, false, 0},
      {17, 100, 1000, false, 0.5f, 2.0f, true, 5},  {200, 33, 300, true, 1.0f, 0.0f, false, 1},
      {129, 1024, 17, false, -1.0f, 0.5f, true, 0},
  };
  uint32_t seed = 1000;
  for (const Product& p : products) {
    ASSERT_LT(worst_error(GetParam(), p, seed), 1e-5) << describe(p);
    seed += 4;
  }
}

TEST_P(PackedGemmTest, shouldScaleCAndAddBiasWhenKIsZero) {
  const cpu::PackedB packed = cpu::PackedB::pack(nullptr, 0, 2, false, GetParam());
  const float unused = 0.0f;
  const float bias[2] = {10.0f, 20.0f};
  std::vector<float> c = {1.0f, 2.0f, 3.0f, 4.0f};
  cpu::gemm_packed(2, &unused, 1, packed, c.data(), 2, 1.0f, 0.5f, bias);
  EXPECT_EQ(c, (std::vector<float>{10.5f, 21.0f, 11.5f, 22.0f}));
  std::vector<float> nan_c(4, kNaN);
  cpu::gemm_packed(2, &unused, 1, packed, nan_c.data(), 2, 1.0f, 0.0f, nullptr);
  EXPECT_EQ(nan_c, (std::vector<float>(4, 0.0f)));
}

TEST_P(PackedGemmTest, shouldPadTheLastPanelAndReportItsLayout) {
  const auto b = random_floats(5 * 40, 7);
  const cpu::PackedB packed = cpu::PackedB::pack(b.data(), 5, 40, false, GetParam());
  const int64_t nr = packed.panel_width();
  EXPECT_EQ(packed.kernel(), GetParam());
  EXPECT_EQ(packed.k(), 5);
  EXPECT_EQ(packed.n(), 40);
  const int64_t panels = (40 + nr - 1) / nr;
  ASSERT_EQ(packed.bytes(), static_cast<std::size_t>(panels * 5 * nr) * sizeof(float));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(packed.data()) % 64, 0u);
  // Row p of the last panel holds B's columns from (panels - 1) * nr on, then zeros.
  const float* last = packed.data() + (panels - 1) * 5 * nr;
  for (int64_t p = 0; p < 5; ++p) {
    for (int64_t j = 0; j < nr; ++j) {
      const int64_t col = (panels - 1) * nr + j;
      const float want = col < 40 ? b[static_cast<std::size_t>(p * 40 + col)] : 0.0f;
      EXPECT_EQ(last[p * nr + j], want) << "p=" << p << " j=" << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, PackedGemmTest, ::testing::ValuesIn(supported_kernels()),
                         [](const ::testing::TestParamInfo<cpu::GemmKernel>& kernel) {
                           return std::string(cpu::gemm_kernel_name(kernel.param));
                         });

TEST(GemmKernelTest, shouldPreferTheWidestSupportedKernel) {
  EXPECT_TRUE(cpu::gemm_kernel_supported(cpu::GemmKernel::kPortable));
  EXPECT_TRUE(cpu::gemm_kernel_supported(cpu::best_gemm_kernel()));
  EXPECT_EQ(cpu::best_gemm_kernel(), supported_kernels().front());
}

}  // namespace
