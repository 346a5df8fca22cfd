#include "llm/detokenizer.h"

namespace coproc::llm {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + pending_.size());
  for (size_t i = 0; i < bytes.size();) {
    const auto byte = static_cast<uint8_t>(bytes[i]);
    if (needed_ == 0) {
      ++i;
      // The lead byte fixes the length and, for E0, ED, F0 and F4, the range of the next byte
      // (which is what rules out overlong forms, surrogates and code points past U+10FFFF).
      if (byte < 0x80) {
        out.push_back(static_cast<char>(byte));
        continue;
      }
      lower_ = 0x80;
      upper_ = 0xBF;
      if (byte >= 0xC2 && byte <= 0xDF) {
        needed_ = 1;
      } else if (byte >= 0xE0 && byte <= 0xEF) {
        needed_ = 2;
        if (byte == 0xE0) lower_ = 0xA0;
        if (byte == 0xED) upper_ = 0x9F;
      } else if (byte >= 0xF0 && byte <= 0xF4) {
        needed_ = 3;
        if (byte == 0xF0) lower_ = 0x90;
        if (byte == 0xF4) upper_ = 0x8F;
      } else {
        out += kReplacement;  // a stray continuation byte, C0, C1 or F5..FF
        continue;
      }
      pending_.push_back(static_cast<char>(byte));
      continue;
    }
    if (byte < lower_ || byte > upper_) {
      // The sequence cannot be completed: it becomes one U+FFFD and this byte starts afresh.
      out += kReplacement;
      pending_.clear();
      needed_ = 0;
      continue;
    }
    ++i;
    lower_ = 0x80;
    upper_ = 0xBF;
    pending_.push_back(static_cast<char>(byte));
    if (--needed_ == 0) {
      out += pending_;
      pending_.clear();
    }
  }
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  if (!pending_.empty()) out = kReplacement;
  pending_.clear();
  needed_ = 0;
  return out;
}

}  // namespace coproc::llm
