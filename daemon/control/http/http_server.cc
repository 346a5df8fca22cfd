#include "control/http/http_server.h"

#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "control/http/http_request.h"

namespace coproc::daemon {

namespace {

constexpr int kListenBacklog = 128;
// The sweep runs this often relative to request_timeout_ms, so a deadline is
// enforced at most a quarter late; within these bounds so a tiny timeout does
// not spin the loop and a large one is still checked every second.
constexpr uint64_t kSweepsPerTimeout = 4;
constexpr uint64_t kMinSweepMs = 10;
constexpr uint64_t kMaxSweepMs = 1000;
// Paths are peer-controlled; a log line quotes at most this much of one.
constexpr int kMaxLoggedPathBytes = 100;

enum class Phase { kReadingHead, kResponding, kLingering };

struct Reason {
  int status;
  const char* phrase;
};
constexpr Reason kReasons[] = {{200, "OK"},
                               {400, "Bad Request"},
                               {404, "Not Found"},
                               {405, "Method Not Allowed"},
                               {408, "Request Timeout"},
                               {431, "Request Header Fields Too Large"},
                               {500, "Internal Server Error"},
                               {503, "Service Unavailable"}};

// status is within 200..599. Clients go by the code; the phrase is for people.
const char* reason_phrase(int status) {
  for (const Reason& r : kReasons) {
    if (r.status == status) return r.phrase;
  }
  constexpr const char* kByClass[] = {"Success", "Redirection", "Client Error", "Server Error"};
  return kByClass[status / 100 - 2];
}

HttpResponse plain(int status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body)};
}

std::string render(const HttpResponse& r, bool head_only, std::string_view extra_headers) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      r.status, reason_phrase(r.status), r.content_type, r.body.size(), extra_headers,
      head_only ? std::string_view() : std::string_view(r.body));
}

// Written with uv_try_write just before a close: best effort, never queued.
void try_send(uv_stream_t* stream, const std::string& bytes) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  [[maybe_unused]] const int rc = uv_try_write(stream, &buf, 1);
}

template <class Handle>
void close_and_delete(Handle* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

}  // namespace

struct HttpServer::Connection {
  uv_tcp_t tcp{};
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
  // Null once closing: the write and shutdown callbacks still run (cancelled)
  // after uv_close, when the server may be gone.
  HttpServer* server = nullptr;
  bool closing = false;
  Phase phase = Phase::kReadingHead;
  bool peer_closed = false;  // EOF seen after the head
  uint64_t deadline_ms = 0;  // uv_now() by which this phase must be over
  // The request head, max_request_bytes + 1 long so that a head one byte over
  // the limit is seen as such; after the head, scratch for discarded input.
  std::string head;
  size_t head_bytes = 0;
  std::string response;  // alive until the write completes
};

HttpServer::HttpServer(uv_loop_t* loop, HttpHandler handler, HttpLimits limits)
    : loop_(loop), handler_(std::move(handler)), limits_(limits) {
  COPROC_CHECK(loop_ != nullptr && handler_);
  COPROC_CHECK(limits_.max_connections > 0 && limits_.max_request_bytes > 0 &&
               limits_.request_timeout_ms > 0);
}

HttpServer::~HttpServer() { close(); }

