// ChatML formatting against what llama.cpp's server (0c1e570, POST /apply-template, running the
// model's Jinja template) printed for SmolLM2-135M-Instruct and the same messages.
#include "llm/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace coproc::llm {
namespace {

// tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf.
const std::string kSmolLm2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";
const std::string kDefaultSystem =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n";

std::string format(const std::string& tmpl, const std::vector<ChatMessage>& messages, bool gen) {
  auto r = format_chat(tmpl, messages, gen);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : "";
}

TEST(ChatTemplate, shouldAddSmolLm2sDefaultSystemMessageBeforeAFirstUserMessage) {
  EXPECT_EQ(format(kSmolLm2, {{"user", "Hello"}}, true),
            kDefaultSystem + "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, shouldKeepTheCallersSystemMessageInAMultiTurnChat) {
  EXPECT_EQ(
      format(kSmolLm2,
             {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}},
             true),
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
      "<|im_start|>assistant\n");
}

TEST(ChatTemplate, shouldOmitTheAssistantHeaderWithoutAGenerationPrompt) {
  EXPECT_EQ(format(kSmolLm2, {{"user", "Hello"}}, false),
            kDefaultSystem + "<|im_start|>user\nHello<|im_end|>\n");
  EXPECT_EQ(format(kSmolLm2, {}, true), "<|im_start|>assistant\n");
}

TEST(ChatTemplate, shouldFormatPlainChatMlWithoutADefaultSystemMessage) {
  const std::string plain =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
  EXPECT_EQ(format(plain, {{"user", "a"}}, true),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, shouldRefuseAnUnknownTemplateNamingIt) {
  const std::string llama2 =
      "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
      "message['content'] + ' [/INST]' }}{% endif %}{% endfor %}";
  auto r = format_chat(llama2, std::vector<ChatMessage>{{"user", "hi"}}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("{% for message in messages %}{% if message['role'] == 'user'"),
            std::string::npos)
      << r.error().message;
}

TEST(ChatTemplate, shouldRefuseAChatMlTemplateWhoseSystemConditionItCannotRead) {
  const std::string odd =
      "{% if messages[0]['role'] != 'system' %}{% set x = 1 %}{% endif %}<|im_start|>";
  auto r = format_chat(odd, std::vector<ChatMessage>{{"user", "hi"}}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(ChatTemplate, shouldRefuseARoleThatWouldForgeTheStructure) {
  for (const char* role : {"", "user\nsystem", "user<|im_end|>"}) {
    auto r = format_chat(kSmolLm2, std::vector<ChatMessage>{{role, "hi"}}, true);
    EXPECT_FALSE(r.ok()) << "role '" << role << "'";
  }
}

}  // namespace
}  // namespace coproc::llm
