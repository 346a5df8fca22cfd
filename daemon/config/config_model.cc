// [[model]] tables: name, path, and the model's batching keys. Like the
// scalar keys in config.cc, every batching key is one row of a table (kModelKeys)
// with its type and bounds, checked the same way wherever it comes from.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string>

#include "config/config.h"
#include "config/config_detail.h"

namespace coproc::daemon::config_detail {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxModelNameChars = 63;
constexpr std::string_view kModelNameRule = "1-63 characters of [A-Za-z0-9_.-]";

enum class Type { kInteger, kSize, kChoice, kIntegerList };

struct ModelKey {
  std::string_view key;
  Type type;
  uint64_t min = 0;
  uint64_t max = 0;
  ChoiceField<BatchingConfig> choice{};
  uint32_t BatchingConfig::*u32 = nullptr;
  uint64_t BatchingConfig::*u64 = nullptr;
  std::vector<uint32_t> BatchingConfig::*u32_list = nullptr;
  std::vector<int64_t> BatchingConfig::*i64_list = nullptr;
};

// clang-format off
constexpr ModelKey kModelKeys[] = {
    {.key = "mode", .type = Type::kChoice, .choice = choice_field<&BatchingConfig::mode>()},
    {.key = "max_batch", .type = Type::kInteger, .min = 1, .max = 4096, .u32 = &BatchingConfig::max_batch},
    {.key = "min_batch", .type = Type::kInteger, .min = 1, .max = 4096, .u32 = &BatchingConfig::min_batch},
    {.key = "max_wait_us", .type = Type::kInteger, .max = 10'000'000, .u32 = &BatchingConfig::max_wait_us},
    {.key = "preferred_batch_sizes", .type = Type::kIntegerList, .min = 1, .max = 4096,
     .u32_list = &BatchingConfig::preferred_batch_sizes},
    {.key = "target", .type = Type::kChoice, .choice = choice_field<&BatchingConfig::target>()},
    {.key = "p99_goal_us", .type = Type::kInteger, .min = 1, .max = 60'000'000, .u32 = &BatchingConfig::p99_goal_us},
    {.key = "queue_limit", .type = Type::kInteger, .min = 1, .max = 1'000'000, .u32 = &BatchingConfig::queue_limit},
    {.key = "timeout_ms", .type = Type::kInteger, .max = 3'600'000, .u32 = &BatchingConfig::timeout_ms},
    {.key = "aging_ms", .type = Type::kInteger, .max = 60'000, .u32 = &BatchingConfig::aging_ms},
    {.key = "length_buckets", .type = Type::kIntegerList, .min = 1, .max = 1 << 20,
     .i64_list = &BatchingConfig::length_buckets},
    {.key = "memory_limit", .type = Type::kSize, .max = uint64_t{1} << 40,
     .u64 = &BatchingConfig::memory_limit_bytes},
};
// clang-format on

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxModelNameChars) return false;
  for (const char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

std::string resolve(const std::string& path, const fs::path& base) {
  const fs::path p(path);
  if (p.is_absolute() || base.empty()) return path;
  return (base / p).lexically_normal().string();
}

ModelConfig* find_model(Config& c, std::string_view name) {
  for (ModelConfig& m : c.models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const ModelKey* find_model_key(std::string_view key) {
  for (const ModelKey& k : kModelKeys) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

std::optional<uint64_t> in_range(const toml::node& node, const ModelKey& k) {
  const auto* i = node.as_integer();
  if (i == nullptr || i->get() < 0) return std::nullopt;
  const auto n = static_cast<uint64_t>(i->get());
  if (n < k.min || n > k.max) return std::nullopt;
  return n;
}

Status assign(const ModelKey& k, const std::string& name, const toml::node& node,
              BatchingConfig& b) {
  const std::string range = fmt::format("[{}, {}]", k.min, k.max);
  switch (k.type) {
    case Type::kInteger: {
      auto n = in_range(node, k);
      if (!n)
        return invalid(fmt::format("{} = {} must be an integer in {}", name, shown(node), range));
      b.*k.u32 = static_cast<uint32_t>(*n);
      return {};
    }
    case Type::kSize: {
      std::optional<uint64_t> n;
      if (const auto* i = node.as_integer(); i && i->get() >= 0)
        n = static_cast<uint64_t>(i->get());
      if (const auto* s = node.as_string()) n = parse_size(s->get());
      if (!n || *n > k.max) {
        return invalid(
            fmt::format("{} = {} must be a byte count or a size such as \"256MiB\" in {}", name,
                        shown(node), range));
      }
      b.*k.u64 = *n;
      return {};
    }
    case Type::kChoice: {
      const auto* s = node.as_string();
      const std::optional<std::size_t> word =
          s ? find_word(k.choice.words, s->get()) : std::nullopt;
      if (!word) {
        return invalid(
            fmt::format("{} = {} must be one of {}", name, shown(node), word_list(k.choice.words)));
      }
      k.choice.set(b, *word);
      return {};
    }
    case Type::kIntegerList: {
      const auto* list = node.as_array();
      std::vector<uint64_t> values;
      for (size_t i = 0; list && i < list->size(); ++i) {
        auto n = in_range(*list->get(i), k);
        if (!n || (!values.empty() && *n <= values.back())) {
          list = nullptr;
          break;
        }
        values.push_back(*n);
      }
      if (!list) {
        return invalid(fmt::format("{} = {} must be an ascending list of integers in {}", name,
                                   shown(node), range));
      }
      if (k.u32_list) (b.*k.u32_list).assign(values.begin(), values.end());
      if (k.i64_list) (b.*k.i64_list).assign(values.begin(), values.end());
      return {};
    }
  }
  return {};
}

// Rules across keys, checked once the whole table is read.
Status check_batching(const std::string& where, const BatchingConfig& b) {
  if (b.mode == BatchMode::kContinuous) {
    return invalid(fmt::format(
        "{}.mode = \"continuous\" is reserved for generation and not supported yet", where));
  }
  if (b.min_batch > b.max_batch) {
    return invalid(fmt::format("{}.min_batch = {} must not exceed max_batch = {}", where,
                               b.min_batch, b.max_batch));
  }
  if (!b.preferred_batch_sizes.empty() && b.preferred_batch_sizes.back() > b.max_batch) {
    return invalid(
        fmt::format("{}.preferred_batch_sizes must not exceed max_batch = {}", where, b.max_batch));
  }
  return {};
}

}  // namespace

Status apply_models(const toml::node& node, std::string_view source, const fs::path& base,
                    Config& c) {
  const toml::array* list = node.as_array();
  if (list == nullptr) {
    return invalid(fmt::format("model = {} must be an array of tables ([[model]])", shown(node)));
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string where = fmt::format("model[{}]", i);
    const toml::table* table = list->get(i)->as_table();
    if (table == nullptr) {
      return invalid(
          fmt::format("{} = {} must be a table ([[model]])", where, shown(*list->get(i))));
    }
    ModelConfig m;
    for (const auto& [key, value] : *table) {
      const std::string name = fmt::format("{}.{}", where, key.str());
      if (key.str() == "name" || key.str() == "path") {
        if (!value.is_string())
          return invalid(fmt::format("{} = {} must be a string", name, shown(value)));
        (key.str() == "name" ? m.name : m.path) = value.as_string()->get();
        continue;
      }
      if (key.str() == "device") {
        const auto* s = value.as_string();
        const std::optional<DeviceMode> device =
            s ? enum_from_word<DeviceMode>(s->get()) : std::nullopt;
        if (!device) {
          return invalid(fmt::format("{} = {} must be one of {}", name, shown(value),
                                     word_list(EnumWords<DeviceMode>::kWords)));
        }
        m.device = *device;
        continue;
      }
      const ModelKey* spec = find_model_key(key.str());
      if (spec == nullptr) {
        return invalid(fmt::format("unknown key '{}' in {}", name, location(source, key)));
      }
      if (Status s = assign(*spec, name, value, m.batching); !s) return s;
    }
    if (!table->contains("name")) return invalid(fmt::format("{} has no name", where));
    if (!valid_model_name(m.name)) {
      return invalid(fmt::format("{}.name = {:?} must be {}", where, m.name, kModelNameRule));
    }
    if (m.path.empty()) return invalid(fmt::format("{} '{}' has no path", where, m.name));
    if (find_model(c, m.name) != nullptr) {
      return invalid(fmt::format("model '{}' is defined twice", m.name));
    }
    if (Status s = check_batching(where, m.batching); !s) return s;
    m.path = resolve(m.path, base);
    c.models.push_back(std::move(m));
  }
  return {};
}

Status apply_model_flag(const std::string& spec, Config& c) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return invalid(fmt::format("--model = {} must be NAME=PATH", spec));
  }
  ModelConfig m{.name = spec.substr(0, eq), .path = spec.substr(eq + 1)};
  if (!valid_model_name(m.name)) {
    return invalid(fmt::format("--model = {}: the name must be {}", spec, kModelNameRule));
  }
  std::error_code ec;
  m.path = resolve(m.path, fs::current_path(ec));  // on error: left as written
  if (ModelConfig* existing = find_model(c, m.name)) {
    existing->path = std::move(m.path);  // the file's batching keys stay
  } else {
    c.models.push_back(std::move(m));
  }
  return {};
}

Status apply_model_device_flag(const std::string& spec, Config& c) {
  const size_t eq = spec.find('=');
  const std::string name = spec.substr(0, eq);
  const std::optional<DeviceMode> device =
      eq == std::string::npos ? std::nullopt : enum_from_word<DeviceMode>(spec.substr(eq + 1));
  if (!device) {
    return invalid(fmt::format("--model-device = {} must be NAME=DEVICE with DEVICE one of {}",
                               spec, word_list(EnumWords<DeviceMode>::kWords)));
  }
  ModelConfig* m = find_model(c, name);
  if (m == nullptr) {
    return invalid(fmt::format("--model-device = {}: no model named '{}'", spec, name));
  }
  m->device = *device;
  return {};
}

std::string describe_models(const Config& c) {
  std::string text;
  for (const ModelConfig& m : c.models) {
    const BatchingConfig& b = m.batching;
    text += fmt::format(
        "model.{} = {:?} (device {}, mode {}, max_batch {}, min_batch {}, max_wait_us {}, "
        "preferred [{}], target {}, p99_goal_us {}, queue_limit {}, timeout_ms {}, aging_ms {}, "
        "length_buckets [{}], memory_limit {})\n",
        m.name, m.path, name_of(m.device), name_of(b.mode), b.max_batch, b.min_batch, b.max_wait_us,
        fmt::join(b.preferred_batch_sizes, ", "), name_of(b.target), b.p99_goal_us, b.queue_limit,
        b.timeout_ms, b.aging_ms, fmt::join(b.length_buckets, ", "), b.memory_limit_bytes);
  }
  return text;
}

}  // namespace coproc::daemon::config_detail
