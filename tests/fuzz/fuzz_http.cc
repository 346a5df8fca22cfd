// fuzz_http: the bytes a peer sends to the daemon's HTTP endpoint, through what HttpServer does
// with them before its handler sees a path (daemon/control/http/http_request.h): find the end of
// the head while the bytes arrive, then parse the head. Anyone on the host can send these bytes.
//
// Input: what one connection sends, as it would lie in the server's head buffer. The head is the
// input up to find_head_end; an input with no end is parsed whole too, which the server never
// does, so that the parser is exercised past its contract.
//
// Oracle, beyond "no crash, no hang, no sanitizer report":
//   - the end of the head is npos or within the input, just after the "\n" of a blank line;
//     searching as the bytes arrive (one at a time, and in chunks of 1..7 bytes, telling the
//     finder what was already searched, as on_read does) finds the same end as one search;
//   - parsing is deterministic, and bytes after the blank line change nothing;
//   - the status is 200, 400 or 405; a 400 fills no field;
//   - a 200 or 405 head starts with "method SP target SP version" and a line end, every field
//     a view into the head; the method is a token, the version HTTP/1.0 or HTTP/1.1, the target
//     printable ASCII; the path starts with '/', holds no '?' and is the target up to its query;
//   - 200 exactly when the method is GET or HEAD, head_only exactly when it is HEAD;
//   - an accepted complete head holds no control byte but tab, CR and LF, no CR outside a CRLF,
//     and each header line has a name before its colon and does not start with a space or tab.
//
//   build/fuzz/bin/fuzz_http -dict=tests/fuzz/http.dict tests/fuzz/corpus/http
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/http/http_request.h"
#include "fuzz_check.h"

namespace {

using coproc::daemon::find_head_end;
using coproc::daemon::HttpHeadParse;
using coproc::daemon::HttpHeadStatus;
using coproc::daemon::HttpRequestHead;
using coproc::daemon::parse_request_head;

constexpr size_t kNoEnd = std::string_view::npos;
constexpr size_t kMaxChunkBytes = 7;

// Same bytes at the same address: the views must not be copies or different slices.
bool same_view(std::string_view a, std::string_view b) {
  return a.data() == b.data() && a.size() == b.size();
}

bool same_parse(const HttpHeadParse& a, const HttpHeadParse& b) {
  return a.status == b.status && same_view(a.request.method, b.request.method) &&
         same_view(a.request.target, b.request.target) &&
         same_view(a.request.path, b.request.path) &&
         same_view(a.request.version, b.request.version) &&
         a.request.head_only == b.request.head_only;
}

const char* end_of(std::string_view s) { return s.data() + s.size(); }

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && end_of(part) <= end_of(whole);
}

bool is_printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
}

