#include "models/batching_policy.h"

#include <spdlog/spdlog.h>

namespace coproc::daemon {

namespace {

sched::Mode to_mode(BatchMode mode) {
  // The config refuses "continuous" (reserved for generation): no accepted Config holds it.
  COPROC_CHECK(mode != BatchMode::kContinuous);
  switch (mode) {
    case BatchMode::kFixed:
      return sched::Mode::kFixed;
    case BatchMode::kAdaptive:
      return sched::Mode::kAdaptive;
    case BatchMode::kDynamic:
    case BatchMode::kContinuous:
      break;
  }
  return sched::Mode::kDynamic;
}

sched::Target to_target(BatchTarget target) {
  switch (target) {
    case BatchTarget::kLatency:
      return sched::Target::kLatency;
    case BatchTarget::kThroughput:
      return sched::Target::kThroughput;
    case BatchTarget::kBalanced:
      return sched::Target::kBalanced;
  }
  return sched::Target::kBalanced;
}

}  // namespace

sched::Policy to_policy(const BatchingConfig& b) {
  sched::Policy p;
  p.mode = to_mode(b.mode);
  p.max_batch = b.max_batch;
  p.min_batch = b.min_batch;
  p.max_wait_ns = uint64_t{b.max_wait_us} * 1000;
  p.preferred_batch_sizes = b.preferred_batch_sizes;
  p.target = to_target(b.target);
  p.p99_goal_ns = uint64_t{b.p99_goal_us} * 1000;
  p.queue_limit = b.queue_limit;
  p.default_timeout_ns = uint64_t{b.timeout_ms} * 1'000'000;
  p.aging_ns = uint64_t{b.aging_ms} * 1'000'000;
  p.length_buckets = b.length_buckets;
  p.memory_limit_bytes = b.memory_limit_bytes;
  return p;
}

Result<std::vector<sched::Policy>> policies_for(const ModelSet& models, const Config& config) {
  std::vector<sched::Policy> policies;
  for (const auto& m : models.all()) {
    const ModelConfig* found = nullptr;
    for (const auto& mc : config.models) {
      if (mc.name == m.name) found = &mc;
    }
    sched::Policy p = to_policy(found ? found->batching : BatchingConfig{});
    if (p.memory_limit_bytes > 0 && m.variable_length() && p.length_buckets.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "model '" + m.name +
                            "': memory_limit needs length_buckets (its dim 1 varies, "
                            "and the cap is estimated at a bucket's padded length)");
    }
    policies.push_back(std::move(p));
  }
  return policies;
}

void reload_policies(int argc, const char* const* argv, const ModelSet& models,
                     const Config& running,
                     const std::function<void(uint32_t model_id, sched::Policy)>& apply) {
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
    sched::Policy policy = to_policy(now->batching);
    if (policy.memory_limit_bytes > 0 && policy.length_buckets.empty() && m.variable_length()) {
      spdlog::warn("SIGHUP: model '{}': memory_limit needs length_buckets; policy not applied",
                   m.name);
      continue;
    }
    apply(m.id, std::move(policy));
    spdlog::info("SIGHUP: batching policy of model '{}' applied", m.name);
  }
  for (const auto& mc : fresh.models) {
    if (!models.find(mc.name)) spdlog::warn("SIGHUP: new model '{}' needs a restart", mc.name);
  }
}

}  // namespace coproc::daemon
