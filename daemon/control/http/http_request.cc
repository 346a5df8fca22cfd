#include "control/http/http_request.h"

#include <algorithm>
#include <optional>

namespace coproc::daemon {

namespace {

// RFC 9110 tchar: what a method or a header name may contain.
bool is_tchar(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return is_tchar(ch); });
}

// "METHOD SP target SP version", single spaces, nothing else: a second space
// inside the target or after the version makes the target or version invalid.
std::optional<HttpRequestHead> parse_request_line(std::string_view line) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  HttpRequestHead r;
  r.method = line.substr(0, sp1);
  r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  r.version = line.substr(sp2 + 1);
  const bool visible =
      std::all_of(r.target.begin(), r.target.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
  // Origin-form only: an absolute-form target would name a host the handler
  // knows nothing of.
  if (!is_token(r.method) || r.target.empty() || r.target[0] != '/' || !visible ||
      (r.version != "HTTP/1.1" && r.version != "HTTP/1.0")) {
    return std::nullopt;
  }
  r.path = r.target.substr(0, r.target.find('?'));
  r.head_only = r.method == "HEAD";
  return r;
}

}  // namespace

size_t find_head_end(std::string_view data, size_t searched_bytes) {
  // A terminator is at most 3 bytes: one that ends in the new bytes can start
  // 2 bytes before them.
  const size_t from = searched_bytes >= 2 ? searched_bytes - 2 : 0;
  for (size_t i = data.find('\n', from); i != std::string_view::npos; i = data.find('\n', i + 1)) {
    if (i + 1 < data.size() && data[i + 1] == '\n') return i + 2;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

bool is_http_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

HttpHeadParse parse_request_head(std::string_view head) {
  const HttpHeadParse bad;
  std::optional<HttpRequestHead> request;
  while (!head.empty()) {
    const size_t eol = std::min(head.find('\n'), head.size());
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(std::min(eol + 1, head.size()));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the blank line that ends the head
    // Also refuses a CR left inside the line: only one before the LF is a line end.
    if (!is_http_field_value(line)) return bad;
    if (!request) {
      request = parse_request_line(line);
      if (!request) return bad;
    } else if (const size_t colon = line.find(':');
               colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return bad;  // also a folded line, which starts with a space
    }
  }
  if (!request) return bad;
  const bool allowed = request->method == "GET" || request->head_only;
  return {allowed ? HttpHeadStatus::kOk : HttpHeadStatus::kMethodNotAllowed, *request};
}

}  // namespace coproc::daemon
