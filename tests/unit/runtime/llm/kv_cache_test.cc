// The KV block pool's invariants and the cache's all-or-nothing reservations.
#include <gtest/gtest.h>

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

TEST(KvCache, shouldGiveEachBlockHeadAndSlotItsOwnStorage) {
  const Hparams hp = tiny();
  KvCache kv(hp, {.max_tokens = 2 * kBlockTokens});
  // Distinct (layer, block, k/v, head, slot) never alias: the last element of one is right
  // before the first of the next slot.
  EXPECT_EQ(kv.key(0, 0, 0, 1) - kv.key(0, 0, 0, 0), hp.head_dim);
  EXPECT_EQ(kv.key(0, 0, 1, 0) - kv.key(0, 0, 0, 0), kBlockTokens * hp.head_dim);
  EXPECT_EQ(kv.value(0, 0, 0, 0) - kv.key(0, 0, 0, 0), hp.n_head_kv * kBlockTokens * hp.head_dim);
  EXPECT_EQ(kv.key(1, 0, 0, 0) - kv.key(0, 0, 0, 0),
            2 * static_cast<int64_t>(2) * hp.n_head_kv * kBlockTokens * hp.head_dim);
  EXPECT_EQ(kv.bytes(), static_cast<int64_t>(sizeof(float)) * 2 * 2 * 2 * hp.n_head_kv * kBlockTokens * hp.head_dim);
}

}  // namespace
}  // namespace coproc::llm
