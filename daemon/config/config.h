// coprocd's configuration: one TOML file plus command-line flags that win over
// it, parsed once at start into typed, bounded fields.
//
// Contract:
//   - Every key has its type and bounds written once, in the key table
//     (config_keys.cc; a model's keys in config_model.cc); the file and the
//     flags are checked against the same entry.
//   - A bad value is refused, never clamped or ignored: the Error
//     (ErrorCode::kInvalidArgument) names the key as the user wrote it
//     ("poller.spin_us" or "--poller-spin-us"), the offending value and the
//     allowed range or values. Unknown keys and tables are refused too, so a
//     typo cannot silently fall back to a default.
//   - Checks that need the machine (does NUMA node 3 exist, can the model be
//     loaded) are not made here; they belong to start-up.
//   - A key whose value is one of a few words (daemon.log_level, a model's
//     device, mode and target) is an enum from parsing on; its words, in
//     EnumWords below, are the only spelling of it, for the parser, the
//     refusals, describe() and the logs alike.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/listen_address.h"
#include "coproc/base/result.h"

namespace coproc::daemon {

// daemon.log_level.
enum class LogLevel : uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kOff };
// A model's device: the CPU, the OpenCL device, or both, each batch on the one measured faster
// for its size at load.
enum class DeviceMode : uint8_t { kCpu, kGpu, kAuto };
// A model's batching mode (scheduler/model_scheduler.h). kContinuous is the word reserved for
// generation: it parses, so that the refusal can say so, and no accepted Config holds it.
enum class BatchMode : uint8_t { kFixed, kDynamic, kAdaptive, kContinuous };
// What an adaptive model's batching aims at.
enum class BatchTarget : uint8_t { kLatency, kThroughput, kBalanced };

// The words of an enum-valued key, indexed by the enum's value (0, 1, 2, ... in order).
template <class E>
struct EnumWords;
template <>
struct EnumWords<LogLevel> {
  static constexpr std::array<std::string_view, 6> kWords = {"trace", "debug", "info",
                                                             "warn",  "error", "off"};
};
template <>
struct EnumWords<DeviceMode> {
  static constexpr std::array<std::string_view, 3> kWords = {"cpu", "gpu", "auto"};
};
template <>
struct EnumWords<BatchMode> {
  static constexpr std::array<std::string_view, 4> kWords = {"fixed", "dynamic", "adaptive",
                                                             "continuous"};
};
template <>
struct EnumWords<BatchTarget> {
  static constexpr std::array<std::string_view, 3> kWords = {"latency", "throughput", "balanced"};
};
static_assert(EnumWords<LogLevel>::kWords.size() == std::size_t(LogLevel::kOff) + 1);
static_assert(EnumWords<DeviceMode>::kWords.size() == std::size_t(DeviceMode::kAuto) + 1);
static_assert(EnumWords<BatchMode>::kWords.size() == std::size_t(BatchMode::kContinuous) + 1);
static_assert(EnumWords<BatchTarget>::kWords.size() == std::size_t(BatchTarget::kBalanced) + 1);

// The word for a value, for logs and stats ("unknown" for a value no word names).
template <class E>
constexpr std::string_view name_of(E value) {
  const auto& words = EnumWords<E>::kWords;
  const auto i = static_cast<std::size_t>(value);
  return i < words.size() ? words[i] : std::string_view("unknown");
}

// The value a word names; nullopt for any other word (the parser refuses it).
template <class E>
constexpr std::optional<E> enum_from_word(std::string_view word) {
  const auto& words = EnumWords<E>::kWords;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == word) return static_cast<E>(i);
  }
  return std::nullopt;
}

// How requests to one model are queued and batched ([[model]] keys). The
// scheduler's semantics are documented in scheduler/model_scheduler.h.
struct BatchingConfig {
  // mode: fixed | dynamic | adaptive ("continuous" is refused)
  BatchMode mode = BatchMode::kDynamic;
  uint32_t max_batch = 32;                      // max_batch: rows per batch, [1, 4096]
  uint32_t min_batch = 1;                       // min_batch: [1, max_batch]
  uint32_t max_wait_us = 1000;                  // max_wait_us: [0, 10000000]
  std::vector<uint32_t> preferred_batch_sizes;  // ascending, each in [1, max_batch]
  // target (adaptive): latency | throughput | balanced
  BatchTarget target = BatchTarget::kBalanced;
  uint32_t p99_goal_us = 5000;          // p99_goal_us (adaptive, balanced): [1, 60000000]
  uint32_t queue_limit = 1024;          // queue_limit: requests queued, [1, 1000000]
  uint32_t timeout_ms = 0;              // timeout_ms: default deadline, 0 = none, [0, 3600000]
  uint32_t aging_ms = 10;               // aging_ms: starvation guard, 0 = off, [0, 60000]
  std::vector<int64_t> length_buckets;  // ascending, each in [1, 1048576]
  uint64_t memory_limit_bytes = 0;      // memory_limit: size of a batch's activations, 0 = none
};

