// Reading the daemon's HelloReply (segment.h) off the control socket, for every process that says
// hello: libcoproc's clients and the tools' observers.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "coproc/segment.h"

namespace coproc::wire {

// Receives exactly sizeof(*reply) bytes, waiting at most timeout_ms for each read, and appends
// every descriptor that came with them (SCM_RIGHTS) to *fds; the caller owns (and closes) them,
// whether this succeeds or not. On failure *error says why: no reply in time, the connection
// closed, or recvmsg's errno.
inline bool receive_hello_reply(int fd, HelloReply* reply, std::vector<int>* fds, int timeout_ms,
                                std::string* error) {
  auto* out = reinterpret_cast<char*>(reply);
  std::size_t got = 0;
  while (got < sizeof(*reply)) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) {
      *error = "no hello reply from the daemon within " + std::to_string(timeout_ms / 1000) + " s";
      return false;
    }
    iovec iov{out + got, sizeof(*reply) - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kHelloFdCount)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n == 0 ? "the daemon closed the connection during hello"
                      : std::string("recvmsg: ") + std::strerror(errno);
      return false;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds->push_back(received);
      }
    }
    got += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace coproc::wire
