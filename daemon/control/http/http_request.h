// The HTTP/1.1 request head as HttpServer reads it, on bytes alone: no libuv,
// no sockets, no allocation. Kept apart from the server so that the part a
// peer controls byte for byte can be fuzzed (tests/fuzz/fuzz_http.cc) without
// a loop or a connection.
//
// Strict on purpose: whatever parse_request_head accepts reaches the metrics
// handler, so anything a lenient parser would have to guess about (a lone CR,
// a folded header, a control character, an absolute-form target, another
// HTTP version) is refused rather than interpreted. Only the request line is
// used; header lines are checked for shape and otherwise ignored.
#pragma once

#include <cstddef>
#include <string_view>

namespace coproc::daemon {

// One past the blank line that ends the head ("\n\n" with an optional CR
// before either newline), or npos; never more than data.size().
// `searched_bytes` is a prefix of `data` already searched without finding the
// end, so that a head arriving a byte at a time is scanned once, not once per
// byte: the result is the same as searching from 0.
size_t find_head_end(std::string_view data, size_t searched_bytes = 0);

// What a header value may hold: visible characters, spaces, tabs and
// obs-text, no other control character (a lone CR would let a proxy split the
// line). The server holds the values it writes to the same rule.
bool is_http_field_value(std::string_view s);

// Numerically the status the server answers with.
enum class HttpHeadStatus : int {
  kOk = 200,                // GET or HEAD, well formed
  kBadRequest = 400,        // malformed anywhere in the head
  kMethodNotAllowed = 405,  // well formed, but neither GET nor HEAD
};

// Views into the head passed to parse_request_head: valid while it is.
struct HttpRequestHead {
  std::string_view method;   // a token: "GET", "HEAD", or (405) another
  std::string_view target;   // as sent, query included: printable ASCII, starts with '/'
  std::string_view path;     // target without its query string: no '?'
  std::string_view version;  // "HTTP/1.1" or "HTTP/1.0"
  bool head_only = false;    // HEAD: answer with the headers of GET and no body
};

struct HttpHeadParse {
  HttpHeadStatus status = HttpHeadStatus::kBadRequest;
  HttpRequestHead request;  // filled for kOk and kMethodNotAllowed, empty for kBadRequest
  bool ok() const { return status == HttpHeadStatus::kOk; }
};

// `head`: the bytes up to find_head_end, blank line included. Bytes after the
// first blank line are not looked at.
HttpHeadParse parse_request_head(std::string_view head);

}  // namespace coproc::daemon
