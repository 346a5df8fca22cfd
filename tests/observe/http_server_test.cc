// HttpServer on its own loop thread, driven over real TCP sockets from the
// test thread. Every socket wait has a poll() timeout, so a server that fails
// to answer or to close fails the test instead of hanging it.
#include "control/http/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace coproc::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kIoTimeoutMs = 3000;
const std::string kMetricsBody = "# TYPE coproc_up gauge\ncoproc_up 1\n";
constexpr size_t kHugeBodyBytes = 32u << 20;  // more than loopback socket buffers hold

HttpResponse test_handler(std::string_view path) {
  if (path == "/metrics") return {200, "text/plain; version=0.0.4", kMetricsBody};
  if (path.starts_with("/echo")) return {200, "text/plain", std::string(path)};
  if (path == "/throw") throw std::runtime_error("handler failed");
  if (path == "/huge") return {200, "text/plain", std::string(kHugeBodyBytes, 'x')};
  return {404, "text/plain", "not found\n"};
}

struct ParsedResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "(absent)" : it->second;
  }
};

ParsedResponse parse_response(const std::string& raw) {
  ParsedResponse r;
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  size_t pos = raw.find("\r\n") + 2;
  while (pos < end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    r.headers[name] = line.substr(colon + 2);
    pos = eol + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

// A blocking TCP client whose every wait is bounded.
class Client {
 public:
  explicit Client(uint16_t port, const char* address = "127.0.0.1") {
    const bool v6 = std::string_view(address).find(':') != std::string_view::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (v6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(port);
      ::inet_pton(AF_INET6, address, &a6->sin6_addr);
      len = sizeof(*a6);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
      a4->sin_family = AF_INET;
      a4->sin_port = htons(port);
      ::inet_pton(AF_INET, address, &a4->sin_addr);
      len = sizeof(*a4);
    }
    timeval tv{kIoTimeoutMs / 1000, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));  // bounds connect() too
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
    int one = 1;  // so that each send() is its own segment
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, kIoTimeoutMs) != 1) return false;
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Everything until the server closes (EOF or reset); closed() says whether
  // it did within timeout_ms of the last byte.
  std::string read_until_closed(int timeout_ms = kIoTimeoutMs) {
    std::string out;
    char buf[65536];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) != 1) return out;
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = n == 0 || errno == ECONNRESET;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  bool closed() const { return closed_; }

  ParsedResponse request(std::string_view bytes) {
    EXPECT_TRUE(send(bytes));
    const std::string raw = read_until_closed();
    EXPECT_TRUE(closed()) << "the server did not close after responding";
    return parse_response(raw);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}, const char* address = "127.0.0.1") {
    address_ = address;
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    server_ = std::make_unique<HttpServer>(&loop_, test_handler, limits);
    const Status s = server_->listen(address, 0);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_NE(server_->port(), 0);
    // The only way in from the test thread: close (or destroy) the server on
    // its thread.
    stop_.data = this;
    std::promise<void> done;
    loop_done_ = done.get_future();
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<HttpServerTest*>(a->data);
      if (self->destroy_on_stop_) {
        self->server_.reset();
      } else {
        self->server_->close();
      }
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    thread_ = std::thread([this, done = std::move(done)]() mutable {
      uv_run(&loop_, UV_RUN_DEFAULT);
      done.set_value();
    });
    started_ = true;
  }

  // uv_run returns only once every handle is closed, so its returning and a
  // clean uv_loop_close() prove that close() left nothing open.
  void stop() {
    if (!started_) return;
    started_ = false;
    uv_async_send(&stop_);
    if (loop_done_.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      std::fprintf(stderr, "the loop did not stop within 5 s of close(): a handle is still open\n");
      std::abort();  // the loop thread cannot be joined
    }
    thread_.join();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void TearDown() override { stop(); }

  ParsedResponse get(std::string_view request) {
    Client c(server_->port(), address_);
    EXPECT_TRUE(c.connected());
    return c.request(request);
  }

  const char* address_ = nullptr;

  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::future<void> loop_done_;
  bool started_ = false;
  bool destroy_on_stop_ = false;
};

