// Parsing and checking of coprocd's configuration (contract in config.h).
//
// Modelled on redis config.c: one static table, kKeys, describes every scalar
// key (file key, flag, type, bounds, field, help). The TOML walk, the flags,
// --help and describe() are all driven by it, so a key's bounds are written
// once. [[model]] entries are a list rather than a scalar and have their own
// code at the end of the file.
#include "config/config.h"
#include "config/config_detail.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

// The build may pass the project version; this fallback keeps the file
// buildable on its own.
#ifndef COPROC_VERSION
#define COPROC_VERSION "0.1.0"
#endif

namespace coproc::daemon {

using namespace config_detail;

namespace {

namespace fs = std::filesystem;

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
// useradd's limit on names (32), and the characters POSIX calls portable.
constexpr size_t kMaxGroupNameChars = 32;

enum class Kind {
  kInteger,     // a TOML integer; a flag's text must read as one
  kSize,        // a byte count: an integer, or a string with a unit such as "64MiB"
  kSocketPath,  // a non-empty string of at most `max` bytes
  kChoice,      // one of the '|'-separated words in `choices`
  kNumaNode,    // "auto", or an integer in [min, max]
  kIdList,      // an array of at most `max_entries` integers in [min, max]; a flag: "1,2,3"
  kFileMode,    // permission bits in [min, max], written in octal: 0o660 or "0660"
  kGroup,       // a group name, or a gid in [min, max]; "" = unset
  kText,        // a string of at most `max` bytes; "" = unset
  kListen,      // "off", or a numeric ADDRESS:PORT (listen_address.h)
};

struct KeySpec {
  std::string_view key;   // as written in the file: "poller.spin_us"
  std::string_view flag;  // "--poller-spin-us"
  std::string_view metavar;
  Kind kind;
  uint64_t min = 0;
  uint64_t max = 0;
  bool power_of_two = false;
  uint64_t multiple_of = 1;
  uint64_t max_entries = 0;  // kIdList
  std::string_view choices{};
  // Exactly one of u32, u64, text, u32_list is set, except for kNumaNode.
  uint32_t Config::*u32 = nullptr;
  uint64_t Config::*u64 = nullptr;
  std::string Config::*text = nullptr;
  std::vector<uint32_t> Config::*u32_list = nullptr;
  std::string_view help;
};

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
     .choices = "trace|debug|info|warn|error|off", .text = &Config::log_level,
     .help = "Log verbosity"},
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

constexpr size_t kKeyCount = std::size(kKeys);

// One value as the user wrote it, in the file or in a flag, not yet checked.
struct Input {
  std::string name;                   // "poller.spin_us" or "--poller-spin-us"
  std::string shown;                  // the value as written, for messages
  std::optional<int64_t> integer{};   // set when the value is (a flag: reads as) an integer
  std::optional<std::string> text{};  // set when the value is a string (a flag: always)
  // Set when the value is an array of integers (a flag: reads as a
  // comma-separated list of integers, "" being the empty list).
  std::optional<std::vector<int64_t>> list{};
  bool octal = false;  // a TOML integer written in octal (0o660)
};

}  // namespace

namespace config_detail {

Error invalid(std::string_view message) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("config: {}", message));
}

}  // namespace config_detail

namespace {

Error bad_value(const Input& in, std::string_view what) {
  return invalid(fmt::format("{} = {} {}", in.name, in.shown, what));
}

// Reads a whole decimal integer; an overflow saturates so that the range check
// reports it as out of range rather than as "not an integer".
std::optional<int64_t> parse_integer(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || end != s.data() + s.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    return s.front() == '-' ? std::numeric_limits<int64_t>::min()
                            : std::numeric_limits<int64_t>::max();
  }
  if (ec != std::errc{}) return std::nullopt;
  return v;
}

}  // namespace

