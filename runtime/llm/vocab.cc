#include "llm/vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <unordered_map>

#include "llm/gguf.h"
#include "llm/unicode.h"

namespace coproc::llm {
namespace {

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// tokenizer.ggml.token_type values (gguf-py's TokenType).
enum TokenType : int64_t {
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

// Texts llama.cpp recognises special tokens by when the metadata does not name them
// (llama_vocab::impl::load). Each list is in llama.cpp's order.
constexpr std::array<std::string_view, 11> kEotTexts = {
    "<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>",   "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
    "<end_of_utterance>"};
constexpr std::array<std::string_view, 1> kEomTexts = {"<|eom_id|>"};
constexpr std::array<std::string_view, 5> kFimPadTexts = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                                          "<PAD>", "[PAD]"};
constexpr std::array<std::string_view, 5> kFimRepTexts = {"<|fim_repo|>", "<|repo_name|>",
                                                          "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::array<std::string_view, 1> kFimSepTexts = {"<|file_sep|>"};
// Tokens that end generation by their text alone. llama.cpp also drops <|end|> when <|return|>
// and <|call|> are present, and </s> next to <|tool_response>; those vocabularies use
// pre-tokenizers refused here, so the exceptions are not needed.
constexpr std::array<std::string_view, 22> kEogTexts = {"<|eot_id|>",
                                                        "<|im_end|>",
                                                        "<|end|>",
                                                        "<|return|>",
                                                        "<|call|>",
                                                        "<|flush|>",
                                                        "<|calls|>",
                                                        "<end_of_turn>",
                                                        "<|endoftext|>",
                                                        "</s>",
                                                        "<|eom_id|>",
                                                        "<EOT>",
                                                        "_<EOT>",
                                                        "[EOT]",
                                                        "[EOS]",
                                                        "<|end_of_text|>",
                                                        "<end_of_utterance>",
                                                        "<eos>",
                                                        "<turn|>",
                                                        "<|tool_response>",
                                                        "<｜end▁of▁sentence｜>",
                                                        "[e~["};

// llama.cpp's default BOS and EOS for a gpt2 vocabulary whose metadata names none.
constexpr int32_t kGpt2DefaultSpecialId = 11;

template <size_t N>
bool is_one_of(std::string_view text, const std::array<std::string_view, N>& texts) {
  return std::find(texts.begin(), texts.end(), text) != texts.end();
}

// An optional token-id key: -1 when absent, an error when present and not a token.
Result<int32_t> optional_id(const GgufFile& file, std::string_view key, int32_t fallback,
                            int32_t n_tokens) {
  if (file.find(key) == nullptr) return fallback < n_tokens ? fallback : -1;
  auto id = file.get_int(key);
  if (!id.ok()) return id.error();
  if (*id < 0 || *id >= n_tokens) {
    return invalid(
        fmt::format("{} = {} is not a token: the vocabulary has {} tokens", key, *id, n_tokens));
  }
  return static_cast<int32_t>(*id);
}

// A normal token's bytes: its text decoded from the byte-level alphabet. A character outside the
// alphabet (only in hand-made vocabularies) is kept as its UTF-8 bytes, where llama.cpp writes
// an "[UNK_BYTE_0x..]" marker.
std::string normal_piece(std::string_view text) {
  std::vector<uint32_t> cpts;
  decode_utf8_lenient(text, cpts);
  std::string piece;
  for (uint32_t cp : cpts) {
    const int byte = codepoint_to_byte(cp);
    if (byte >= 0) {
      piece.push_back(static_cast<char>(byte));
    } else {
      append_utf8(cp, piece);
    }
  }
  return piece;
}

// A byte token's text is "<0xXX>".
std::string byte_piece(std::string_view text) {
  if (text.size() == 6 && text.starts_with("<0x") && text.ends_with(">")) {
    return std::string(1,
                       static_cast<char>(std::stoi(std::string(text.substr(3, 2)), nullptr, 16)));
  }
  return normal_piece(text);
}

}  // namespace

Result<std::unique_ptr<Vocab>> Vocab::from_gguf(const GgufFile& file) {
  auto model = file.get_string("tokenizer.ggml.model");
  if (!model.ok()) return model.error();
  if (*model != "gpt2") {
    return invalid(
        fmt::format("tokenizer.ggml.model = '{}': only 'gpt2' (byte-level BPE) is "
                    "supported",
                    *model));
  }
  auto pre_name = file.get_string("tokenizer.ggml.pre");
  if (!pre_name.ok()) return pre_name.error();
  const auto pre = pre_tokenizer_from_name(*pre_name);
  if (!pre) {
    return invalid(
        fmt::format("tokenizer.ggml.pre = '{}': the supported pre-tokenizers are "
                    "'gpt-2', 'smollm' and 'llama3' ('llama-v3', 'llama-bpe')",
                    *pre_name));
  }

  auto tokens = file.get_array("tokenizer.ggml.tokens", GgufValueType::kString);
  if (!tokens.ok()) return tokens.error();
  const size_t n = (*tokens)->array.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) {
    return invalid(fmt::format("tokenizer.ggml.tokens has {} entries", n));
  }
  const GgufValue* types = nullptr;
  if (file.find("tokenizer.ggml.token_type") != nullptr) {
    auto t = file.get_array("tokenizer.ggml.token_type", GgufValueType::kInt32);
    if (!t.ok()) return t.error();
    types = *t;
    if (types->array.size() != n) {
      return invalid(fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens",
                                 types->array.size(), n));
    }
  }
  auto merges = file.get_array("tokenizer.ggml.merges", GgufValueType::kString);
  if (!merges.ok()) return merges.error();

