#include "llm/chat_template.h"

#include <fmt/format.h>

#include <optional>

namespace coproc::llm {
namespace {

constexpr size_t kTemplateNameChars = 60;
constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";

Error refuse(std::string_view tmpl, std::string_view why) {
  std::string head(tmpl.substr(0, kTemplateNameChars));
  for (char& c : head) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("chat template '{}{}': {}", head,
                                tmpl.size() > kTemplateNameChars ? "..." : "", why));
}

// The Jinja string literal at `pos` (after optional spaces), its escapes resolved.
std::optional<std::string> string_literal(std::string_view s, size_t pos) {
  while (pos < s.size() && s[pos] == ' ') ++pos;
  if (pos >= s.size() || (s[pos] != '\'' && s[pos] != '"')) return std::nullopt;
  const char quote = s[pos++];
  std::string out;
  for (; pos < s.size(); ++pos) {
    char c = s[pos];
    if (c == quote) return out;
    if (c == '\\' && pos + 1 < s.size()) {
      c = s[++pos];
      switch (c) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        case '\\':
        case '\'':
        case '"':
          break;
        default:
          return std::nullopt;
      }
    }
    out.push_back(c);
  }
  return std::nullopt;
}

struct ChatMl {
  std::optional<std::string> default_system;  // written when the first message is not system
};

Result<ChatMl> recognise(std::string_view tmpl) {
  if (tmpl.find(kImStart) == std::string_view::npos) {
    return refuse(tmpl, "only ChatML templates (<|im_start|>) are supported");
  }
  if (tmpl.find("<end_of_utterance>") != std::string_view::npos) {
    return refuse(tmpl, "SmolVLM's template is not ChatML");
  }
  ChatMl chatml;
  const size_t condition = [&] {
    const size_t single = tmpl.find("!= 'system'");
    return single != std::string_view::npos ? single : tmpl.find("!= \"system\"");
  }();
  if (condition == std::string_view::npos) return chatml;
  // SmolLM2's form: the condition's block prints one literal system message.
  const size_t print = tmpl.find("{{", condition);
  const size_t endif = tmpl.find("endif", condition);
  std::optional<std::string> text;
  if (print != std::string_view::npos && print < endif) text = string_literal(tmpl, print + 2);
  const std::string prefix = std::string(kImStart) + "system\n";
  const std::string suffix = std::string(kImEnd) + "\n";
  if (!text || !text->starts_with(prefix) || !text->ends_with(suffix) ||
      text->size() < prefix.size() + suffix.size()) {
    return refuse(tmpl, "a ChatML template with a system-role condition not recognised here");
  }
  chatml.default_system = std::move(text);
  return chatml;
}

}  // namespace

Result<std::string> format_chat(std::string_view template_source,
                                std::span<const ChatMessage> messages, bool add_generation_prompt) {
  auto chatml = recognise(template_source);
  if (!chatml.ok()) return chatml.error();
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role.empty() || m.role.find_first_of("\r\n") != std::string::npos ||
        m.role.find("<|") != std::string::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("chat message {}: role '{}' is empty or holds a line break or "
                                    "'<|'",
                                    i, m.role));
    }
    if (i == 0 && chatml->default_system && m.role != "system") prompt += *chatml->default_system;
    prompt += kImStart;
    prompt += m.role;
    prompt += '\n';
    prompt += m.content;
    prompt += kImEnd;
    prompt += '\n';
  }
  if (add_generation_prompt) {
    prompt += kImStart;
    prompt += "assistant\n";
  }
  return prompt;
}

}  // namespace coproc::llm