namespace config_detail {

// "65536", "512KiB", "64 MiB", "1GiB": binary units only, so "1GB" cannot be
// misread. Saturates on overflow, like parse_integer.
std::optional<uint64_t> parse_size(std::string_view s) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  constexpr std::pair<std::string_view, int> kUnits[] = {
      {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (end == s.data()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) n = kMax;
  std::string_view unit = s.substr(static_cast<size_t>(end - s.data()));
  if (unit.starts_with(' ')) unit.remove_prefix(1);
  for (const auto& [name, shift] : kUnits) {
    if (unit == name) return n > (kMax >> shift) ? kMax : n << shift;
  }
  return std::nullopt;
}

}  // namespace config_detail

namespace {

bool is_choice(std::string_view choices, std::string_view word) {
  for (;;) {
    const size_t bar = choices.find('|');
    if (choices.substr(0, bar) == word) return true;
    if (bar == std::string_view::npos) return false;
    choices.remove_prefix(bar + 1);
  }
}

std::string range(const KeySpec& k) { return fmt::format("[{}, {}]", k.min, k.max); }

// "0660", "660" or "0o660": octal digits only, so a mode is never read in
// the wrong base. Saturates on overflow, like parse_integer.
std::optional<uint64_t> parse_octal(std::string_view s) {
  if (s.starts_with("0o")) s.remove_prefix(2);
  if (s.empty()) return std::nullopt;
  uint64_t n = 0;
  for (const char ch : s) {
    if (ch < '0' || ch > '7') return std::nullopt;
    n = n > (std::numeric_limits<uint64_t>::max() >> 3) ? std::numeric_limits<uint64_t>::max()
                                                        : n * 8 + static_cast<uint64_t>(ch - '0');
  }
  return n;
}

bool is_group_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxGroupNameChars || s.front() == '-') return false;
  for (const char ch : s) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// What a valid value looks like, for messages and --help.
std::string allowed(const KeySpec& k) {
  switch (k.kind) {
    case Kind::kSocketPath:
      return fmt::format("a path of at most {} bytes", k.max);
    case Kind::kText:
      return fmt::format("a string of at most {} bytes", k.max);
    case Kind::kChoice:
      return fmt::format("one of {}", k.choices);
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

Status assign_number(const KeySpec& k, const Input& in, Config& c) {
  // A key with a rule beyond its range says the whole rule when either fails.
  const bool has_rule = k.power_of_two || k.multiple_of > 1;
  const auto refuse = [&] {
    return has_rule ? bad_value(in, "must be " + allowed(k))
                    : bad_value(in, "is out of range " + range(k));
  };
  if (in.integer && *in.integer < 0) return refuse();
  std::optional<uint64_t> n;
  if (in.integer) {
    n = static_cast<uint64_t>(*in.integer);
  } else if (k.kind == Kind::kSize && in.text) {
    n = parse_size(*in.text);
  }
  if (!n) return bad_value(in, "must be " + allowed(k));
  if (*n < k.min || *n > k.max || (k.power_of_two && !std::has_single_bit(*n)) ||
      *n % k.multiple_of != 0) {
    return refuse();
  }
  if (k.u32 != nullptr) {
    c.*k.u32 = static_cast<uint32_t>(*n);  // fits: every u32 key's max is below 2^32
  } else {
    c.*k.u64 = *n;
  }
  return {};
}

Status assign_id_list(const KeySpec& k, const Input& in, Config& c) {
  if (!in.list) return bad_value(in, "must be " + allowed(k));
  if (in.list->size() > k.max_entries) {  // not shown: it would be a thousand lines
    return invalid(fmt::format("{} has {} entries; at most {} are allowed", in.name,
                               in.list->size(), k.max_entries));
  }
  std::vector<uint32_t> ids;
  ids.reserve(in.list->size());
  for (const int64_t v : *in.list) {
    if (v < 0 || static_cast<uint64_t>(v) < k.min || static_cast<uint64_t>(v) > k.max) {
      return bad_value(in, "must be " + allowed(k));
    }
    ids.push_back(static_cast<uint32_t>(v));  // fits: k.max is below 2^32
  }
  c.*k.u32_list = std::move(ids);
  return {};
}

// A decimal integer is refused rather than read as octal: `socket_mode = 660`
// is 0o1224, and a mode silently taken in the wrong base is a hole.
Status assign_file_mode(const KeySpec& k, const Input& in, Config& c) {
  std::optional<uint64_t> mode;
  if (in.integer && in.octal) {
    if (*in.integer >= 0) mode = static_cast<uint64_t>(*in.integer);
  } else if (in.text) {
    mode = parse_octal(*in.text);
  }
  if (!mode || *mode < k.min || *mode > k.max) return bad_value(in, "must be " + allowed(k));
  c.*k.u32 = static_cast<uint32_t>(*mode);
  return {};
}

// All digits is a gid (as chown(1) reads "1000"), anything else a name; the
// name is looked up at start-up, when the socket is made.
Status assign_group(const KeySpec& k, const Input& in, Config& c) {
  std::optional<std::string> group;
  if (in.text && in.text->empty()) {
    group = "";
  } else if (in.text && is_digits(*in.text)) {
    const std::optional<int64_t> gid = parse_integer(*in.text);
    if (gid && static_cast<uint64_t>(*gid) <= k.max) group = std::to_string(*gid);
  } else if (in.text && is_group_name(*in.text)) {
    group = *in.text;
  } else if (!in.text && in.integer && *in.integer >= 0 &&
             static_cast<uint64_t>(*in.integer) <= k.max) {
    group = std::to_string(*in.integer);
  }
  if (!group) return bad_value(in, "must be " + allowed(k));
  c.*k.text = std::move(*group);
  return {};
}

// Checks one value against its key and stores it; the only place values enter
// a Config, for the file and the flags alike.
Status assign(const KeySpec& k, const Input& in, Config& c) {
  switch (k.kind) {
    case Kind::kIdList:
      return assign_id_list(k, in, c);
    case Kind::kFileMode:
      return assign_file_mode(k, in, c);
    case Kind::kGroup:
      return assign_group(k, in, c);
    case Kind::kInteger:
    case Kind::kSize:
      return assign_number(k, in, c);
    case Kind::kSocketPath:
      if (!in.text) return bad_value(in, "must be a string");
      if (in.text->empty()) return bad_value(in, "must not be empty");
      if (in.text->size() > k.max) {
        return bad_value(
            in, fmt::format("is {} bytes; at most {} fit in sun_path", in.text->size(), k.max));
      }
      c.*k.text = *in.text;
      return {};
    case Kind::kText:
      if (!in.text) return bad_value(in, "must be a string");
      if (in.text->size() > k.max) return bad_value(in, "must be " + allowed(k));
      c.*k.text = *in.text;
      return {};
    case Kind::kListen: {
      if (!in.text) return bad_value(in, "must be " + allowed(k));
      bool valid = false;
      std::string problem;
      auto address = parse_listen_address(*in.text, &valid, &problem);
      if (!valid) return bad_value(in, problem + "; it must be " + allowed(k));
      c.*k.text = *in.text;
      c.http = std::move(address);  // the one key of this kind
      return {};
    }
    case Kind::kChoice:
      if (!in.text || !is_choice(k.choices, *in.text)) {
        return bad_value(in, "must be " + allowed(k));
      }
      c.*k.text = *in.text;
      return {};
    case Kind::kNumaNode:
      if (in.text && *in.text == "auto") {
        c.numa_auto = true;
        c.numa_node = -1;
        return {};
      }
      if (!in.integer || *in.integer < 0 || static_cast<uint64_t>(*in.integer) > k.max) {
        return bad_value(in, "must be " + allowed(k));
      }
      c.numa_auto = false;
      c.numa_node = static_cast<int>(*in.integer);
      return {};
  }
  return {};
}

std::string render(const KeySpec& k, const Config& c) {
  switch (k.kind) {
    case Kind::kSocketPath:
    case Kind::kText:
    case Kind::kChoice:
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

}  // namespace

namespace config_detail {

// A file value as TOML writes it, so a message shows what to look for in the
// file; strings always in double quotes, whichever quotes the file used.
std::string shown(const toml::node& node) {
  if (const auto* s = node.as_string()) return fmt::format("{:?}", s->get());
  std::ostringstream os;
  node.visit([&os](const auto& n) { os << n; });
  return os.str();
}

std::string location(std::string_view source, const toml::key& key) {
  return fmt::format("{}:{}", source, key.source().begin.line);
}

}  // namespace config_detail

namespace {

Input from_toml(std::string name, const toml::node& node) {
  Input in{.name = std::move(name), .shown = shown(node)};
  if (const auto* i = node.as_integer()) {
    in.integer = i->get();
    in.octal = (i->flags() & toml::value_flags::format_as_octal) != toml::value_flags::none;
  }
  if (const auto* s = node.as_string()) in.text = s->get();
  if (const auto* a = node.as_array()) {
    std::vector<int64_t> values;
    for (const toml::node& element : *a) {
      const auto* i = element.as_integer();
      if (i == nullptr) return in;
      values.push_back(i->get());
    }
    in.list = std::move(values);
  }
  return in;
}

// "1000,1001" as a list; "" is the empty list; nullopt if an item is not an integer.
std::optional<std::vector<int64_t>> parse_integer_list(std::string_view s) {
  std::vector<int64_t> values;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    const std::optional<int64_t> v = parse_integer(s.substr(0, comma));
    if (!v) return std::nullopt;
    values.push_back(*v);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
    if (s.empty()) return std::nullopt;  // a trailing comma
  }
  return values;
}

Input from_flag(std::string_view flag, const std::string& value) {
  return Input{.name = std::string(flag),
               .shown = value,
               .integer = parse_integer(value),
               .text = value,
               .list = parse_integer_list(value)};
}


Status apply_toml(std::string_view text, std::string_view source, const fs::path& base, Config& c) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return invalid(fmt::format("{}:{}:{}: {}", source, e.source().begin.line,
                               e.source().begin.column, e.description()));
  }
  for (const auto& [section, node] : root) {
    const std::string_view table_name = section.str();
    if (table_name == "model") {
      if (Status s = apply_models(node, source, base, c); !s) return s;
      continue;
    }
    if (!is_section(table_name)) {
      return invalid(fmt::format("unknown {} '{}' in {}", node.is_table() ? "table" : "key",
                                 table_name, location(source, section)));
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return invalid(fmt::format("{} = {} must be a table", table_name, shown(node)));
    }
    for (const auto& [key, value] : *table) {
      const std::string name = fmt::format("{}.{}", table_name, key.str());
      const KeySpec* spec = find_key(name);
      if (spec == nullptr) {
        return invalid(fmt::format("unknown key '{}' in {}", name, location(source, key)));
      }
      if (Status s = assign(*spec, from_toml(name, value), c); !s) return s;
    }
  }
  return {};
}

// Fills in what depends on the environment once every source has been applied, and checks what
// depends on two keys.
Status finish(Config& c) {
  if (c.max_pending_hellos_per_uid >= c.max_pending_hellos) {
    return invalid(fmt::format(
        "limits.max_pending_hellos_per_uid = {} must be below limits.max_pending_hellos = {}: "
        "else one user's idle connections can take every place",
        c.max_pending_hellos_per_uid, c.max_pending_hellos));
  }
  if (!c.socket_path.empty()) return {};
  const std::string path = default_socket_path();
  const Input in{
      .name = "daemon.socket (default)", .shown = fmt::format("{:?}", path), .text = path};
  return assign(*find_key("daemon.socket"), in, c);
}

Result<std::string> read_file(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) {
    return invalid(fmt::format("cannot open config file '{}': {}", path, std::strerror(errno)));
  }
  std::string text;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    text.append(buffer.data(), n);
  }
  if (std::ferror(file.get())) {
    return invalid(fmt::format("cannot read config file '{}': {}", path, std::strerror(errno)));
  }
  return text;
}

}  // namespace

