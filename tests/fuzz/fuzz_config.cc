// fuzz_config: arbitrary text through parse_config_text (daemon/config/config.h), the parser of
// coprocd's TOML file, which also re-reads it on SIGHUP.
//
// Input: the file's bytes. Oracle, beyond "no crash, no sanitizer report":
//   - a refusal is ErrorCode::kInvalidArgument with a "config: " message (config.h's contract);
//   - an accepted Config has every field inside the bounds config.h documents (a value that is
//     clamped or slips through unchecked is a bug even when nothing crashes), and describe()
//     prints it.
//
//   build/fuzz/bin/fuzz_config -dict=tests/fuzz/config.dict tests/fuzz/corpus/config
#include <bit>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "fuzz_check.h"

namespace {

using coproc::daemon::BatchingConfig;
using coproc::daemon::Config;
using coproc::daemon::name_of;

constexpr std::size_t kMaxSocketPathBytes = 107;
constexpr std::size_t kMaxModelNameChars = 63;

bool one_of(std::string_view value, std::initializer_list<std::string_view> choices) {
  for (std::string_view c : choices) {
    if (value == c) return true;
  }
  return false;
}

template <class T>
bool ascending_within(const std::vector<T>& values, T lo, T hi) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] < lo || values[i] > hi || (i > 0 && values[i] <= values[i - 1])) return false;
  }
  return true;
}

bool valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxModelNameChars) return false;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

void check_batching(const BatchingConfig& b) {
  FUZZ_CHECK(one_of(name_of(b.mode), {"fixed", "dynamic", "adaptive"}), "mode");
  FUZZ_CHECK(b.max_batch >= 1 && b.max_batch <= 4096, "max_batch");
  FUZZ_CHECK(b.min_batch >= 1 && b.min_batch <= b.max_batch, "min_batch");
  FUZZ_CHECK(b.max_wait_us <= 10'000'000, "max_wait_us");
  FUZZ_CHECK(ascending_within<uint32_t>(b.preferred_batch_sizes, 1, b.max_batch),
             "preferred_batch_sizes");
  FUZZ_CHECK(one_of(name_of(b.target), {"latency", "throughput", "balanced"}), "target");
  FUZZ_CHECK(b.p99_goal_us >= 1 && b.p99_goal_us <= 60'000'000, "p99_goal_us");
  FUZZ_CHECK(b.queue_limit >= 1 && b.queue_limit <= 1'000'000, "queue_limit");
  FUZZ_CHECK(b.timeout_ms <= 3'600'000, "timeout_ms");
  FUZZ_CHECK(b.aging_ms <= 60'000, "aging_ms");
  FUZZ_CHECK(ascending_within<int64_t>(b.length_buckets, 1, int64_t{1} << 20), "length_buckets");
  FUZZ_CHECK(b.memory_limit_bytes <= uint64_t{1} << 40, "memory_limit");
}

void check_config(const Config& c) {
  FUZZ_CHECK(!c.socket_path.empty() && c.socket_path.size() <= kMaxSocketPathBytes,
             "daemon.socket fits sun_path");
  FUZZ_CHECK(c.numa_auto ? c.numa_node == -1 : (c.numa_node >= 0 && c.numa_node <= 1023),
             "daemon.numa_node");
  FUZZ_CHECK(one_of(name_of(c.log_level), {"trace", "debug", "info", "warn", "error", "off"}),
             "daemon.log_level");
  FUZZ_CHECK(c.poller_spin_us <= 1'000'000, "poller.spin_us");
  FUZZ_CHECK(c.inline_max_us <= 10'000'000, "executor.inline_max_us");
  FUZZ_CHECK(c.cpu_threads >= 1 && c.cpu_threads <= 256, "executor.cpu_threads");
  FUZZ_CHECK(c.intra_op_threads >= 1 && c.intra_op_threads <= 64, "executor.intra_op_threads");
  FUZZ_CHECK(c.max_clients >= 1 && c.max_clients <= 4096, "limits.max_clients");
  FUZZ_CHECK(c.arena_bytes >= 64 * 1024 && c.arena_bytes <= uint64_t{16} << 30,
             "limits.arena_bytes");
  FUZZ_CHECK(c.ring_slots >= 8 && c.ring_slots <= 65536 && std::has_single_bit(c.ring_slots),
             "limits.ring_slots");
  FUZZ_CHECK(c.slot_bytes >= 256 && c.slot_bytes <= 65536 && c.slot_bytes % 64 == 0,
             "limits.slot_bytes");
  std::set<std::string> names;
  for (const auto& m : c.models) {
    FUZZ_CHECK(valid_model_name(m.name), "model name");
    FUZZ_CHECK(names.insert(m.name).second, "model names are unique");
    FUZZ_CHECK(!m.path.empty(), "model path");
    FUZZ_CHECK(one_of(name_of(m.device), {"cpu", "gpu", "auto"}), "model device");
    check_batching(m.batching);
  }
  FUZZ_CHECK(!coproc::daemon::describe(c).empty(), "describe() prints the config");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = coproc::daemon::parse_config_text(text, "fuzz.toml", "/etc/coproc");
  if (config.ok()) {
    check_config(config.value());
  } else {
    FUZZ_CHECK(config.error().code == coproc::ErrorCode::kInvalidArgument,
               "a refused config is kInvalidArgument");
    FUZZ_CHECK(config.error().message.rfind("config: ", 0) == 0,
               "a refusal's message starts with \"config: \"");
  }
  return 0;
}