bool is_token_char(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

// The end as on_read finds it: bytes arrive in chunks, and each search starts from what the
// previous ones covered. chunk_bytes 0 cycles through 1..kMaxChunkBytes.
size_t find_end_arriving(std::string_view data, size_t chunk_bytes) {
  size_t received = 0;
  for (size_t n = 0; received < data.size(); ++n) {
    const size_t chunk = chunk_bytes != 0 ? chunk_bytes : n % kMaxChunkBytes + 1;
    const size_t before = received;
    received = std::min(data.size(), received + chunk);
    const size_t end = find_head_end(data.substr(0, received), before);
    if (end != kNoEnd) return end;
  }
  return kNoEnd;
}

void check_end(std::string_view data, size_t end) {
  if (end == kNoEnd) return;
  FUZZ_CHECK(end >= 2 && end <= data.size(), "the end of the head lies within the input");
  FUZZ_CHECK(
      data[end - 1] == '\n' &&
          (data[end - 2] == '\n' || (end >= 3 && data[end - 2] == '\r' && data[end - 3] == '\n')),
      "the head ends with a blank line");
}

void check_request_line(std::string_view head, const HttpRequestHead& r) {
  for (std::string_view field : {r.method, r.target, r.path, r.version}) {
    FUZZ_CHECK(inside(field, head), "every field is a view into the head");
  }
  FUZZ_CHECK(r.method.data() == head.data() && r.target.data() == end_of(r.method) + 1 &&
                 r.version.data() == end_of(r.target) + 1 && head[r.method.size()] == ' ' &&
                 head[r.method.size() + 1 + r.target.size()] == ' ',
             "the head starts with method SP target SP version");
  const std::string_view rest = head.substr(static_cast<size_t>(end_of(r.version) - head.data()));
  // The input's end ends the last line of an incomplete head, after a CR or not.
  FUZZ_CHECK(rest.empty() || rest == "\r" || rest.starts_with("\n") || rest.starts_with("\r\n"),
             "a line end follows the version");
  FUZZ_CHECK(!r.method.empty() && std::all_of(r.method.begin(), r.method.end(), is_token_char),
             "the method is a token");
  FUZZ_CHECK(r.version == "HTTP/1.1" || r.version == "HTTP/1.0", "the version is 1.0 or 1.1");
  FUZZ_CHECK(is_printable_ascii(r.target), "the target is printable ASCII");
  FUZZ_CHECK(r.path.starts_with('/'), "the path starts with '/'");
  FUZZ_CHECK(r.path.find('?') == std::string_view::npos, "the path holds no '?'");
  FUZZ_CHECK(r.path.data() == r.target.data() &&
                 (r.path.size() == r.target.size() || r.target[r.path.size()] == '?'),
             "the path is the target up to its query");
  FUZZ_CHECK(r.head_only == (r.method == "HEAD"), "head_only exactly for HEAD");
}

// What the server promises the handler about a complete head it accepted, stated without the
// parser's line loop.
void check_accepted_head(std::string_view head) {
  for (size_t i = 0; i < head.size(); ++i) {
    const auto u = static_cast<unsigned char>(head[i]);
    FUZZ_CHECK(u == '\t' || u == '\r' || u == '\n' || (u >= 0x20 && u != 0x7f),
               "an accepted head holds no control byte but tab and line ends");
    FUZZ_CHECK(u != '\r' || (i + 1 < head.size() && head[i + 1] == '\n'),
               "an accepted head holds no CR outside a CRLF");
  }
  std::string_view lines = head.substr(head.find('\n') + 1);  // after the request line
  while (!lines.empty()) {
    const size_t eol = lines.find('\n');
    FUZZ_CHECK(eol != std::string_view::npos, "a complete head ends with a line end");
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    FUZZ_CHECK(colon != std::string_view::npos && colon > 0, "a header line has a name");
    FUZZ_CHECK(
        std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), is_token_char),
        "a header name is a token (no folded line)");
  }
}

void check_parse(std::string_view head, bool complete) {
  const HttpHeadParse parsed = parse_request_head(head);
  FUZZ_CHECK(same_parse(parsed, parse_request_head(head)), "parsing is deterministic");
  switch (parsed.status) {
    case HttpHeadStatus::kBadRequest:
      FUZZ_CHECK(same_parse(parsed, HttpHeadParse{}), "a 400 fills no field");
      return;
    case HttpHeadStatus::kOk:
    case HttpHeadStatus::kMethodNotAllowed:
      check_request_line(head, parsed.request);
      FUZZ_CHECK(parsed.ok() == (parsed.request.method == "GET" || parsed.request.head_only),
                 "200 exactly for GET and HEAD, else 405");
      if (parsed.ok() && complete) check_accepted_head(head);
      return;
  }
  FUZZ_CHECK(false, "the status is 200, 400 or 405");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  // libFuzzer's buffer is exactly `size` bytes on the heap: a read past it is an ASan report.
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  const size_t end = find_head_end(data);
  check_end(data, end);
  FUZZ_CHECK(find_end_arriving(data, 1) == end, "a byte at a time finds the same end");
  FUZZ_CHECK(find_end_arriving(data, 0) == end, "chunks of 1..7 bytes find the same end");
  if (end == kNoEnd) {
    check_parse(data, /*complete=*/false);
    return 0;
  }
  const std::string_view head = data.substr(0, end);
  check_parse(head, /*complete=*/true);
  FUZZ_CHECK(same_parse(parse_request_head(head), parse_request_head(data)),
             "bytes after the blank line change nothing");
  return 0;
}