TEST_F(HttpServerTest, shouldServeMetricsWithContentLength) {
  start();
  const ParsedResponse r = get("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kMetricsBody);
  EXPECT_EQ(r.header("content-length"), std::to_string(kMetricsBody.size()));
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(r.header("connection"), "close");
}

TEST_F(HttpServerTest, shouldAnswerHeadWithTheHeadersOfGetAndNoBody) {
  start();
  const ParsedResponse r = get("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), std::to_string(kMetricsBody.size()));
  EXPECT_EQ(r.body, "");
}

TEST_F(HttpServerTest, shouldPassThePathWithoutItsQueryString) {
  start();
  EXPECT_EQ(get("GET /echo/a?x=1&y=/z HTTP/1.1\r\n\r\n").body, "/echo/a");
}

TEST_F(HttpServerTest, shouldAcceptBareNewlinesAndHttp10) {
  start();
  EXPECT_EQ(get("GET /metrics HTTP/1.0\nHost: x\n\n").status, 200);
}

TEST_F(HttpServerTest, shouldReturnWhatTheHandlerSaysForAnUnknownPath) {
  start();
  const ParsedResponse r = get("GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "not found\n");
}

TEST_F(HttpServerTest, shouldRejectOtherMethodsWith405AndAllow) {
  start();
  const ParsedResponse r = get("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET, HEAD");
}

// A body the server does not want, still arriving after the answer, is
// discarded: the answer arrives whole and the connection still ends.
TEST_F(HttpServerTest, shouldDeliverTheResponseWhileThePeerSendsABodyAfterIt) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send("POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(100));  // the 405 has been written
  ASSERT_TRUE(c.send(std::string(100000, 'x')));
  const ParsedResponse r = parse_response(c.read_until_closed());
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(r.status, 405);
}

TEST_F(HttpServerTest, shouldRejectMalformedHeadsWith400) {
  start();
  const std::vector<std::string> malformed = {
      "GARBAGE\r\n\r\n",
      "\r\n\r\n",
      "GET /metrics\r\n\r\n",
      "GET metrics HTTP/1.1\r\n\r\n",
      "GET http://host/metrics HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/2.0\r\n\r\n",
      "GET  /metrics HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1 \r\n\r\n",
      "G(T /metrics HTTP/1.1\r\n\r\n",
      "GET /met\rrics HTTP/1.1\r\n\r\n",
      "GET /met\x01rics HTTP/1.1\r\n\r\n",
      "GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n",
      std::string("GET /metrics HTTP/1.1\r\nA: \0\r\n\r\n", 31),
  };
  for (const std::string& request : malformed) {
    SCOPED_TRACE(testing::PrintToString(request));
    EXPECT_EQ(get(request).status, 400);
  }
}

TEST_F(HttpServerTest, shouldServeAHeadOfExactlyTheLimitAndReject431OneByteOver) {
  const uint32_t limit = 256;
  start(HttpLimits{.max_request_bytes = limit});
  const std::string prefix = "GET /metrics HTTP/1.1\r\nX-Pad: ";
  const std::string at_limit = prefix + std::string(limit - prefix.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), limit);
  EXPECT_EQ(get(at_limit).status, 200);
  const std::string over = prefix + std::string(limit - prefix.size() - 3, 'a') + "\r\n\r\n";
  EXPECT_EQ(get(over).status, 431);
  EXPECT_EQ(get(prefix + std::string(100000, 'a')).status, 431);
}

TEST_F(HttpServerTest, shouldServeARequestSentOneByteAtATime) {
  start();
  Client c(server_->port());
  for (char ch : std::string("GET /echo?q HTTP/1.1\r\nHost: x\r\n\r\n")) {
    ASSERT_TRUE(c.send(std::string_view(&ch, 1)));
    std::this_thread::sleep_for(milliseconds(1));
  }
  const ParsedResponse r = parse_response(c.read_until_closed());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/echo");
}

TEST_F(HttpServerTest, shouldCloseAStalledRequestWith408AfterTheTimeout) {
  start(HttpLimits{.request_timeout_ms = 200});
  const auto connected = Clock::now();
  Client c(server_->port());
  ASSERT_TRUE(c.send("GET /metr"));
  const ParsedResponse r = parse_response(c.read_until_closed());
  const auto waited = Clock::now() - connected;
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(r.status, 408);
  // The loop's clock counts whole milliseconds, so the deadline may pass a
  // little early by this one.
  EXPECT_GE(waited, milliseconds(195));
  EXPECT_LT(waited, milliseconds(1000));
  stop();
  EXPECT_EQ(server_->stats().request_timeouts, 1u);
}

TEST_F(HttpServerTest, shouldDropAResponseThePeerDoesNotReadAfterTheTimeout) {
  start(HttpLimits{.request_timeout_ms = 200});
  Client c(server_->port());
  ASSERT_TRUE(c.send("GET /huge HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(800));
  const std::string raw = c.read_until_closed();
  EXPECT_TRUE(c.closed());
  EXPECT_LT(raw.size(), kHugeBodyBytes);
  stop();
  EXPECT_EQ(server_->stats().stalled_responses, 1u);
  EXPECT_EQ(server_->stats().open_connections, 0u);
}

TEST_F(HttpServerTest, shouldRefuseConnectionsOverTheLimitWhileServingTheOthers) {
  const uint32_t max = 3;
  start(HttpLimits{.max_connections = max});
  std::vector<std::unique_ptr<Client>> held;
  for (uint32_t i = 0; i < max; ++i) held.push_back(std::make_unique<Client>(server_->port()));
  const auto connected = Clock::now();
  Client extra(server_->port());
  const ParsedResponse refused = parse_response(extra.read_until_closed());
  EXPECT_TRUE(extra.closed());
  EXPECT_LT(Clock::now() - connected, milliseconds(1000));  // not the 5 s request timeout
  EXPECT_EQ(refused.status, 503);
  for (auto& c : held) EXPECT_EQ(c->request("GET /metrics HTTP/1.1\r\n\r\n").status, 200);
  held.clear();
  // The slots come back once the server has seen those peers close.
  const auto deadline = Clock::now() + milliseconds(kIoTimeoutMs);
  int status = get("GET /metrics HTTP/1.1\r\n\r\n").status;
  while (status != 200 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
    status = get("GET /metrics HTTP/1.1\r\n\r\n").status;
  }
  EXPECT_EQ(status, 200);
  stop();
  EXPECT_GE(server_->stats().refused_connections, 1u);
}

TEST_F(HttpServerTest, shouldAnswer500WhenTheHandlerThrowsAndKeepServing) {
  start();
  EXPECT_EQ(get("GET /throw HTTP/1.1\r\n\r\n").status, 500);
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\n\r\n").status, 200);
  stop();
  EXPECT_EQ(server_->stats().handler_errors, 1u);
}

TEST_F(HttpServerTest, shouldCloseOpenConnectionsOnClose) {
  start(HttpLimits{.request_timeout_ms = 60000});
  Client idle(server_->port());
  Client partial(server_->port());
  ASSERT_TRUE(partial.send("GET /metrics HTTP/1.1\r\n"));
  Client unread(server_->port());
  ASSERT_TRUE(unread.send("GET /huge HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(100));  // the server is now writing /huge
  stop();
  for (Client* c : {&idle, &partial}) {
    c->read_until_closed();
    EXPECT_TRUE(c->closed());
  }
  EXPECT_EQ(server_->stats().open_connections, 0u);
  server_->close();  // twice is harmless
}

// The handles' memory belongs to their close callbacks, not to the server:
// destroying it with a write in flight must neither leak nor touch freed memory
// (run under ASan).
TEST_F(HttpServerTest, shouldFreeEverythingWhenDestroyedWithConnectionsOpen) {
  start(HttpLimits{.request_timeout_ms = 60000});
  Client partial(server_->port());
  ASSERT_TRUE(partial.send("GET /metrics HTTP/1.1\r\n"));
  Client unread(server_->port());
  ASSERT_TRUE(unread.send("GET /huge HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(100));
  destroy_on_stop_ = true;
  stop();
  partial.read_until_closed();
  EXPECT_TRUE(partial.closed());
}

// http.listen documents "[::1]:PORT": a machine without an IPv6 loopback fails here (start()
// asserts the listen) rather than skipping it.
TEST_F(HttpServerTest, shouldServeOnIpv6Loopback) {
  start({}, "::1");
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\n\r\n").status, 200);
}

TEST(HttpServerListenTest, shouldRefuseAnAddressThatIsNotALiteral) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    HttpServer server(&loop, test_handler);
    for (const char* address : {"localhost", "", "127.0.0.256", "[::1]", "1.2.3.4:80"}) {
      const Status s = server.listen(address, 9100);
      ASSERT_FALSE(s.ok()) << address;
      EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(s.error().message.find(address), std::string::npos) << s.error().message;
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(HttpServerListenTest, shouldReportAPortInUseWithTheAddressAndPort) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    HttpServer first(&loop, test_handler);
    ASSERT_TRUE(first.listen("127.0.0.1", 0).ok());
    HttpServer second(&loop, test_handler);
    const Status s = second.listen("127.0.0.1", first.port());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
    const std::string where = "127.0.0.1:" + std::to_string(first.port());
    EXPECT_NE(s.error().message.find(where), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(uv_strerror(UV_EADDRINUSE)), std::string::npos)
        << s.error().message;
  }
  // The servers are gone; their handles are freed by the close callbacks.
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace coproc::daemon
