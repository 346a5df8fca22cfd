#include "ingest/shm.h"

#include <fcntl.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace coproc::daemon {

namespace {
Error errno_error(const std::string& what) {
  return make_error(ErrorCode::kResourceExhausted, what + ": " + std::strerror(errno));
}
}  // namespace

Result<SharedMemory> SharedMemory::create(const char* debug_name, std::size_t bytes,
                                          int numa_node) {
  SharedMemory shm;
  shm.fd_ = ::memfd_create(debug_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (shm.fd_ < 0) return errno_error("memfd_create");
  if (::ftruncate(shm.fd_, static_cast<off_t>(bytes)) != 0) return errno_error("ftruncate");
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, shm.fd_, 0);
  if (p == MAP_FAILED) return errno_error("mmap");
  shm.data_ = static_cast<std::byte*>(p);
  shm.bytes_ = bytes;
  if (numa_node >= 0) {
    // Preferred, not bound: a full node degrades to remote memory instead of
    // failing a client's connect. Pages are placed at first touch.
    unsigned long mask[16] = {};
    mask[numa_node / 64] = 1ul << (numa_node % 64);
    ::mbind(p, bytes, MPOL_PREFERRED, mask, sizeof(mask) * 8, 0);
  }
  return shm;
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    this->~SharedMemory();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  if (data_) ::munmap(data_, bytes_);
  if (fd_ >= 0) ::close(fd_);
}

Status SharedMemory::seal(bool read_only_for_others) {
  int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  if (read_only_for_others) seals |= F_SEAL_FUTURE_WRITE;
  if (::fcntl(fd_, F_ADD_SEALS, seals) != 0) {
    return make_error(ErrorCode::kInternal, std::string("F_ADD_SEALS: ") + std::strerror(errno));
  }
  // The fd is about to be handed to a process we do not trust: check rather
  // than assume.
  const int in_place = ::fcntl(fd_, F_GET_SEALS);
  if (in_place < 0 || (in_place & seals) != seals) {
    return make_error(ErrorCode::kInternal,
                      "memfd seals " + std::to_string(in_place) + " lack " + std::to_string(seals));
  }
  return {};
}

}  // namespace coproc::daemon