  std::unique_ptr<Vocab> v(new Vocab());
  v->pre_ = *pre;
  v->ignore_merges_ = *pre == PreTokenizer::kLlama3;
  v->tokens_.resize(n);
  v->attrs_.resize(n, kNormal);
  std::vector<std::string> bytes(n);
  std::vector<bool> usable(n);
  std::unordered_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < n; ++i) {
    std::string_view text = (*tokens)->array[i].str;
    // llama.cpp names an empty token so that it can never match (an empty text would).
    v->tokens_[i] = text.empty() ? fmt::format("[EMPTY_{}]", i) : std::string(text);
    auto [it, fresh] = seen.emplace(v->tokens_[i], i);
    if (!fresh) {
      return invalid(fmt::format("tokenizer.ggml.tokens: tokens {} and {} are both '{}'",
                                 it->second, i, v->tokens_[i]));
    }
    usable[i] = decode_byte_level(v->tokens_[i], bytes[i]);
    if (types != nullptr) {
      switch (types->array[i].i) {
        case kTypeNormal:
          v->attrs_[i] = kNormal;
          break;
        case kTypeUnknown:
          v->attrs_[i] = kUnknown;
          break;
        case kTypeControl:
          v->attrs_[i] = kControl;
          break;
        case kTypeUserDefined:
          v->attrs_[i] = kUserDefined;
          break;
        case kTypeUnused:
          v->attrs_[i] = kUnused;
          break;
        case kTypeByte:
          v->attrs_[i] = kByte;
          break;
        default:
          v->attrs_[i] = 0;
          break;  // undefined: renders as nothing
      }
    }
  }

  std::vector<std::pair<std::string, std::string>> merge_pairs((*merges)->array.size());
  for (size_t rank = 0; rank < merge_pairs.size(); ++rank) {
    std::string_view merge = (*merges)->array[rank].str;
    const size_t space = merge.find(' ', 1);
    if (space == std::string_view::npos) continue;
    auto& [left, right] = merge_pairs[rank];
    // A side outside the byte-level alphabet can never match a symbol: leave the pair empty.
    if (!decode_byte_level(merge.substr(0, space), left) ||
        !decode_byte_level(merge.substr(space + 1), right)) {
      left.clear();
      right.clear();
    }
  }
  v->bpe_ = std::make_unique<Bpe>(bytes, usable, merge_pairs);

  const auto n_tokens = static_cast<int32_t>(n);
  struct IdKey {
    const char* key;
    int32_t* id;
    int32_t fallback;
  };
  int32_t fim_pad = -1, fim_rep = -1, fim_sep = -1;
  const IdKey id_keys[] = {
      {"tokenizer.ggml.bos_token_id", &v->bos_, kGpt2DefaultSpecialId},
      {"tokenizer.ggml.eos_token_id", &v->eos_, kGpt2DefaultSpecialId},
      {"tokenizer.ggml.eot_token_id", &v->eot_, -1},
      {"tokenizer.ggml.eom_token_id", &v->eom_, -1},
      {"tokenizer.ggml.fim_pad_token_id", &fim_pad, -1},
      {"tokenizer.ggml.fim_rep_token_id", &fim_rep, -1},
      {"tokenizer.ggml.fim_sep_token_id", &fim_sep, -1},
  };
  for (const IdKey& k : id_keys) {
    auto id = optional_id(file, k.key, k.fallback, n_tokens);
    if (!id.ok()) return id.error();
    *k.id = *id;
  }

  v->add_bos_ = *pre == PreTokenizer::kLlama3;  // llama.cpp's default per pre-tokenizer
  for (auto [key, flag] : {std::pair{"tokenizer.ggml.add_bos_token", &v->add_bos_},
                           std::pair{"tokenizer.ggml.add_eos_token", &v->add_eos_}}) {
    if (file.find(key) == nullptr) continue;
    auto value = file.get_bool(key);
    if (!value.ok()) return value.error();
    *flag = *value;
  }
  if (v->add_bos_ && v->bos_ < 0)
    return invalid("tokenizer.ggml.add_bos_token is set, but there is no BOS token");
  if (v->add_eos_ && v->eos_ < 0)
    return invalid("tokenizer.ggml.add_eos_token is set, but there is no EOS token");

  if (file.find("tokenizer.chat_template") != nullptr) {
    auto tmpl = file.get_string("tokenizer.chat_template");
    if (!tmpl.ok()) return tmpl.error();
    v->chat_template_ = std::string(*tmpl);
  }

  // End of generation, as llama.cpp builds it: special tokens found by their text are made
  // control tokens (so they are parsed and rendered as such).
  std::vector<int32_t> eog;
  auto by_text = [&](int32_t& id, const auto& texts) {
    for (int32_t i = 0; i < n_tokens && id < 0; ++i) {
      if (is_one_of(v->tokens_[i], texts)) {
        id = i;
        v->attrs_[i] |= kControl;
      }
    }
  };
  by_text(v->eot_, kEotTexts);
  by_text(v->eom_, kEomTexts);
  by_text(fim_pad, kFimPadTexts);
  by_text(fim_rep, kFimRepTexts);
  by_text(fim_sep, kFimSepTexts);
  for (int32_t i = 0; i < n_tokens; ++i) {
    if (is_one_of(v->tokens_[i], kEogTexts)) {
      eog.push_back(i);
      v->attrs_[i] |= kControl;
    }
  }
  for (int32_t id : {fim_pad, fim_rep, fim_sep, v->eos_, v->eot_, v->eom_}) {
    if (id >= 0) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  v->eog_ = std::move(eog);

  v->find_special_tokens();
  v->pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t attr = v->attrs_[i];
    if (attr & (kUnknown | kControl | kUserDefined)) {
      v->pieces_[i] = v->tokens_[i];
    } else if (attr & kNormal) {
      v->pieces_[i] = normal_piece(v->tokens_[i]);
    } else if (attr & kByte) {
      v->pieces_[i] = byte_piece(v->tokens_[i]);
    }
  }
  return v;
}

