// One scalar value as the user wrote it, in the file or in a flag (Input), checked against its
// key in the table (config_keys.cc) and stored in the Config: the only place scalar values
// enter one. Also the small readers (integers, sizes, octal modes, lists) and the message
// helpers that config_model.cc shares.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <bit>
#include <charconv>
#include <limits>
#include <sstream>
#include <utility>

#include "config/config.h"
#include "config/config_detail.h"

namespace coproc::daemon::config_detail {

Error invalid(std::string_view message) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("config: {}", message));
}

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

std::optional<std::size_t> find_word(std::span<const std::string_view> words,
                                     std::string_view word) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == word) return i;
  }
  return std::nullopt;
}

namespace {

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

}  // namespace

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
    case Kind::kChoice: {
      const std::optional<std::size_t> word =
          in.text ? find_word(k.choice.words, *in.text) : std::nullopt;
      if (!word) return bad_value(in, "must be " + allowed(k));
      k.choice.set(c, *word);
      return {};
    }
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

namespace {

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

}  // namespace

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

Input from_flag(std::string_view flag, const std::string& value) {
  return Input{.name = std::string(flag),
               .shown = value,
               .integer = parse_integer(value),
               .text = value,
               .list = parse_integer_list(value)};
}

}  // namespace coproc::daemon::config_detail
