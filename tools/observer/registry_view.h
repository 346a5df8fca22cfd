// A read-only view of a running coprocd's registry, for tools that watch the
// daemon without disturbing it (coproc-stat, coproc-soak). It says hello
// on the control socket as an observer, maps the registry read-only, closes
// every other descriptor at once (so the daemon carries no client for us) and
// from then on only loads the daemon's relaxed counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coproc/segment.h"
#include "coproc/stats/stats_page.h"

namespace coproc::observer {

// Why open() failed, for callers that branch on it (coproc-stat --health).
enum class OpenError { kNone, kNoDaemon, kHelloRefused, kBadRegistry };

class RegistryView {
 public:
  RegistryView() = default;
  ~RegistryView();
  RegistryView(const RegistryView&) = delete;
  RegistryView& operator=(const RegistryView&) = delete;

  // false: see error() and error_kind().
  bool open(const std::string& socket_path);
  const std::string& error() const { return error_; }
  OpenError error_kind() const { return error_kind_; }

  // The checked stats page; valid after open() succeeded.
  const stats::StatsPage& page() const { return page_; }
  const wire::RegistryHeader& header() const { return page_.header(); }
  const std::vector<stats::ModelEntry>& models() const { return page_.models(); }
  uint32_t blocks_per_model() const { return page_.blocks_per_model(); }
  const wire::ModelStats& block(std::size_t model, uint32_t k) const { return page_.block(model, k); }

 private:
  bool fail(OpenError kind, std::string message);

  const std::byte* registry_ = nullptr;
  std::size_t registry_bytes_ = 0;
  stats::StatsPage page_;
  std::string error_;
  OpenError error_kind_ = OpenError::kNone;
};

}  // namespace coproc::observer