Status HttpServer::listen(const std::string& address, uint16_t port) {
  COPROC_CHECK(listener_ == nullptr && !closed_);
  const bool v6 = address.find(':') != std::string::npos;
  const std::string where =
      v6 ? fmt::format("[{}]:{}", address, port) : fmt::format("{}:{}", address, port);
  sockaddr_storage addr{};
  if (address.find('\0') != std::string::npos ||
      (uv_ip4_addr(address.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
       uv_ip6_addr(address.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("HTTP server cannot listen on {}: \"{}\" is not an IPv4 or "
                                  "IPv6 address literal",
                                  where, address));
  }
  auto* tcp = new uv_tcp_t{};
  uv_tcp_init(loop_, tcp);
  tcp->data = this;
  auto fail = [&](const char* what, int rc) -> Status {
    close_and_delete(tcp);
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("HTTP server cannot {} {}: {}", what, where, uv_strerror(rc)));
  };
  if (int rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0); rc != 0) {
    return fail("bind", rc);
  }
  // libuv reports EADDRINUSE from bind() here rather than above.
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), kListenBacklog, on_connection);
      rc != 0) {
    return fail("listen on", rc);
  }
  sockaddr_storage bound{};
  int bound_len = sizeof(bound);
  COPROC_CHECK(uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listener_ = tcp;

  sweep_timer_ = new uv_timer_t{};
  uv_timer_init(loop_, sweep_timer_);
  sweep_timer_->data = this;
  const uint64_t period_ms =
      std::clamp(limits_.request_timeout_ms / kSweepsPerTimeout, kMinSweepMs, kMaxSweepMs);
  uv_timer_start(
      sweep_timer_, [](uv_timer_t* t) { static_cast<HttpServer*>(t->data)->sweep(); }, period_ms,
      period_ms);
  return {};
}

void HttpServer::close() {
  if (closed_) return;
  closed_ = true;
  if (listener_ != nullptr) close_and_delete(std::exchange(listener_, nullptr));
  if (sweep_timer_ != nullptr) close_and_delete(std::exchange(sweep_timer_, nullptr));
  const std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (Connection* c : open) close_connection(*c);
}

HttpStats HttpServer::stats() const {
  HttpStats s = stats_;
  s.open_connections = static_cast<uint32_t>(connections_.size());
  return s;
}

void HttpServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<HttpServer*>(listener->data);
  if (status < 0) {
    ++self->stats_.accept_errors;
    return;
  }
  if (self->connections_.size() >= self->limits_.max_connections) {
    self->refuse_connection(listener);
    return;
  }
  auto* c = new Connection();
  uv_tcp_init(self->loop_, &c->tcp);
  c->tcp.data = c;
  c->server = self;
  self->connections_.insert(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    ++self->stats_.accept_errors;
    self->close_connection(*c);
    return;
  }
  c->deadline_ms = uv_now(self->loop_) + self->limits_.request_timeout_ms;
  c->head.resize(size_t{self->limits_.max_request_bytes} + 1);
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) != 0) {
    self->close_connection(*c);
  }
}

// Accepted only to be closed: a connection left in the backlog would stall
// the listener, and a 503 tells a scraper why better than a reset does.
void HttpServer::refuse_connection(uv_stream_t* listener) {
  static const std::string kRefusal =
      render(plain(503, "too many connections\n"), false, std::string_view());
  auto* tcp = new uv_tcp_t{};
  uv_tcp_init(loop_, tcp);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(tcp)) == 0) {
    try_send(reinterpret_cast<uv_stream_t*>(tcp), kRefusal);
    ++stats_.refused_connections;
  } else {
    ++stats_.accept_errors;
  }
  close_and_delete(tcp);
}

void HttpServer::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  const size_t used = c->phase == Phase::kReadingHead ? c->head_bytes : 0;
  *buf = uv_buf_init(c->head.data() + used, static_cast<unsigned>(c->head.size() - used));
}

void HttpServer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* c = static_cast<Connection*>(stream->data);
  HttpServer* self = c->server;
  if (nread < 0) {
    // EOF after the head: the peer may still be reading the response.
    if (nread == UV_EOF && c->phase != Phase::kReadingHead) {
      c->peer_closed = true;
      if (c->phase == Phase::kLingering) self->close_connection(*c);
      return;
    }
    self->close_connection(*c);
    return;
  }
  if (c->phase != Phase::kReadingHead || nread == 0) return;  // discarded
  const size_t before = c->head_bytes;
  c->head_bytes += static_cast<size_t>(nread);
  const std::string_view data(c->head.data(), c->head_bytes);
  const size_t end = find_head_end(data, before);
  if (end != std::string_view::npos && end <= self->limits_.max_request_bytes) {
    self->handle_head(*c, data.substr(0, end));
  } else if (c->head_bytes > self->limits_.max_request_bytes) {
    ++self->stats_.bad_requests;
    self->respond(*c, plain(431, "request head too large\n"), false);
  }
}

