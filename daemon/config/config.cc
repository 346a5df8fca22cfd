// Where coprocd's configuration comes from (contract in config.h): the TOML
// file, the flags that win over it, the defaults that depend on the
// environment; and describe(), which prints the result. Each scalar value goes
// through assign() (config_values.cc) against its row of the key table
// (config_keys.cc); [[model]] tables and the --model flags are config_model.cc.
#include "config/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "config/config_detail.h"

// The build may pass the project version; this fallback keeps the file
// buildable on its own.
#ifndef COPROC_VERSION
#define COPROC_VERSION "0.1.0"
#endif

namespace coproc::daemon {

using namespace config_detail;

namespace {

namespace fs = std::filesystem;

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
  const std::span<const KeySpec> table = keys();
  std::vector<std::string> values(table.size());
  std::vector<CLI::Option*> options(table.size());
  Config defaults;
  defaults.socket_path = default_socket_path();
  for (size_t i = 0; i < table.size(); ++i) {
    const KeySpec& k = table[i];
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
  for (size_t i = 0; i < table.size(); ++i) {
    if (options[i]->count() == 0) continue;
    if (Status s = assign(table[i], from_flag(table[i].flag, values[i]), c); !s) return s.error();
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
  for (const KeySpec& k : keys()) text += fmt::format("{} = {}\n", k.key, render(k, config));
  return text + describe_models(config);
}

}  // namespace coproc::daemon
