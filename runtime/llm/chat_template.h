// Chat messages to a prompt, for the chat templates whose format is known here: the ChatML family
// (the template mentions "<|im_start|>"), which is what SmolLM2, Qwen and many others use:
//
//   <|im_start|>{role}\n{content}<|im_end|>\n   for each message, then
//   <|im_start|>assistant\n                      when add_generation_prompt
//
// The Jinja template itself is not run. What a ChatML template may add is recognised in its text:
// SmolLM2's writes a default system message before the first message when that one is not a
// system message ({% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
// ...<|im_end|>\n' }}{% endif %}), and so does this. The result is what llama.cpp's server
// produces for the same template and messages (it runs the Jinja template).
//
// Refused with kInvalidArgument naming the template (its first 60 characters): any other family;
// a ChatML template that conditions on the system role in a form not recognised here; SmolVLM's
// (it has <|im_start|> but is not ChatML, as llama.cpp also decides). A role that is empty or
// holds a line break or "<|" is refused too: it would forge the message structure.
//
// Contents go in verbatim: text in them that spells a special token becomes that token if the
// prompt is tokenized with parse_special, as llama.cpp's server does.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "coproc/base/result.h"

namespace coproc::llm {

struct ChatMessage {
  std::string role;
  std::string content;
};

Result<std::string> format_chat(std::string_view template_source,
                                std::span<const ChatMessage> messages, bool add_generation_prompt);

}  // namespace coproc::llm
