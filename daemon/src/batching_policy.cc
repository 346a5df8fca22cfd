#include "batching_policy.h"

#include <spdlog/spdlog.h>

namespace coproc::daemon {

sched::Policy to_policy(const BatchingConfig& b) {
  sched::Policy p;
  p.mode = b.mode == "fixed" ? sched::Mode::kFixed
           : b.mode == "adaptive" ? sched::Mode::kAdaptive
                                  : sched::Mode::kDynamic;
  p.max_batch = b.max_batch;
  p.min_batch = b.min_batch;
  p.max_wait_ns = uint64_t{b.max_wait_us} * 1000;
  p.preferred_batch_sizes = b.preferred_batch_sizes;
  p.target = b.target == "latency" ? sched::Target::kLatency
             : b.target == "throughput" ? sched::Target::kThroughput
                                        : sched::Target::kBalanced;
  p.p99_goal_ns = uint64_t{b.p99_goal_us} * 1000;
  p.queue_limit = b.queue_limit;
  p.default_timeout_ns = uint64_t{b.timeout_ms} * 1'000'000;
  p.aging_ns = uint64_t{b.aging_ms} * 1'000'000;
  p.length_buckets = b.length_buckets;
  p.memory_limit_bytes = b.memory_limit_bytes;
  return p;
}

std::vector<sched::Policy> policies_for(const ModelSet& models, const Config& config) {
  std::vector<sched::Policy> policies;
  for (const auto& m : models.all()) {
    const ModelConfig* found = nullptr;
    for (const auto& mc : config.models) {
      if (mc.name == m.name) found = &mc;
    }
    policies.push_back(to_policy(found ? found->batching : BatchingConfig{}));
  }
  return policies;
}

void reload_policies(int argc, const char* const* argv, const ModelSet& models,
                     const Config& running, Batcher& batcher) {
  std::string text;
  auto parsed = parse_command_line(argc, argv, &text);
  if (!parsed.ok() || !parsed.value().has_value()) {
    spdlog::error("SIGHUP: configuration not reloaded: {}",
                  parsed.ok() ? "no configuration" : parsed.error().message);
    return;
  }
  const Config& fresh = **parsed;
  for (const auto& m : models.all()) {
    const ModelConfig* now = nullptr;
    const ModelConfig* before = nullptr;
    for (const auto& mc : fresh.models) {
      if (mc.name == m.name) now = &mc;
    }
    for (const auto& mc : running.models) {
      if (mc.name == m.name) before = &mc;
    }
    if (!now || !before || now->path != before->path) {
      spdlog::warn("SIGHUP: model '{}' was removed or moved: that needs a restart", m.name);
      continue;
    }
    batcher.set_policy(m.id, to_policy(now->batching));
    spdlog::info("SIGHUP: batching policy of model '{}' applied", m.name);
  }
  for (const auto& mc : fresh.models) {
    if (!models.find(mc.name)) spdlog::warn("SIGHUP: new model '{}' needs a restart", mc.name);
  }
}

}  // namespace coproc::daemon