struct ModelConfig {
  std::string name;  // unique, 1-63 characters of [A-Za-z0-9_.-]
  std::string path;  // non-empty; a relative path in the file is resolved against the file's folder
  // device: cpu | gpu (the OpenCL device) | auto (both, each batch on the one measured faster
  // for its size at load). Changing it needs a restart.
  DeviceMode device = DeviceMode::kCpu;
  BatchingConfig batching;
};

struct Config {
  // daemon.socket: must fit sun_path. Empty until parsed; the parsers fill in
  // default_socket_path() when neither the file nor a flag sets it.
  std::string socket_path;
  bool numa_auto = true;                 // daemon.numa_node = "auto"
  int numa_node = -1;                    // daemon.numa_node = N, in [0, 1023]; -1 while numa_auto
  LogLevel log_level = LogLevel::kInfo;  // daemon.log_level: trace|debug|info|warn|error|off
  uint32_t poller_spin_us = 50;   // poller.spin_us: spin this long, then sleep on the doorbell
  uint32_t inline_max_us = 200;   // executor.inline_max_us: shorter runs stay on the poller
  uint32_t cpu_threads = 1;       // executor.cpu_threads: OpenBLAS threads
  uint32_t intra_op_threads = 1;  // executor.intra_op_threads: coproc's own kernels
  // opencl.platform, opencl.device: which OpenCL device serves models on gpu or auto; part of
  // a name (case-insensitive) or an index; "" = any platform, the first GPU (else device).
  std::string opencl_platform;
  std::string opencl_device;
  // http.listen: the HTTP endpoint (/metrics, /health/live, /health/ready): "off", or
  // "ADDRESS:PORT" with a numeric address, "[v6]:PORT" for IPv6 (listen_address.h); port 0 picks
  // a free one. Loopback by default: the metrics name models and client pids.
  std::string http_listen = "127.0.0.1:9470";
  // http.listen parsed, by the same check that accepted the text; nullopt for "off".
  std::optional<ListenAddress> http = ListenAddress{"127.0.0.1", 9470};
  uint32_t max_clients = 64;  // limits.max_clients
  // Connections that have not said hello yet (docs/threat-model.md, "Limits"): in all, which
  // bounds their descriptors, and per peer uid, below that, so one user cannot take every place.
  uint32_t max_pending_hellos = 64;         // limits.max_pending_hellos, in [2, 4096]
  uint32_t max_pending_hellos_per_uid = 8;  // limits.max_pending_hellos_per_uid, in [1, 4095]
  // limits.arena_bytes; the file and flag also take "512KiB", "64MiB", "1GiB".
  uint64_t arena_bytes = uint64_t{64} << 20;
  // limits.request_memory: the most one run (a request or a batch) may use,
  // inputs, outputs and scratch; over it, RESOURCE_EXHAUSTED.
  uint64_t request_memory_bytes = uint64_t{4} << 30;
  // limits.max_request_rows: rows (dim 0) one request may have; over it, RESOURCE_EXHAUSTED.
  uint32_t max_request_rows = 65536;
  uint32_t ring_slots = 256;   // limits.ring_slots: a power of two
  uint32_t slot_bytes = 1024;  // limits.slot_bytes: a multiple of 64 (a cache line)
  // Who may connect (docs/threat-model.md). Root and the daemon's own uid are
  // always allowed: both can read and write the daemon's memory anyway. Beyond
  // them, a peer is allowed when its uid is in allowed_uids, or its primary gid
  // or one of its supplementary groups (as the kernel reports them for the
  // connecting process) is in allowed_gids. Each entry in [0, 4294967294].
  std::vector<uint32_t> allowed_uids;  // security.allowed_uids
  std::vector<uint32_t> allowed_gids;  // security.allowed_gids
  // security.socket_mode: permission bits of the socket file, in [0, 0777];
  // written in octal (0o660 or "0660") in the file, "0660" as a flag.
  uint32_t socket_mode = 0660;
  // security.socket_group: group of the socket file, a name or a gid; empty
  // leaves the daemon's effective gid. Resolved at start-up, not here.
  std::string socket_group;
  std::vector<ModelConfig> models;  // [[model]] tables in file order, then --model additions
};

// $XDG_RUNTIME_DIR/coproc/coprocd.sock when XDG_RUNTIME_DIR is set and not
// empty, else /tmp/coproc-<uid>/coprocd.sock. Reads the environment each call.
std::string default_socket_path();

// Parses argv: --config FILE, then the flag overrides (see --help), which win
// over the file; --model NAME=PATH replaces a file model of the same name, else
// adds one, and a relative PATH is resolved against the working directory.
// Returns the config; std::nullopt after writing the --help or --version text
// to *out (when out is not null); or an Error.
Result<std::optional<Config>> parse_command_line(int argc, const char* const* argv,
                                                 std::string* out);

// The same checks for an in-memory TOML document (tests, SIGHUP reload).
// source_name is used in messages; relative model paths are resolved against
// base_dir (left as written when base_dir is empty).
Result<Config> parse_config_text(std::string_view toml_text, std::string_view source_name,
                                 std::string_view base_dir);

// One "key = value" line per key and one per model, for the startup log.
std::string describe(const Config& config);

}  // namespace coproc::daemon