void Vocab::find_special_tokens() {
  for (int32_t i = 0; i < n_tokens(); ++i) {
    if (attrs_[i] & (kControl | kUserDefined | kUnknown)) special_.push_back(i);
  }
  // Longest first, so that a special token containing another is matched whole.
  std::stable_sort(special_.begin(), special_.end(),
                   [this](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
}

bool Vocab::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

void Vocab::split_special(std::string_view text, bool parse_special,
                          std::vector<Fragment>& out) const {
  out.clear();
  if (!text.empty()) out.push_back({0, text.size(), -1});
  std::vector<Fragment> next;
  for (int32_t id : special_) {
    if (!parse_special && (attrs_[id] & (kControl | kUnknown))) continue;
    const std::string& special = tokens_[id];
    next.clear();
    for (const Fragment& f : out) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view raw = text.substr(0, f.offset + f.length);
      size_t pos = f.offset;
      for (size_t match; (match = raw.find(special, pos)) != std::string_view::npos;) {
        if (match > pos) next.push_back({pos, match - pos, -1});
        next.push_back({0, 0, id});
        pos = match + special.size();
      }
      if (pos < raw.size()) next.push_back({pos, raw.size() - pos, -1});
    }
    out.swap(next);
  }
}

std::vector<int32_t> Vocab::tokenize(std::string_view text, bool add_special,
                                     bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && add_bos_) out.push_back(bos_);
  std::vector<Fragment> fragments;
  split_special(text, parse_special, fragments);

  std::vector<uint32_t> cpts;
  std::vector<uint32_t> word_lengths;
  std::string word;
  Bpe::Scratch scratch;
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    decode_utf8_lenient(text.substr(f.offset, f.length), cpts);
    pretokenize(pre_, cpts, word_lengths);
    size_t at = 0;
    for (uint32_t length : word_lengths) {
      word.clear();
      for (size_t k = at; k < at + length; ++k) append_utf8(cpts[k], word);
      at += length;
      if (ignore_merges_) {
        const int32_t whole = bpe_->find(word);
        if (whole >= 0) {
          out.push_back(whole);
          continue;
        }
      }
      bpe_->encode(word, scratch, out);
    }
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

std::string Vocab::token_to_piece(int32_t id, bool render_special) const {
  COPROC_CHECK(id >= 0 && id < n_tokens());
  if (!render_special && (attrs_[id] & (kControl | kUnknown))) return {};
  return pieces_[id];
}

std::string Vocab::detokenize(std::span<const int32_t> ids, bool render_special) const {
  std::string text;
  for (int32_t id : ids) text += token_to_piece(id, render_special);
  return text;
}

}  // namespace coproc::llm
