// The paged attention kernel against a double-precision reference over the same positions, with
// blocks scattered in the pool the way a block table leaves them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "coproc/kernels/paged_attention.h"

namespace coproc::kernels::cpu {
namespace {

struct Pool {
  int32_t blocks, heads, block_tokens, head_dim;
  std::vector<float> storage;  // [block][k or v][head][...]: keys [dim][slot], values [slot][dim]
  PagedKvView view() const {
    const int64_t head_stride = static_cast<int64_t>(block_tokens) * head_dim;
    return {storage.data(), storage.data() + heads * head_stride, 2 * heads * head_stride, head_stride,
            block_tokens, head_dim};
  }
};

Pool make_pool(int32_t blocks, int32_t heads, int32_t block_tokens, int32_t head_dim, std::mt19937& rng) {
  Pool p{blocks, heads, block_tokens, head_dim, {}};
  p.storage.resize(static_cast<size_t>(blocks) * 2 * heads * block_tokens * head_dim);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& x : p.storage) x = dist(rng);
  return p;
}

void reference(const float* q, int32_t group, const Pool& p, int32_t kv_head, const std::vector<int32_t>& table,
               int32_t n, float scale, std::vector<double>* out) {
  const PagedKvView v = p.view();
  out->assign(static_cast<size_t>(group) * p.head_dim, 0.0);
  auto block = [&](const float* base, int32_t t) {
    return base + table[static_cast<size_t>(t / p.block_tokens)] * v.block_stride + kv_head * v.head_stride;
  };
  auto key = [&](int32_t t, int32_t d) { return block(v.keys, t)[d * p.block_tokens + t % p.block_tokens]; };
  auto value = [&](int32_t t) { return block(v.values, t) + static_cast<int64_t>(t % p.block_tokens) * p.head_dim; };
  for (int32_t h = 0; h < group; ++h) {
    std::vector<double> s(static_cast<size_t>(n));
    for (int32_t t = 0; t < n; ++t) {
      double acc = 0;
      for (int32_t d = 0; d < p.head_dim; ++d) acc += static_cast<double>(q[h * p.head_dim + d]) * key(t, d);
      s[static_cast<size_t>(t)] = acc * scale;
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& x : s) sum += (x = std::exp(x - mx));
    for (int32_t t = 0; t < n; ++t) {
      for (int32_t d = 0; d < p.head_dim; ++d) {
        (*out)[static_cast<size_t>(h * p.head_dim + d)] += s[static_cast<size_t>(t)] / sum * value(t)[d];
      }
    }
  }
}

TEST(PagedAttention, shouldMatchTheReferenceForEveryHeadSizeGroupAndLength) {
  std::mt19937 rng(3);
  for (int32_t head_dim : {64, 32, 128, 48, 20}) {
    for (int32_t group : {1, 3, 5, 40}) {  // 40: more query heads per KV head than any real model
      Pool pool = make_pool(12, 2, head_dim == 48 ? 8 : 16, head_dim, rng);
      std::vector<int32_t> table(12);  // 12 blocks hold 192 positions of 16 (96 of 8)
      std::iota(table.begin(), table.end(), 0);
      std::shuffle(table.begin(), table.end(), rng);
      std::vector<float> q(static_cast<size_t>(group) * head_dim);
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (float& x : q) x = dist(rng);
      for (int32_t n : {1, 2, 15, 16, 17, 96, 100, 192}) {
        if (n > 12 * pool.block_tokens) continue;
        std::vector<float> out(q.size());
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        paged_attention_group(q.data(), group, pool.view(), 1, table.data(), n, scale, out.data());
        std::vector<double> want;
        reference(q.data(), group, pool, 1, table, n, scale, &want);
        for (size_t i = 0; i < out.size(); ++i) {
          ASSERT_NEAR(out[i], want[i], 1e-4 * (1 + std::fabs(want[i])))
              << "head_dim " << head_dim << " group " << group << " n " << n << " at " << i;
        }
      }
    }
  }
}

TEST(PagedAttention, shouldReadOnlyTheBlocksItsTableNames) {
  std::mt19937 rng(5);
  Pool pool = make_pool(4, 1, 16, 64, rng);
  std::vector<float> q(64, 0.1f), before(64), after(64);
  const std::vector<int32_t> table = {2, 0};
  paged_attention_group(q.data(), 1, pool.view(), 0, table.data(), 20, 0.125f, before.data());
  // Blocks 1 and 3 are not in the table: changing them must change nothing.
  const PagedKvView v = pool.view();
  for (int32_t b : {1, 3}) {
    std::fill(pool.storage.begin() + b * v.block_stride, pool.storage.begin() + (b + 1) * v.block_stride, 1e6f);
  }
  paged_attention_group(q.data(), 1, pool.view(), 0, table.data(), 20, 0.125f, after.data());
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * 4), 0);
}

}  // namespace
}  // namespace coproc::kernels::cpu
