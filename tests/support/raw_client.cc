#include "raw_client.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "coproc/coproc_generated.h"
#include "coproc/ring/wait.h"

namespace coproc::test {

RawClient::RawClient(const std::string& socket_path, uint32_t protocol_version) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  reply_.status = -1;
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
  wire::HelloRequest hello{wire::kHelloMagic, protocol_version, wire::HelloKind::kClient, 0};
  if (::send(fd_, &hello, sizeof(hello), 0) != sizeof(hello)) return;
  pollfd pfd{fd_, POLLIN, 0};
  if (::poll(&pfd, 1, 5000) != 1) return;
  iovec iov{&reply_, sizeof(reply_)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds_))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (::recvmsg(fd_, &msg, MSG_WAITALL) != sizeof(reply_) || reply_.status != 0) return;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) return;
  std::memcpy(fds_, CMSG_DATA(cm), sizeof(fds_));
  segment_bytes_ = reply_.segment_bytes;
  registry_bytes_ = reply_.registry_bytes;
  segment_ = ::mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fds_[0], 0);
  registry_ = ::mmap(nullptr, registry_bytes_, PROT_READ, MAP_SHARED, fds_[1], 0);
  doorbell_ = ::mmap(nullptr, wire::kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds_[2], 0);
  auto* h = static_cast<wire::SegmentHeader*>(segment_);
  auto* base = static_cast<std::byte*>(segment_);
  submissions_ = ring::RingProducer(base + h->submission.offset,
                                    {h->submission.capacity, h->submission.slot_bytes});
  completions_ = ring::RingConsumer(base + h->completion.offset,
                                    {h->completion.capacity, h->completion.slot_bytes});
  arena_ = base + h->arena_offset;
  arena_bytes_ = h->arena_bytes;
}

RawClient::~RawClient() {
  if (segment_) ::munmap(segment_, segment_bytes_);
  if (registry_) ::munmap(const_cast<void*>(registry_), registry_bytes_);
  if (doorbell_) ::munmap(doorbell_, wire::kPageBytes);
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::push(std::span<const uint8_t> bytes) {
  if (!submissions_.try_push(bytes.data(), static_cast<uint32_t>(bytes.size()))) return false;
  auto* registry = static_cast<const wire::RegistryHeader*>(registry_);
  ring::notify(static_cast<wire::Doorbell*>(doorbell_)->seq, registry->poller_sleepers);
  return true;
}

void RawClient::scribble_submission_tail(uint64_t value) {
  auto* h = static_cast<wire::SegmentHeader*>(segment_);
  auto* tail = reinterpret_cast<std::atomic<uint64_t>*>(
      static_cast<std::byte*>(segment_) + h->submission.offset + ring::detail::kTailOffsetBytes);
  tail->store(value, std::memory_order_release);
  auto* registry = static_cast<const wire::RegistryHeader*>(registry_);
  ring::notify(static_cast<wire::Doorbell*>(doorbell_)->seq, registry->poller_sleepers);
}

bool RawClient::closed_by_daemon(int timeout_ms) {
  pollfd pfd{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&pfd, 1, timeout_ms) != 1) return false;
  char byte;
  return ::recv(fd_, &byte, 1, MSG_DONTWAIT) == 0;
}

std::optional<RawCompletion> RawClient::next_completion(int timeout_ms) {
  std::vector<std::byte> buffer(completions_.max_payload());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    uint32_t bytes = 0;
    if (completions_.try_pop(buffer, &bytes) == ring::RingConsumer::Pop::kOk) {
      const auto* c = flatbuffers::GetRoot<fb::Completion>(buffer.data());
      return RawCompletion{c->id(), static_cast<int>(c->status()),
                           c->message() ? c->message()->str() : ""};
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return std::nullopt;
}

int connect_silently(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::vector<uint8_t> make_request(uint64_t id, uint32_t model_id, uint64_t in_offset,
                                  uint64_t in_bytes, std::vector<int64_t> in_shape,
                                  uint64_t out_offset, uint64_t out_bytes, uint8_t dtype,
                                  uint8_t kind) {
  flatbuffers::FlatBufferBuilder fbb;
  auto in = fb::CreateTensorRef(fbb, 0, static_cast<fb::DType>(dtype), fbb.CreateVector(in_shape),
                                in_offset, in_bytes);
  std::vector<int64_t> no_shape;
  auto out = fb::CreateTensorRef(fbb, 0, static_cast<fb::DType>(dtype), fbb.CreateVector(no_shape),
                                 out_offset, out_bytes);
  std::vector<flatbuffers::Offset<fb::TensorRef>> ins{in}, outs{out};
  fbb.Finish(fb::CreateRequest(fbb, id, static_cast<fb::RequestKind>(kind), model_id,
                               fb::Priority::Normal, 0, fbb.CreateVector(ins),
                               fbb.CreateVector(outs)));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

}  // namespace coproc::test
