// Latency samples and their percentiles (p50/p90/p99/p99.9/max). Never a
// mean alone: tails are what co-located services pay for.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace coproc::bench {

struct Percentiles {
  std::string transport;
  uint64_t samples = 0;
  int64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
};

inline Percentiles summarize(std::string transport, std::vector<int64_t> samples) {
  Percentiles p;
  p.transport = std::move(transport);
  p.samples = samples.size();
  if (samples.empty()) return p;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    auto i = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
    return samples[i];
  };
  p.p50_ns = at(0.50);
  p.p90_ns = at(0.90);
  p.p99_ns = at(0.99);
  p.p999_ns = at(0.999);
  p.max_ns = samples.back();
  return p;
}

}  // namespace coproc::bench
