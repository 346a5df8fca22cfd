#include "llm/pretokenize.h"

#include "llm/unicode.h"

namespace coproc::llm {
namespace {

using F = CodepointFlags;

// One piece of text being matched: positions outside [begin, end) read as "nothing" (code point
// kNone, flags 0), which is how lookahead stops at the piece's end.
class Piece {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFF;

  Piece(std::span<const uint32_t> cpts, size_t begin, size_t end, std::vector<uint32_t>& out)
      : cpts_(cpts), begin_(begin), end_(end), out_(out), word_start_(begin) {}

  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  uint32_t cp(size_t pos) const { return pos >= begin_ && pos < end_ ? cpts_[pos] : kNone; }
  uint16_t flags(size_t pos) const {
    return pos >= begin_ && pos < end_ ? codepoint_flags(cpts_[pos]) : 0;
  }
  bool letter(size_t pos) const { return (flags(pos) & F::kLetter) != 0; }
  bool number(size_t pos) const { return (flags(pos) & F::kNumber) != 0; }
  bool space(size_t pos) const { return (flags(pos) & F::kWhitespace) != 0; }
  // [^\s\p{L}\p{N}] inside the piece.
  bool other(size_t pos) const {
    const uint16_t f = flags(pos);
    return f != 0 && (f & (F::kWhitespace | F::kLetter | F::kNumber)) == 0;
  }

  // Ends the current word at `end`; returns the new position.
  size_t emit(size_t end) {
    if (end > word_start_) out_.push_back(static_cast<uint32_t>(end - word_start_));
    word_start_ = end;
    return end;
  }

  // 's 't 're 've 'm 'll 'd at pos: the length matched, or 0. `fold` lowercases ASCII.
  size_t contraction(size_t pos, bool fold) const {
    if (cp(pos) != '\'' || pos + 1 >= end_) return 0;
    auto lower = [fold](uint32_t c) { return fold && c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; };
    const uint32_t c1 = lower(cp(pos + 1));
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= end_) return 0;
    const uint32_t c2 = lower(cp(pos + 2));
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
  }

  size_t whitespace_run(size_t pos) const {
    size_t n = 0;
    while (space(pos + n)) ++n;
    return n;
  }

 private:
  std::span<const uint32_t> cpts_;
  size_t begin_, end_;
  std::vector<uint32_t>& out_;
  size_t word_start_;
};

void match_gpt2(Piece& p) {
  size_t pos = p.begin();
  while (pos < p.end()) {
    if (size_t n = p.contraction(pos, /*fold=*/false)) {
      pos = p.emit(pos + n);
      continue;
    }
    // " ?X+" for X in \p{L}, \p{N}, [^\s\p{L}\p{N}]: the optional space joins the run after it.
    const bool lead_space = p.cp(pos) == ' ';
    const size_t first = pos + (lead_space ? 1 : 0);
    if (p.letter(first) || p.number(first) || p.other(first)) {
      bool (Piece::*same)(size_t) const = p.letter(first)   ? &Piece::letter
                                          : p.number(first) ? &Piece::number
                                                            : &Piece::other;
      pos = first;
      while ((p.*same)(pos)) ++pos;
      p.emit(pos);
      continue;
    }
    // "\s+(?!\S)": a run of white space followed by more text gives up its last one, which then
    // leads the next word; "\s+" takes a run that ends the piece whole.
    const size_t n = p.whitespace_run(pos);
    if (n > 1 && pos + n < p.end()) {
      pos = p.emit(pos + n - 1);
    } else if (n > 0) {
      pos = p.emit(pos + n);
    } else {
      pos = p.emit(pos + 1);  // unreachable: every code point is one of the classes above
    }
  }
}

void match_llama3(Piece& p) {
  size_t pos = p.begin();
  while (pos < p.end()) {
    if (size_t n = p.contraction(pos, /*fold=*/true)) {
      pos = p.emit(pos + n);
      continue;
    }
    const uint32_t c = p.cp(pos);
    // "[^\r\n\p{L}\p{N}]?\p{L}+"
    if (c != '\r' && c != '\n' && !p.number(pos) && (p.letter(pos) || p.letter(pos + 1))) {
      ++pos;
      while (p.letter(pos)) ++pos;
      p.emit(pos);
      continue;
    }
    // "\p{N}{1,3}": a run of digits in words of three.
    if (p.number(pos)) {
      size_t group = 0;
      while (p.number(pos)) {
        ++pos;
        if (++group == 3) {
          p.emit(pos);
          group = 0;
        }
      }
      p.emit(pos);
      continue;
    }
    // " ?[^\s\p{L}\p{N}]+[\r\n]*"
    const size_t first = pos + (c == ' ' ? 1 : 0);
    if (p.other(first) || (c == ' ' && p.flags(first) == 0)) {
      pos = first;
      while (p.other(pos)) ++pos;
      while (p.cp(pos) == '\r' || p.cp(pos) == '\n') ++pos;
      p.emit(pos);
      continue;
    }
    // "\s*[\r\n]+": white space up to and including its last line break; then as gpt2.
    size_t n = 0;
    size_t after_last_break = 0;
    while (p.space(pos + n)) {
      const uint32_t w = p.cp(pos + n);
      ++n;
      if (w == '\r' || w == '\n') after_last_break = pos + n;
    }
    if (after_last_break > 0) {
      pos = p.emit(after_last_break);
    } else if (n > 1 && pos + n < p.end()) {
      pos = p.emit(pos + n - 1);
    } else if (n > 0) {
      pos = p.emit(pos + n);
    } else {
      pos = p.emit(pos + 1);  // unreachable, as in gpt2
    }
  }
}

}  // namespace

std::optional<PreTokenizer> pre_tokenizer_from_name(std::string_view name) {
  if (name == "gpt-2") return PreTokenizer::kGpt2;
  if (name == "smollm") return PreTokenizer::kSmollm;
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe") return PreTokenizer::kLlama3;
  return std::nullopt;
}

const char* pre_tokenizer_name(PreTokenizer pre) {
  switch (pre) {
    case PreTokenizer::kGpt2:
      return "gpt-2";
    case PreTokenizer::kSmollm:
      return "smollm";
    case PreTokenizer::kLlama3:
      return "llama3";
  }
  return "?";
}

void pretokenize(PreTokenizer pre, std::span<const uint32_t> cpts,
                 std::vector<uint32_t>& word_lengths) {
  word_lengths.clear();
  switch (pre) {
    case PreTokenizer::kGpt2: {
      Piece piece(cpts, 0, cpts.size(), word_lengths);
      match_gpt2(piece);
      return;
    }
    case PreTokenizer::kLlama3: {
      Piece piece(cpts, 0, cpts.size(), word_lengths);
      match_llama3(piece);
      return;
    }
    case PreTokenizer::kSmollm: {
      // Every \p{N} code point is a word; the text between them is matched piece by piece.
      size_t start = 0;
      for (size_t i = 0; i <= cpts.size(); ++i) {
        const bool digit = i < cpts.size() && (codepoint_flags(cpts[i]) & F::kNumber) != 0;
        if (i < cpts.size() && !digit) continue;
        if (i > start) {
          Piece piece(cpts, start, i, word_lengths);
          match_gpt2(piece);
        }
        if (digit) word_lengths.push_back(1);
        start = i + 1;
      }
      return;
    }
  }
}

}  // namespace coproc::llm
