// The stats page's reader contract under a live writer: a client slot read
// while the control loop rewrites it is either one client's identity and
// counters or refused, never a mix; and the checked view refuses a page whose
// areas lie outside the mapping. Runs under ThreadSanitizer in `make test`.
#include "coproc/stats/stats_page.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "coproc/coproc_generated.h"
#include "coproc/stats/snapshot.h"
#include "observe/registry.h"

namespace coproc::daemon {
namespace {

// A table of `count` models, as the daemon publishes it.
std::vector<uint8_t> model_table(uint32_t count) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::ModelInfo>> models;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string name = std::to_string(i);
    models.push_back(fb::CreateModelInfo(fbb, i, fbb.CreateString(name), 0, 0, 8));
  }
  fbb.Finish(fb::CreateModelTable(fbb, fbb.CreateVector(models)));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

Registry make_registry(uint32_t client_slots, uint32_t models = 1) {
  RegistryInfo info;
  info.version = "test";
  info.client_slots = client_slots;
  info.device_names[0] = "cpu";
  auto registry = Registry::create(model_table(models), models * wire::kStatsWriters, -1, info);
  COPROC_CHECK(registry.ok());
  return std::move(registry.value());
}

TEST(StatsPage, shouldNeverShowAMixOfTwoClientsInASlotBeingRewritten) {
  Registry registry = make_registry(1);
  stats::StatsPage page;
  std::string error;
  ASSERT_TRUE(page.open(registry.data(), registry.registry_bytes(), &error)) << error;

  std::atomic<bool> stop{false};
  std::atomic<uint32_t> generations{0};
  std::thread writer([&] {
    // Each generation writes id = pid = uid = k and k requests, then clears the slot.
    for (uint32_t k = 1; !stop.load(std::memory_order_relaxed); ++k) {
      generations.store(k, std::memory_order_relaxed);
      const int slot = registry.acquire_client_slot(k, static_cast<int32_t>(k), k);
      COPROC_CHECK(slot == 0);
      wire::ClientStats& c = registry.client_stats(slot);
      c.requests.store(k, std::memory_order_relaxed);
      registry.clear_client_slot(slot);
      registry.release_client_slot(slot);
    }
  });
  int seen = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((seen < 20'000 || generations.load(std::memory_order_relaxed) < 20'000) &&
         std::chrono::steady_clock::now() < until) {
    stats::ClientSnapshot c;
    if (!stats::read_client(page.client(0), &c)) continue;
    ++seen;
    ASSERT_EQ(static_cast<uint32_t>(c.pid), c.id);
    ASSERT_EQ(c.uid, c.id);
    // The counter is bumped outside the seqlock: 0 (reset) or this client's k, never another's.
    ASSERT_TRUE(c.requests == 0 || c.requests == c.id) << c.requests << " for client " << c.id;
  }
  stop.store(true, std::memory_order_relaxed);
  writer.join();
  EXPECT_GE(seen, 20'000) << "the reader rarely caught a client in the slot";
  EXPECT_GE(generations.load(), 20'000u);
}

TEST(StatsPage, shouldHandASlotToANewClientOnlyAfterTheOldSessionReleasedIt) {
  Registry registry = make_registry(2);
  const int a = registry.acquire_client_slot(1, 10, 100);
  const int b = registry.acquire_client_slot(2, 20, 200);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(registry.acquire_client_slot(3, 30, 300), -1) << "every slot is held";
  registry.clear_client_slot(a);  // disconnected, but work in flight may still count into it
  EXPECT_EQ(registry.acquire_client_slot(3, 30, 300), -1);
  registry.release_client_slot(a);
  EXPECT_EQ(registry.acquire_client_slot(3, 30, 300), a);
  stats::ClientSnapshot c;
  ASSERT_TRUE(stats::read_client(registry.client_stats(a), &c));
  EXPECT_EQ(c.id, 3u);
  EXPECT_EQ(c.pid, 30);
  EXPECT_EQ(c.requests, 0u) << "counters start at zero for the new client";
}

TEST(StatsPage, shouldReadThePageOfADaemonServingNoModels) {
  Registry registry = make_registry(4, 0);
  stats::StatsPage page;
  std::string error;
  ASSERT_TRUE(page.open(registry.data(), registry.registry_bytes(), &error)) << error;
  EXPECT_TRUE(page.models().empty());
  const stats::Snapshot s = stats::read_snapshot(page);
  EXPECT_TRUE(s.models.empty());
  EXPECT_EQ(s.daemon.version, "test");
}

TEST(StatsPage, shouldRefuseAPageWhoseAreasLieOutsideTheMapping) {
  Registry registry = make_registry(4);
  std::vector<std::byte> copy(registry.data(), registry.data() + registry.registry_bytes());
  auto* h = reinterpret_cast<wire::RegistryHeader*>(copy.data());
  stats::StatsPage page;
  std::string error;
  ASSERT_TRUE(page.open(copy.data(), copy.size(), &error)) << error;

  h->client_slots = 1u << 30;
  EXPECT_FALSE(page.open(copy.data(), copy.size(), &error));
  EXPECT_EQ(error, "a stats area lies outside the registry");
  h->client_slots = 4;
  h->device_stats_offset = copy.size();
  h->device_count = 1;
  EXPECT_FALSE(page.open(copy.data(), copy.size(), &error));
  h->device_stats_offset = registry.header().device_stats_offset;
  h->stats_stride = 8;  // smaller than a ModelStats
  EXPECT_FALSE(page.open(copy.data(), copy.size(), &error));
  h->stats_stride = sizeof(wire::ModelStats);
  h->layout_version.store(1, std::memory_order_relaxed);
  EXPECT_FALSE(page.open(copy.data(), copy.size(), &error));
  EXPECT_EQ(error, "registry layout 1, this reader knows 2");
  EXPECT_FALSE(page.open(copy.data(), 64, &error)) << "smaller than the header";
}

}  // namespace
}  // namespace coproc::daemon
