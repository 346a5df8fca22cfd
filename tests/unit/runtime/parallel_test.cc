// The intra-op pool: every item runs exactly once, callers that find the pool busy run inline,
// and the packed GEMM gives the same result split over threads as on one.
#include "coproc/kernels/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "coproc/kernels/cpu.h"

namespace coproc::kernels::cpu {
namespace {

class IntraOpThreads : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { set_intra_op_threads(GetParam()); }
  void TearDown() override { set_intra_op_threads(1); }
};

TEST_P(IntraOpThreads, shouldRunEveryItemExactlyOnce) {
  for (const int64_t n : {1, 2, 7, 100, 10'000}) {
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      ASSERT_LE(0, b);
      ASSERT_LE(b, e);
      ASSERT_LE(e, n);
      for (int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << i;
  }
}

TEST_P(IntraOpThreads, shouldServeConcurrentCallersWithoutLosingWork) {
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int r = 0; r < 200; ++r) {
        parallel_for(64, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 200 * 64);
}

TEST_P(IntraOpThreads, shouldGiveThePackedGemmTheSameResultAsOneThread) {
  const int64_t m = 300, n = 200, k = 150;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n)),
      bias(static_cast<std::size_t>(n));
  for (auto* v : {&a, &b, &bias}) {
    for (float& x : *v) x = dist(rng);
  }
  const PackedB packed = PackedB::pack(b.data(), k, n, false);
  std::vector<float> split(static_cast<std::size_t>(m * n)), single(split.size());
  gemm_packed(m, a.data(), k, packed, split.data(), n, 1.0f, 0.0f, bias.data());
  set_intra_op_threads(1);
  gemm_packed(m, a.data(), k, packed, single.data(), n, 1.0f, 0.0f, bias.data());
  EXPECT_EQ(split, single);  // the same tiles, the same order of sums: bit-identical
}

INSTANTIATE_TEST_SUITE_P(Threads, IntraOpThreads, ::testing::Values(1, 2, 4));

}  // namespace
}  // namespace coproc::kernels::cpu
