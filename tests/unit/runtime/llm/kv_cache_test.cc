// The KV block pool's invariants and the cache's all-or-nothing reservations.
#include <gtest/gtest.h>

#include <vector>

#include "llm/kv_cache.h"
#include "llm/model.h"

namespace coproc::llm {
namespace {

Hparams tiny() {
  Hparams hp;
  hp.n_layer = 2;
  hp.n_embd = 64;
  hp.n_head = 4;
  hp.n_head_kv = 2;
  hp.head_dim = 16;
  return hp;
}

TEST(KvBlockPool, shouldHandOutEveryBlockOnceAndTheMostRecentlyFreedFirst) {
  KvBlockPool pool(3);
  const int32_t a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  pool.release(b);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.allocate(), a);
  EXPECT_EQ(pool.allocate(), b);
}

TEST(KvBlockPool, shouldKeepASharedBlockUntilItsLastReferenceGoes) {
  KvBlockPool pool(1);
  const int32_t a = pool.allocate();
  pool.retain(a);
  EXPECT_EQ(pool.ref_count(a), 2);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 0);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 1);
}

TEST(KvCache, shouldAddBlocksOnlyWhenASequenceCrossesABlockBoundary) {
  KvCache kv(tiny(), {.max_tokens = 4 * kBlockTokens});
  ASSERT_TRUE(kv.add_sequence(7).ok());
  ASSERT_TRUE(kv.reserve(7, 1).ok());
  EXPECT_EQ(kv.block_table(7).size(), 1u);
  kv.set_length(7, kBlockTokens);
  ASSERT_TRUE(kv.reserve(7, 1).ok());
  EXPECT_EQ(kv.block_table(7).size(), 2u);
  kv.truncate(7, 3);
  EXPECT_EQ(kv.block_table(7).size(), 1u);
  EXPECT_EQ(kv.pool().n_free(), 3);
}

TEST(KvCache, shouldRefuseAReservationThatDoesNotFitAndChangeNothing) {
  KvCache kv(tiny(), {.max_tokens = 2 * kBlockTokens});
  ASSERT_TRUE(kv.add_sequence(1).ok());
  ASSERT_TRUE(kv.reserve(1, kBlockTokens).ok());
  kv.set_length(1, kBlockTokens);
  const Status st = kv.reserve(1, 2 * kBlockTokens);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(kv.block_table(1).size(), 1u);
  EXPECT_EQ(kv.pool().n_free(), 1);
}

TEST(KvCache, shouldRefuseADuplicateSequenceAndFreeBlocksOnRemoval) {
  KvCache kv(tiny(), {.max_tokens = 2 * kBlockTokens});
  ASSERT_TRUE(kv.add_sequence(1).ok());
  EXPECT_FALSE(kv.add_sequence(1).ok());
  ASSERT_TRUE(kv.reserve(1, 2 * kBlockTokens).ok());
  EXPECT_EQ(kv.pool().n_free(), 0);
  kv.remove_sequence(1);
  EXPECT_EQ(kv.pool().n_free(), 2);
  EXPECT_FALSE(kv.has_sequence(1));
}

TEST(KvCache, shouldStoreEachBlockHeadAndSlotApartWithKeysTransposedForTheKernel) {
  const Hparams hp = tiny();
  KvCache kv(hp, {.max_tokens = 2 * kBlockTokens});
  std::vector<float> key(static_cast<size_t>(hp.head_dim)), value(key.size());
  // Fill every (layer, block, head, slot) with distinct numbers, then read them all back.
  auto code = [&](int l, int b, int h, int s, int d, int kv_side) {
    return static_cast<float>((((l * 2 + b) * hp.n_head_kv + h) * kBlockTokens + s) * 64 + d) + 0.5f * kv_side;
  };
  for (int l = 0; l < hp.n_layer; ++l)
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < hp.n_head_kv; ++h)
        for (int s = 0; s < kBlockTokens; ++s) {
          for (int d = 0; d < hp.head_dim; ++d) {
            key[static_cast<size_t>(d)] = code(l, b, h, s, d, 0);
            value[static_cast<size_t>(d)] = code(l, b, h, s, d, 1);
          }
          kv.store(l, b, h, s, key.data(), value.data());
        }
  for (int l = 0; l < hp.n_layer; ++l)
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < hp.n_head_kv; ++h)
        for (int s = 0; s < kBlockTokens; ++s)
          for (int d = 0; d < hp.head_dim; ++d) {
            ASSERT_EQ(kv.key_at(l, b, h, s, d), code(l, b, h, s, d, 0));
            ASSERT_EQ(kv.value(l, b, h, s)[d], code(l, b, h, s, d, 1));
            // The kernel's view: keys [dim][slot] per block and head.
            const kernels::cpu::PagedKvView view = kv.layer_view(l);
            ASSERT_EQ(view.keys[b * view.block_stride + h * view.head_stride + d * kBlockTokens + s], code(l, b, h, s, d, 0));
            ASSERT_EQ(view.values[b * view.block_stride + h * view.head_stride + s * hp.head_dim + d], code(l, b, h, s, d, 1));
          }
}

}  // namespace
}  // namespace coproc::llm
