#include "common/report.h"

#include <fmt/format.h>

#include <cstdio>

namespace coproc::bench {

std::string us(int64_t ns) { return fmt::format("{:.2f}", static_cast<double>(ns) / 1000.0); }

void print_table(const std::vector<Percentiles>& rows) {
  std::printf("%-15s %9s %10s %10s %10s %10s %10s\n", "transport", "samples", "p50 us", "p90 us",
              "p99 us", "p99.9 us", "max us");
  for (const auto& r : rows) {
    std::printf("%-15s %9llu %10s %10s %10s %10s %10s\n", r.transport.c_str(),
                static_cast<unsigned long long>(r.samples), us(r.p50_ns).c_str(),
                us(r.p90_ns).c_str(), us(r.p99_ns).c_str(), us(r.p999_ns).c_str(),
                us(r.max_ns).c_str());
  }
}

std::string json_row(const Percentiles& r, const char* key) {
  return fmt::format(
      R"({{"{}":"{}","samples":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{}}})",
      key, r.transport, r.samples, r.p50_ns, r.p90_ns, r.p99_ns, r.p999_ns, r.max_ns);
}

}  // namespace coproc::bench
