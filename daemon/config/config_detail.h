// Pieces of the config parser shared by its files; internal to coproc_config.
//   config_keys.cc    the table of scalar keys (kKeys) and what is read off it for people
//   config_values.cc  one value, from the file or a flag, checked against its key and stored
//   config.cc         the sources: the TOML file, the flags, the defaults; describe()
//   config_model.cc   [[model]] tables and the --model flags
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace coproc::daemon::config_detail {

// useradd's limit on names (32), and the characters POSIX calls portable.
inline constexpr size_t kMaxGroupNameChars = 32;

// A key whose value is one word of an enum's EnumWords, stored as the enum. An enum's type
// cannot be part of a member pointer shared by every key of a table, so the field is reached
// through two functions, made for one field by choice_field<&S::field>().
template <class S>
struct ChoiceField {
  std::span<const std::string_view> words;  // indexed by the enum's value
  void (*set)(S&, std::size_t index) = nullptr;
  std::size_t (*get)(const S&) = nullptr;
};

template <class M>
struct MemberOf;
template <class S, class E>
struct MemberOf<E S::*> {
  using Struct = S;
  using Enum = E;
};

template <auto Field>
constexpr ChoiceField<typename MemberOf<decltype(Field)>::Struct> choice_field() {
  using S = typename MemberOf<decltype(Field)>::Struct;
  using E = typename MemberOf<decltype(Field)>::Enum;
  return {EnumWords<E>::kWords, [](S& s, std::size_t i) { s.*Field = static_cast<E>(i); },
          [](const S& s) { return static_cast<std::size_t>(s.*Field); }};
}

// "fixed|dynamic|adaptive": the words as refusals and --help list them.
std::string word_list(std::span<const std::string_view> words);
// The index of `word` in `words`; nullopt if it is none of them.
std::optional<std::size_t> find_word(std::span<const std::string_view> words,
                                     std::string_view word);

enum class Kind {
  kInteger,     // a TOML integer; a flag's text must read as one
  kSize,        // a byte count: an integer, or a string with a unit such as "64MiB"
  kSocketPath,  // a non-empty string of at most `max` bytes
  kChoice,      // one of the words of `choice`, stored as its enum
  kNumaNode,    // "auto", or an integer in [min, max]
  kIdList,      // an array of at most `max_entries` integers in [min, max]; a flag: "1,2,3"
  kFileMode,    // permission bits in [min, max], written in octal: 0o660 or "0660"
  kGroup,       // a group name, or a gid in [min, max]; "" = unset
  kText,        // a string of at most `max` bytes; "" = unset
  kListen,      // "off", or a numeric ADDRESS:PORT (listen_address.h)
};

// One scalar key: where it is written, what it takes, where it goes (config_keys.cc).
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
  // Exactly one of u32, u64, text, u32_list, choice is set, except for kNumaNode.
  uint32_t Config::*u32 = nullptr;
  uint64_t Config::*u64 = nullptr;
  std::string Config::*text = nullptr;
  std::vector<uint32_t> Config::*u32_list = nullptr;
  ChoiceField<Config> choice{};
  std::string_view help;
};

// The table, in the order --help and describe() list the keys.
std::span<const KeySpec> keys();
const KeySpec* find_key(std::string_view key);
// Whether some key lives in the table `table` ("poller" for "poller.spin_us").
bool is_section(std::string_view table);
// What a valid value looks like, for messages and --help.
std::string allowed(const KeySpec& k);
// "[min, max]".
std::string range(const KeySpec& k);
// The key's value in `c`, as the file would write it.
std::string render(const KeySpec& k, const Config& c);

// One value as the user wrote it, in the file or in a flag, not yet checked (config_values.cc).
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

Input from_toml(std::string name, const toml::node& node);
Input from_flag(std::string_view flag, const std::string& value);
// Checks one value against its key and stores it; the only place scalar values enter a Config,
// for the file and the flags alike.
Status assign(const KeySpec& k, const Input& in, Config& c);

// "config: <message>", ErrorCode::kInvalidArgument.
Error invalid(std::string_view message);
// "65536", "512KiB", "64 MiB", "1GiB"; saturates on overflow; nullopt if not a size.
std::optional<uint64_t> parse_size(std::string_view s);
// A file value as TOML writes it, for messages.
std::string shown(const toml::node& node);
// "file:line" of a key.
std::string location(std::string_view source, const toml::key& key);

// [[model]] tables (config_model.cc).
Status apply_models(const toml::node& node, std::string_view source,
                    const std::filesystem::path& base, Config& c);
// --model NAME=PATH: replaces a model of the same name, else adds one.
Status apply_model_flag(const std::string& spec, Config& c);
// --model-device NAME=DEVICE: the device of a model named by --model or the file.
Status apply_model_device_flag(const std::string& spec, Config& c);
// One line per model and batching key, for describe().
std::string describe_models(const Config& c);

}  // namespace coproc::daemon::config_detail
