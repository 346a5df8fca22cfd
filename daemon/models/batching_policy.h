// From the config's per-model batching keys to the scheduler's Policy, and the
// SIGHUP reload that applies changed policies without a restart.
#pragma once

#include <functional>
#include <vector>

#include "config/config.h"
#include "models/models.h"
#include "scheduler/scheduler_types.h"

namespace coproc::daemon {

sched::Policy to_policy(const BatchingConfig& b);

// Policies for every loaded model, from the models' config entries by name;
// an error names a policy the model cannot honour (a memory cap on a
// variable-length model needs length buckets: the cap is estimated at the
// bucket's padded length).
Result<std::vector<sched::Policy>> policies_for(const ModelSet& models, const Config& config);

// SIGHUP: re-reads the configuration the daemon started with. Batching
// policies of models still named the same and at the same path change at
// once (queued requests stay queued); anything else (a model added, removed
// or moved, a daemon-wide key) is logged as needing a restart. `apply` hands a model's new
// policy to whoever runs it (the dispatcher), so this room does not depend on that one.
void reload_policies(int argc, const char* const* argv, const ModelSet& models,
                     const Config& running,
                     const std::function<void(uint32_t model_id, sched::Policy)>& apply);

}  // namespace coproc::daemon
