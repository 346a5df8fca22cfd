// Anonymous shared memory (memfd) for the segments the daemon hands to
// clients: no name in /dev/shm, so no third process can open it.
#pragma once

#include <cstddef>

#include "coproc/base/result.h"

namespace coproc::daemon {

class SharedMemory {
 public:
  // Creates a memfd of `bytes`, maps it read-write, and binds its pages to
  // `numa_node` (preferred policy) before anything touches them. `debug_name`
  // must be a fixed string ("coproc-client"): it shows in /proc/PID/maps and
  // /proc/PID/fd of every process that holds the segment, so it must carry
  // nothing about a client (no pid, uid or id). It is a label, not a
  // namespace: nobody can open a memfd by its name.
  static Result<SharedMemory> create(const char* debug_name, std::size_t bytes, int numa_node);

  SharedMemory() = default;
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  // Seals the size (no shrink, no grow: a client cannot make the daemon's
  // accesses fault by truncating the file) and the seals themselves
  // (F_SEAL_SEAL: a client cannot add F_SEAL_WRITE or others later). With
  // `read_only_for_others`, also forbids new writable mappings and write(2),
  // so receivers of the fd can map it only read-only (and cannot mprotect it
  // writable) while the daemon's own mapping stays writable. Reads the seals
  // back and fails unless every one asked for is in place. Call it before the
  // fd leaves the daemon.
  Status seal(bool read_only_for_others);

  int fd() const { return fd_; }
  std::byte* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  int fd_ = -1;
  std::byte* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace coproc::daemon
