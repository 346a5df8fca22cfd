// How coproc-stat prints a reading: a table for people, one JSON object for
// scripts (Prometheus text comes from the shared exposition, as /metrics).
#pragma once

#include <string>

#include "coproc/stats/snapshot.h"

namespace coproc::stat {

// `previous`: the reading of the last refresh in --watch, for rates measured
// by this tool; null shows the daemon's own one-second rates.
std::string render_table(const stats::Snapshot& now, const stats::Snapshot* previous);
std::string render_json(const stats::Snapshot& s);

}  // namespace coproc::stat
