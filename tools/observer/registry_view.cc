#include "registry_view.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "coproc/coproc_generated.h"
#include "coproc/hello_io.h"

namespace coproc::observer {

namespace {

constexpr int kHelloTimeoutMs = 5000;
// The hello reply's descriptors: [segment, registry, doorbell, eventfd].
constexpr int kRegistryFdIndex = 1;

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

  const auto& h = header();
  // acquire: pairs with the daemon's release store of layout_version, made
  // after every other header field.
  const uint32_t version = h.layout_version.load(std::memory_order_acquire);
  if (h.magic != wire::kRegistryMagic || version != wire::kRegistryLayoutVersion) {
    return fail(OpenError::kBadRegistry, "registry layout " + std::to_string(version) +
                                             ", this tool reads " +
                                             std::to_string(wire::kRegistryLayoutVersion));
  }
  if (h.stats_stride < sizeof(wire::ModelStats) ||
      h.stats_offset + uint64_t{h.stats_count} * h.stats_stride > registry_bytes_) {
    return fail(OpenError::kBadRegistry, "registry stats page lies outside the registry");
  }
  return read_model_table();
}

bool RegistryView::read_model_table() {
  const auto& h = header();
  // acquire: pairs with the daemon's release store after writing the table.
  const uint64_t bytes = h.model_table_bytes.load(std::memory_order_acquire);
  if (h.model_table_offset > registry_bytes_ || bytes > registry_bytes_ - h.model_table_offset) {
    return fail(OpenError::kBadRegistry, "registry model table lies outside the registry");
  }
  const auto* data = reinterpret_cast<const uint8_t*>(registry_ + h.model_table_offset);
  flatbuffers::Verifier verifier(data, bytes);
  if (bytes == 0 || !verifier.VerifyBuffer<fb::ModelTable>(nullptr)) {
    return fail(OpenError::kBadRegistry, "registry model table failed verification");
  }
  const auto* table = flatbuffers::GetRoot<fb::ModelTable>(data);
  if (table->models()) {
    for (const auto* m : *table->models()) {
      models_.push_back({m->name() ? m->name()->str() : "", m->max_batch()});
    }
  }
  if (models_.empty() || h.stats_count % models_.size() != 0) {
    return fail(OpenError::kBadRegistry, "registry has " + std::to_string(h.stats_count) +
                                             " stats blocks for " + std::to_string(models_.size()) +
                                             " models");
  }
  blocks_per_model_ = h.stats_count / static_cast<uint32_t>(models_.size());
  return true;
}

const wire::ModelStats& RegistryView::block(std::size_t model, uint32_t k) const {
  const uint64_t index = model * blocks_per_model_ + k;
  return *reinterpret_cast<const wire::ModelStats*>(registry_ + header().stats_offset +
                                                    index * header().stats_stride);
}

}  // namespace coproc::observer
