// A small HTTP/1.1 server for /metrics and health checks, on a libuv loop that
// the caller runs (the daemon's control loop). Everything a peer sends is
// untrusted: anyone on the host can reach a loopback port.
//
// Protocol: one request per connection. The server reads the request head
// (up to "\r\n\r\n", or a bare "\n\n"), answers GET and HEAD through the
// handler, sends "Connection: close", half-closes its side once the response
// is written and closes when the peer closes (or the deadline passes). A
// request body is not read: whatever follows the head is discarded. There is
// no keep-alive and no pipelining; Prometheus and curl open a connection per
// scrape anyway. Malformed requests get 400, other methods 405, a head over
// max_request_bytes 431, a head not complete within request_timeout_ms 408,
// a handler that throws 500, a connection over max_connections 503;
// http_request.h says what a well-formed head is.
//
// Resources a peer can hold: at most max_connections connections, each for
// at most request_timeout_ms to send its head plus request_timeout_ms to take
// its response and close, with at most max_request_bytes + 1 bytes of request
// and one response in memory. Deadlines are checked by a sweep timer, so a
// connection is closed up to a quarter of request_timeout_ms (at most 1 s)
// after its deadline.
//
// Threading: not thread-safe. Every call, and the handler, runs on the loop's
// thread; constructing and listen() may also happen on another thread before
// the loop starts running. stats() is for the loop thread (the metrics
// handler) or for after the loop has stopped.
//
// Lifetime: close() (also run by the destructor) closes every handle through
// uv_close; the handles' memory is owned by their close callbacks, not by the
// HttpServer, so the server may be destroyed right after close(). The loop
// must then run (uv_run) until those callbacks have run before uv_loop_close,
// or it reports UV_EBUSY and the handles leak. The same holds after a listen()
// that failed after binding. The handler must not destroy the server.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "coproc/base/result.h"
#include "platform/log_limiter.h"

namespace coproc::daemon {

struct HttpResponse {
  int status = 200;  // 200, 404, 503, ...; outside 200..599 is answered as 500
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called on the loop thread for each complete, well-formed GET or HEAD
// request; `path` is the request target without its query string
// (e.g. "/metrics"), as sent: not percent-decoded, printable ASCII only,
// starting with '/'. An exception it throws is answered with 500 and logged.
using HttpHandler = std::function<HttpResponse(std::string_view path)>;

// All must be > 0.
struct HttpLimits {
  uint32_t max_connections = 64;      // more are accepted and closed at once (503)
  uint32_t max_request_bytes = 8192;  // request line + headers; over it: 431 and close
  // To send the head (else 408 and close), and again to take the response and close.
  uint32_t request_timeout_ms = 5000;
};

// Monotonic counts since construction.
struct HttpStats {
  uint64_t responses = 0;            // responses queued, any status but 408 and 503
  uint64_t refused_connections = 0;  // closed at once: max_connections were open
  uint64_t bad_requests = 0;         // answered 400, 405 or 431
  uint64_t request_timeouts = 0;     // head not complete in time: 408
  uint64_t stalled_responses = 0;    // response not taken, or peer not closing, in time
  uint64_t handler_errors = 0;       // the handler threw or gave a bad response: 500
  uint64_t accept_errors = 0;        // accept() failed (e.g. out of descriptors)
  uint32_t open_connections = 0;     // now
};

class HttpServer {
 public:
  HttpServer(uv_loop_t* loop, HttpHandler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // address: an IPv4 literal ("127.0.0.1", "0.0.0.0") or an IPv6 literal
  // ("::1"); port 0 picks a free port. A bad literal is kInvalidArgument; a
  // bind or listen failure (EADDRINUSE, EACCES) is kUnavailable. At most one
  // successful listen() per server, and none after close().
  Status listen(const std::string& address, uint16_t port);
  uint16_t port() const { return port_; }  // the bound port, after listen()
  // Stops listening and closes every connection. Safe to call twice.
  void close();
  HttpStats stats() const;

 private:
  struct Connection;
  static void on_connection(uv_stream_t* listener, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  void refuse_connection(uv_stream_t* listener);
  void sweep();
  void handle_head(Connection& c, std::string_view head);
  HttpResponse call_handler(std::string_view path);
  void respond(Connection& c, const HttpResponse& response, bool head_only,
               std::string_view extra_headers = {});
  void close_connection(Connection& c);

  uv_loop_t* const loop_;
  const HttpHandler handler_;
  const HttpLimits limits_;
  // Heap-owned and freed by their close callbacks (see Lifetime above).
  uv_tcp_t* listener_ = nullptr;
  uv_timer_t* sweep_timer_ = nullptr;
  bool closed_ = false;
  uint16_t port_ = 0;
  std::unordered_set<Connection*> connections_;
  HttpStats stats_;
  LogLimiter error_log_{5, "http handler errors"};
};

}  // namespace coproc::daemon
