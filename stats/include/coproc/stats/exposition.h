// The stats page in the Prometheus text exposition format (version 0.0.4),
// for the daemon's /metrics and for coproc-stat --prometheus. Names follow
// Prometheus conventions: base units (seconds, bytes), _total for counters,
// one metric family per name with HELP and TYPE, labels for model, status,
// priority, device and client.
#pragma once

#include <string>

#include "coproc/stats/snapshot.h"

namespace coproc::stats {

inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_prometheus(const Snapshot& s);

// What a scraper gets when no daemon answers: coproc_up 0.
std::string render_prometheus_down();

}  // namespace coproc::stats