std::string default_socket_path() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  if (runtime_dir != nullptr && *runtime_dir != '\0') {
    return fmt::format("{}/coproc/coprocd.sock", runtime_dir);
  }
  return fmt::format("/tmp/coproc-{}/coprocd.sock", getuid());
}

Result<Config> parse_config_text(std::string_view toml_text, std::string_view source_name,
                                 std::string_view base_dir) {
  Config c;
  if (Status s = apply_toml(toml_text, source_name, fs::path(base_dir), c); !s) return s.error();
  if (Status s = finish(c); !s) return s.error();
  return c;
}

Result<std::optional<Config>> parse_command_line(int argc, const char* const* argv,
                                                 std::string* out) {
  CLI::App app{"coprocd: local inference daemon", "coprocd"};
  app.set_version_flag("--version", "coprocd " COPROC_VERSION);
  std::string config_path;
  CLI::Option* config_option =
      app.add_option("--config", config_path, "TOML config file; the flags below override it")
          ->type_name("FILE")
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::array<std::string, kKeyCount> values;
  std::array<CLI::Option*, kKeyCount> options{};
  Config defaults;
  defaults.socket_path = default_socket_path();
  for (size_t i = 0; i < kKeyCount; ++i) {
    const KeySpec& k = kKeys[i];
    options[i] = app.add_option(std::string(k.flag), values[i],
                                fmt::format("{}: {} (file: {}; default: {})", k.help, allowed(k),
                                            k.key, render(k, defaults)))
                     ->type_name(std::string(k.metavar))
                     ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  std::vector<std::string> model_specs;
  app.add_option("--model", model_specs,
                 "Serve the model at PATH as NAME; replaces a [[model]] of that name (repeatable)")
      ->type_name("NAME=PATH");
  std::vector<std::string> device_specs;
  app.add_option("--model-device", device_specs,
                 "Run model NAME on DEVICE: cpu, gpu (OpenCL) or auto (the faster per batch size) "
                 "(repeatable)")
      ->type_name("NAME=DEVICE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (out != nullptr) *out = app.help();
    return std::optional<Config>();
  } catch (const CLI::CallForVersion& e) {
    if (out != nullptr) *out = fmt::format("{}\n", e.what());
    return std::optional<Config>();
  } catch (const CLI::ParseError& e) {
    return invalid(e.what());
  }

  Config c;
  if (config_option->count() > 0) {
    Result<std::string> text = read_file(config_path);
    if (!text) return text.error();
    std::error_code ec;
    const fs::path file = fs::absolute(config_path, ec);
    if (Status s = apply_toml(*text, config_path, ec ? fs::path() : file.parent_path(), c); !s) {
      return s.error();
    }
  }
  for (size_t i = 0; i < kKeyCount; ++i) {
    if (options[i]->count() == 0) continue;
    if (Status s = assign(kKeys[i], from_flag(kKeys[i].flag, values[i]), c); !s) return s.error();
  }
  for (const std::string& spec : model_specs) {
    if (Status s = apply_model_flag(spec, c); !s) return s.error();
  }
  for (const std::string& spec : device_specs) {
    if (Status s = apply_model_device_flag(spec, c); !s) return s.error();
  }
  if (Status s = finish(c); !s) return s.error();
  return std::optional<Config>(std::move(c));
}

std::string describe(const Config& config) {
  std::string text;
  for (const KeySpec& k : kKeys) text += fmt::format("{} = {}\n", k.key, render(k, config));
  return text + describe_models(config);
}

}  // namespace coproc::daemon
