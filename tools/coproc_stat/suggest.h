// Tuning suggestions drawn from one reading of the stats page, each with the
// numbers that triggered it, for coproc-stat's table and JSON.
#pragma once

#include <string>
#include <vector>

#include "coproc/stats/snapshot.h"

namespace coproc::stat {

struct Suggestion {
  std::string model;
  std::string text;  // with the numbers that triggered it
};

std::vector<Suggestion> suggest(const stats::Snapshot& s);

}  // namespace coproc::stat
