// Pieces of the config parser shared by config.cc (scalar keys, flags) and
// config_model.cc ([[model]] tables). Internal to coproc_config.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace coproc::daemon::config_detail {

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
