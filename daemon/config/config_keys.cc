// The table of coprocd's scalar keys, modelled on redis config.c: one row per key (file key,
// flag, type, bounds, field, help). The TOML walk, the flags, --help and describe() are all
// driven by it, so a key's bounds are written once; this file also says, for people, what each
// key takes (allowed) and holds (render). A new scalar key is one row here and its field in
// config.h.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iterator>

#include "config/config.h"
#include "config/config_detail.h"

namespace coproc::daemon::config_detail {

namespace {

// sockaddr_un::sun_path is 108 bytes, the terminating NUL included.
constexpr uint64_t kMaxSocketPathBytes = 107;
// uid_t and gid_t are 32 bits; (uid_t)-1 means "no change" to chown and is
// never a real id.
constexpr uint64_t kMaxId = 4'294'967'294;
// An allow-list is searched at every hello; a thousand entries is far more
// than a host has services, so a longer list is a mistake.
constexpr uint64_t kMaxAllowListEntries = 1024;
// Permission bits only: no setuid, setgid or sticky bit on a socket.
constexpr uint64_t kMaxSocketMode = 0777;
// One key per row reads better than one field per line.
// clang-format off
constexpr KeySpec kKeys[] = {
    {.key = "daemon.socket", .flag = "--socket", .metavar = "PATH", .kind = Kind::kSocketPath,
     .max = kMaxSocketPathBytes, .text = &Config::socket_path,
     .help = "Unix socket the daemon listens on"},
    {.key = "daemon.numa_node", .flag = "--numa-node", .metavar = "N|auto", .kind = Kind::kNumaNode,
     .max = 1023,
     .help = "NUMA node for threads, segments and weights (auto: the GPU's node, else 0)"},
    {.key = "daemon.log_level", .flag = "--log-level", .metavar = "LEVEL", .kind = Kind::kChoice,
     .choice = choice_field<&Config::log_level>(), .help = "Log verbosity"},
    {.key = "poller.spin_us", .flag = "--poller-spin-us", .metavar = "N", .kind = Kind::kInteger,
     .max = 1'000'000, .u32 = &Config::poller_spin_us,
     .help = "Microseconds the poller spins before sleeping on the doorbell"},
    {.key = "executor.inline_max_us", .flag = "--inline-max-us", .metavar = "N",
     .kind = Kind::kInteger, .max = 10'000'000, .u32 = &Config::inline_max_us,
     .help = "Requests measured to run shorter than this (microseconds) run on the poller thread"},
    {.key = "executor.cpu_threads", .flag = "--cpu-threads", .metavar = "N", .kind = Kind::kInteger,
     .min = 1, .max = 256, .u32 = &Config::cpu_threads,
     .help = "OpenBLAS threads"},
    {.key = "executor.intra_op_threads", .flag = "--intra-op-threads", .metavar = "N",
     .kind = Kind::kInteger, .min = 1, .max = 64, .u32 = &Config::intra_op_threads,
     .help = "Threads one model run may use in coproc's own kernels (packed GEMM, attention)"},
    {.key = "opencl.platform", .flag = "--opencl-platform", .metavar = "NAME|INDEX",
     .kind = Kind::kText, .max = 256, .text = &Config::opencl_platform,
     .help = "OpenCL platform for models on gpu or auto: part of its name, or its index (\"\": any)"},
    {.key = "opencl.device", .flag = "--opencl-device", .metavar = "NAME|INDEX",
     .kind = Kind::kText, .max = 256, .text = &Config::opencl_device,
     .help = "OpenCL device on that platform: part of its name, or its index (\"\": the first GPU, "
             "else the first device)"},
    {.key = "http.listen", .flag = "--http-listen", .metavar = "ADDR:PORT|off",
     .kind = Kind::kListen, .text = &Config::http_listen,
     .help = "HTTP endpoint for /metrics and /health (port 0: any free port; off: none)"},
    {.key = "limits.max_clients", .flag = "--max-clients", .metavar = "N", .kind = Kind::kInteger,
     .min = 1, .max = 4096, .u32 = &Config::max_clients,
     .help = "Clients connected at once"},
    {.key = "limits.max_pending_hellos", .flag = "--max-pending-hellos", .metavar = "N",
     .kind = Kind::kInteger, .min = 2, .max = 4096, .u32 = &Config::max_pending_hellos,
     .help = "Connections waiting for their hello at once, from all users"},
    {.key = "limits.max_pending_hellos_per_uid", .flag = "--max-pending-hellos-per-uid",
     .metavar = "N", .kind = Kind::kInteger, .min = 1, .max = 4095,
     .u32 = &Config::max_pending_hellos_per_uid,
     .help = "Connections waiting for their hello at once from one uid (below the total)"},
    {.key = "limits.arena_bytes", .flag = "--arena-bytes", .metavar = "N|SIZE", .kind = Kind::kSize,
     .min = 64 * 1024, .max = uint64_t{16} << 30, .u64 = &Config::arena_bytes,
     .help = "Tensor arena in each client segment"},
    {.key = "limits.request_memory", .flag = "--request-memory", .metavar = "N|SIZE",
     .kind = Kind::kSize, .min = uint64_t{1} << 20, .max = uint64_t{1} << 40,
     .u64 = &Config::request_memory_bytes,
     .help = "Memory one run (a request or a batch) may use: inputs, outputs and scratch"},
    {.key = "limits.max_request_rows", .flag = "--max-request-rows", .metavar = "N",
     .kind = Kind::kInteger, .min = 1, .max = uint64_t{1} << 31, .u32 = &Config::max_request_rows,
     .help = "Rows one request may have (it runs in chunks of max_batch rows)"},
    {.key = "limits.ring_slots", .flag = "--ring-slots", .metavar = "N", .kind = Kind::kInteger,
     .min = 8, .max = 65536, .power_of_two = true, .u32 = &Config::ring_slots,
     .help = "Slots in each submission and completion ring"},
    {.key = "limits.slot_bytes", .flag = "--slot-bytes", .metavar = "N", .kind = Kind::kInteger,
     .min = 256, .max = 65536, .multiple_of = 64, .u32 = &Config::slot_bytes,
     .help = "Bytes per ring slot (whole cache lines)"},
    {.key = "security.allowed_uids", .flag = "--allowed-uids", .metavar = "UID,...",
     .kind = Kind::kIdList, .max = kMaxId, .max_entries = kMaxAllowListEntries,
     .u32_list = &Config::allowed_uids,
     .help = "Uids allowed to connect besides root and the daemon's own uid"},
    {.key = "security.allowed_gids", .flag = "--allowed-gids", .metavar = "GID,...",
     .kind = Kind::kIdList, .max = kMaxId, .max_entries = kMaxAllowListEntries,
     .u32_list = &Config::allowed_gids,
     .help = "Groups (primary or supplementary) whose members may connect"},
    {.key = "security.socket_mode", .flag = "--socket-mode", .metavar = "MODE",
     .kind = Kind::kFileMode, .max = kMaxSocketMode, .u32 = &Config::socket_mode,
     .help = "Permission bits of the socket file, set before it listens"},
    {.key = "security.socket_group", .flag = "--socket-group", .metavar = "GROUP",
     .kind = Kind::kGroup, .max = kMaxId, .text = &Config::socket_group,
     .help = "Group of the socket file (empty: the daemon's group)"},
};
// clang-format on

}  // namespace

std::span<const KeySpec> keys() { return kKeys; }

std::string range(const KeySpec& k) { return fmt::format("[{}, {}]", k.min, k.max); }

std::string word_list(std::span<const std::string_view> words) {
  return fmt::format("{}", fmt::join(words, "|"));
}

std::string allowed(const KeySpec& k) {
  switch (k.kind) {
    case Kind::kSocketPath:
      return fmt::format("a path of at most {} bytes", k.max);
    case Kind::kText:
      return fmt::format("a string of at most {} bytes", k.max);
    case Kind::kChoice:
      return fmt::format("one of {}", word_list(k.choice.words));
    case Kind::kNumaNode:
      return fmt::format("an integer in {} or \"auto\"", range(k));
    case Kind::kSize:
      return fmt::format("a byte count or a size such as \"64MiB\" in {}", range(k));
    case Kind::kIdList:
      return fmt::format("an array of at most {} integers in {}", k.max_entries, range(k));
    case Kind::kFileMode:
      return fmt::format("an octal mode in [0, 0{:o}], written 0o660 or \"0660\"", k.max);
    case Kind::kGroup:
      return fmt::format(
          "a group name (1-{} characters of [A-Za-z0-9_.-], not starting with '-') or a gid in {}",
          kMaxGroupNameChars, range(k));
    case Kind::kListen:
      return "\"off\" or a numeric ADDRESS:PORT such as \"127.0.0.1:9470\" or \"[::1]:9470\"";
    case Kind::kInteger:
      break;
  }
  if (k.power_of_two) return fmt::format("a power of two in {}", range(k));
  if (k.multiple_of > 1) return fmt::format("a multiple of {} in {}", k.multiple_of, range(k));
  return fmt::format("an integer in {}", range(k));
}

std::string render(const KeySpec& k, const Config& c) {
  switch (k.kind) {
    case Kind::kChoice:
      return fmt::format("{:?}", k.choice.words[k.choice.get(c)]);
    case Kind::kSocketPath:
    case Kind::kText:
    case Kind::kGroup:
    case Kind::kListen:
      return fmt::format("{:?}", c.*k.text);
    case Kind::kIdList:
      return fmt::format("[{}]", fmt::join(c.*k.u32_list, ", "));
    case Kind::kFileMode:
      return fmt::format("\"{:04o}\"", c.*k.u32);
    case Kind::kNumaNode:
      return c.numa_auto ? "\"auto\"" : std::to_string(c.numa_node);
    case Kind::kInteger:
    case Kind::kSize:
      break;
  }
  return std::to_string(k.u32 != nullptr ? uint64_t{c.*k.u32} : c.*k.u64);
}

const KeySpec* find_key(std::string_view key) {
  for (const KeySpec& k : kKeys) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

bool is_section(std::string_view table) {
  for (const KeySpec& k : kKeys) {
    if (k.key.starts_with(table) && k.key.size() > table.size() && k.key[table.size()] == '.') {
      return true;
    }
  }
  return false;
}

}  // namespace coproc::daemon::config_detail
