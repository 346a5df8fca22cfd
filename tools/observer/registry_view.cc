#include "registry_view.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "coproc/hello_io.h"

namespace coproc::observer {

namespace {

constexpr int kHelloTimeoutMs = 5000;
// An observer's hello reply carries one descriptor: the registry (segment.h).
constexpr int kRegistryFdIndex = 0;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

RegistryView::~RegistryView() {
  if (registry_) ::munmap(const_cast<std::byte*>(registry_), registry_bytes_);
}

bool RegistryView::fail(OpenError kind, std::string message) {
  error_kind_ = kind;
  error_ = std::move(message);
  return false;
}

bool RegistryView::open(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return fail(OpenError::kNoDaemon, "socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string message = errno_text("no daemon at " + socket_path);
    if (fd >= 0) ::close(fd);
    return fail(OpenError::kNoDaemon, std::move(message));
  }
  wire::HelloRequest hello{wire::kHelloMagic, wire::kProtocolVersion, wire::HelloKind::kObserver,
                           0};
  wire::HelloReply reply{};
  std::vector<int> fds;
  std::string error;
  bool ok = ::send(fd, &hello, sizeof(hello), MSG_NOSIGNAL) == sizeof(hello);
  if (!ok) error = errno_text("send hello");
  ok = ok && wire::receive_hello_reply(fd, &reply, &fds, kHelloTimeoutMs, &error);
  ::close(fd);  // the daemon reclaims the session; our registry mapping stays valid
  if (ok && (reply.magic != wire::kHelloMagic || reply.status != 0)) {
    reply.message[sizeof(reply.message) - 1] = '\0';
    error = std::string("the daemon refused the hello: ") + reply.message;
    ok = false;
  }
  if (ok && static_cast<int>(fds.size()) <= kRegistryFdIndex) {
    error = "the hello reply carried no registry descriptor";
    ok = false;
  }
  if (ok) {
    void* p =
        ::mmap(nullptr, reply.registry_bytes, PROT_READ, MAP_SHARED, fds[kRegistryFdIndex], 0);
    if (p == MAP_FAILED) {
      error = errno_text("mmap of the registry");
      ok = false;
    } else {
      registry_ = static_cast<const std::byte*>(p);
      registry_bytes_ = reply.registry_bytes;
    }
  }
  for (int f : fds) ::close(f);
  if (!ok) return fail(OpenError::kHelloRefused, std::move(error));

  std::string problem;
  if (!page_.open(registry_, registry_bytes_, &problem)) return fail(OpenError::kBadRegistry, problem);
  return true;
}

}  // namespace coproc::observer