void HttpServer::handle_head(Connection& c, std::string_view head) {
  const HttpHeadParse parsed = parse_request_head(head);
  switch (parsed.status) {
    case HttpHeadStatus::kOk:
      break;
    case HttpHeadStatus::kBadRequest:
      ++stats_.bad_requests;
      respond(c, plain(400, "bad request\n"), false);
      return;
    case HttpHeadStatus::kMethodNotAllowed:
      ++stats_.bad_requests;
      respond(c, plain(405, "method not allowed\n"), false, "Allow: GET, HEAD\r\n");
      return;
  }
  const HttpResponse response = call_handler(parsed.request.path);
  if (c.closing) return;  // the handler closed the server
  respond(c, response, parsed.request.head_only);
}

HttpResponse HttpServer::call_handler(std::string_view path) {
  std::string what;
  try {
    HttpResponse r = handler_(path);
    if (r.status >= 200 && r.status <= 599 && is_http_field_value(r.content_type)) return r;
    what = fmt::format("gave status {} with Content-Type \"{}\"", r.status, r.content_type);
  } catch (const std::exception& e) {
    what = fmt::format("threw: {}", e.what());
  } catch (...) {
    what = "threw an exception that is not a std::exception";
  }
  ++stats_.handler_errors;
  error_log_.log(uv_now(loop_),
                 fmt::format("HTTP handler for \"{:.{}}\" {}", path, kMaxLoggedPathBytes, what));
  return plain(500, "internal server error\n");
}

void HttpServer::respond(Connection& c, const HttpResponse& response, bool head_only,
                         std::string_view extra_headers) {
  ++stats_.responses;
  c.phase = Phase::kResponding;
  c.deadline_ms = uv_now(loop_) + limits_.request_timeout_ms;
  c.response = render(response, head_only, extra_headers);
  uv_buf_t buf = uv_buf_init(c.response.data(), static_cast<unsigned>(c.response.size()));
  if (uv_write(&c.write_req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, on_write) != 0) {
    close_connection(c);
  }
}

// Half-close rather than close: closing with request bytes still unread
// makes the kernel send a reset, which can destroy the response before the
// peer has read it. The peer's EOF (or the deadline) ends the connection.
void HttpServer::on_write(uv_write_t* req, int status) {
  auto* c = static_cast<Connection*>(req->handle->data);
  if (c->closing) return;
  std::string().swap(c->response);
  if (status < 0 || uv_shutdown(&c->shutdown_req, req->handle, on_shutdown) != 0) {
    c->server->close_connection(*c);
  }
}

void HttpServer::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<Connection*>(req->handle->data);
  if (c->closing) return;
  if (status < 0 || c->peer_closed) {
    c->server->close_connection(*c);
    return;
  }
  c->phase = Phase::kLingering;
}

void HttpServer::sweep() {
  const uint64_t now = uv_now(loop_);
  error_log_.flush(now);
  static const std::string kTimeout =
      render(plain(408, "request timeout\n"), false, std::string_view());
  std::vector<Connection*> due;
  for (Connection* c : connections_) {
    if (now >= c->deadline_ms) due.push_back(c);
  }
  for (Connection* c : due) {
    if (c->phase == Phase::kReadingHead) {
      ++stats_.request_timeouts;
      try_send(reinterpret_cast<uv_stream_t*>(&c->tcp), kTimeout);
    } else {
      ++stats_.stalled_responses;  // closing cancels the write and frees its buffer
    }
    close_connection(*c);
  }
}

void HttpServer::close_connection(Connection& c) {
  if (c.closing) return;
  c.closing = true;
  c.server = nullptr;
  connections_.erase(&c);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp),
           [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
}

}  // namespace coproc::daemon
