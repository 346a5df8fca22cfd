// Percentile rows (stats.h) as coproc-bench prints them: a table in
// microseconds, or one JSON object per row in nanoseconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/stats.h"

namespace coproc::bench {

// Nanoseconds as microseconds with two decimals.
std::string us(int64_t ns);

void print_table(const std::vector<Percentiles>& rows);

// One percentile row; `key` names what the row is about (transport, priority).
std::string json_row(const Percentiles& r, const char* key = "transport");

}  // namespace coproc::bench
