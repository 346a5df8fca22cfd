// A string as a JSON string literal, for the tools that print JSON by hand (coproc-bench,
// coproc-stat): quotes, backslashes and control bytes escaped. Bytes >= 0x80 pass through, so
// UTF-8 stays UTF-8.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace coproc {

inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace coproc
