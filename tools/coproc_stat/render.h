// The three ways coproc-stat prints a snapshot: a table for people, one JSON
// object for scripts, and Prometheus text exposition for scrapers.
#pragma once

#include <string>

#include "snapshot.h"

namespace coproc::stat {

// `previous`: the reading of the last refresh in --watch, for rates; null
// prints no rate column.
std::string render_table(const Snapshot& now, const Snapshot* previous);
std::string render_json(const Snapshot& s);
std::string render_prometheus(const Snapshot& s);

}  // namespace coproc::stat
