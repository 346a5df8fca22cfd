#include "soak_watch.h"

#include <dirent.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>

#include "coproc/coproc_generated.h"

namespace coproc::bench {

namespace {

constexpr int kHelloTimeoutMs = 5000;
// The hello reply's descriptors: [segment, registry, doorbell, eventfd].
constexpr int kRegistryFdIndex = 1;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Receives the whole reply and the descriptors that came with it.
bool receive_reply(int fd, wire::HelloReply* reply, std::vector<int>* fds, std::string* error) {
  auto* out = reinterpret_cast<char*>(reply);
  std::size_t got = 0;
  while (got < sizeof(*reply)) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, kHelloTimeoutMs) <= 0) {
      *error = "no hello reply from the daemon within 5 s";
      return false;
    }
    iovec iov{out + got, sizeof(*reply) - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * wire::kHelloFdCount)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n == 0 ? "the daemon closed the connection during hello" : errno_text("recvmsg");
      return false;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
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

// "VmRSS:    26460 kB" -> 26460 for key "VmRSS:".
int64_t status_kb(std::string_view line, std::string_view key) {
  if (line.substr(0, key.size()) != key) return -1;
  return std::strtoll(std::string(line.substr(key.size())).c_str(), nullptr, 10);
}

int64_t count_entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return -1;
  int64_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return -1;
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

}  // namespace

uint64_t ModelBooks::completed_total() const {
  uint64_t sum = 0;
  for (uint64_t c : completed) sum += c;
  return sum;
}

ModelBooks ModelBooks::since(const ModelBooks& e) const {
  ModelBooks d = *this;
  d.accepted -= e.accepted;
  d.rejected_queue_full -= e.rejected_queue_full;
  d.rejected_invalid -= e.rejected_invalid;
  for (uint32_t s = 0; s < wire::kStatusCount; ++s) d.completed[s] -= e.completed[s];
  d.expired -= e.expired;
  d.cancelled -= e.cancelled;
  d.dropped_client_gone -= e.dropped_client_gone;
  return d;  // queued is a gauge: the later reading's
}

DaemonWatch::~DaemonWatch() {
  if (registry_) ::munmap(const_cast<std::byte*>(registry_), registry_bytes_);
}

bool DaemonWatch::open(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    error_ = "socket path too long: " + socket_path;
    return false;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    error_ = errno_text(("connect to " + socket_path).c_str());
    if (fd >= 0) ::close(fd);
    return false;
  }
  // The daemon treats an observer like a client today (it makes a segment we
  // never map); the kind says what we are for when it tells them apart.
  wire::HelloRequest hello{wire::kHelloMagic, wire::kProtocolVersion, wire::HelloKind::kObserver,
                           0};
  wire::HelloReply reply{};
  std::vector<int> fds;
  bool ok = ::send(fd, &hello, sizeof(hello), MSG_NOSIGNAL) == sizeof(hello);
  if (!ok) error_ = errno_text("send hello");
  ok = ok && receive_reply(fd, &reply, &fds, &error_);
  ::close(fd);  // the daemon reclaims the session; our registry mapping stays valid
  if (ok && (reply.magic != wire::kHelloMagic || reply.status != 0)) {
    reply.message[sizeof(reply.message) - 1] = '\0';
    error_ = std::string("the daemon refused the hello: ") + reply.message;
    ok = false;
  }
  if (ok && static_cast<int>(fds.size()) <= kRegistryFdIndex) {
    error_ = "the hello reply carried no registry descriptor";
    ok = false;
  }
  if (ok) {
    void* p =
        ::mmap(nullptr, reply.registry_bytes, PROT_READ, MAP_SHARED, fds[kRegistryFdIndex], 0);
    if (p == MAP_FAILED) {
      error_ = errno_text("mmap of the registry");
      ok = false;
    } else {
      registry_ = static_cast<const std::byte*>(p);
      registry_bytes_ = reply.registry_bytes;
    }
  }
  for (int f : fds) ::close(f);
  if (!ok) return false;

  const auto& h = *reinterpret_cast<const wire::RegistryHeader*>(registry_);
  // acquire: pairs with the daemon's release store of layout_version, made
  // after every other header field.
  const uint32_t version = h.layout_version.load(std::memory_order_acquire);
  if (h.magic != wire::kRegistryMagic || version != wire::kRegistryLayoutVersion) {
    error_ = "registry layout " + std::to_string(version) + ", coproc-bench expects " +
             std::to_string(wire::kRegistryLayoutVersion);
    return false;
  }
  if (h.stats_stride < sizeof(wire::ModelStats) ||
      h.stats_offset + uint64_t{h.stats_count} * h.stats_stride > registry_bytes_) {
    error_ = "registry stats page lies outside the registry";
    return false;
  }
  pid_ = h.daemon_pid;
  return read_model_names();
}

bool DaemonWatch::read_model_names() {
  const auto& h = *reinterpret_cast<const wire::RegistryHeader*>(registry_);
  // acquire: pairs with the daemon's release store after writing the table.
  const uint64_t bytes = h.model_table_bytes.load(std::memory_order_acquire);
  if (h.model_table_offset > registry_bytes_ || bytes > registry_bytes_ - h.model_table_offset) {
    error_ = "registry model table lies outside the registry";
    return false;
  }
  const auto* data = reinterpret_cast<const uint8_t*>(registry_ + h.model_table_offset);
  flatbuffers::Verifier verifier(data, bytes);
  if (bytes == 0 || !verifier.VerifyBuffer<fb::ModelTable>(nullptr)) {
    error_ = "registry model table failed verification";
    return false;
  }
  const auto* table = flatbuffers::GetRoot<fb::ModelTable>(data);
  if (table->models()) {
    for (const auto* m : *table->models())
      model_names_.push_back(m->name() ? m->name()->str() : "");
  }
  // segment.h says one ModelStats per model, but coprocd writes one per
  // writing thread per model (daemon/src/batcher.h kStatsWriters: poller,
  // worker), model after model; a model's books are the sum of its blocks.
  // Taking the block count from the two numbers reads either layout.
  if (model_names_.empty() || h.stats_count % model_names_.size() != 0) {
    error_ = fmt::format("registry has {} stats blocks for {} models", h.stats_count,
                         model_names_.size());
    return false;
  }
  blocks_per_model_ = h.stats_count / static_cast<uint32_t>(model_names_.size());
  return true;
}

std::vector<ModelBooks> DaemonWatch::books() const {
  std::vector<ModelBooks> all;
  if (!registry_) return all;
  const auto& h = *reinterpret_cast<const wire::RegistryHeader*>(registry_);
  // relaxed: each counter is one atomic (never torn); see ModelBooks.
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (std::size_t m = 0; m < model_names_.size(); ++m) {
    ModelBooks b;
    b.name = model_names_[m];
    for (uint32_t k = 0; k < blocks_per_model_; ++k) {
      const uint64_t block = m * blocks_per_model_ + k;
      const auto& s = *reinterpret_cast<const wire::ModelStats*>(registry_ + h.stats_offset +
                                                                 block * h.stats_stride);
      b.accepted += get(s.accepted);
      b.rejected_queue_full += get(s.rejected_queue_full);
      b.rejected_invalid += get(s.rejected_invalid);
      for (uint32_t st = 0; st < wire::kStatusCount; ++st) b.completed[st] += get(s.completed[st]);
      b.expired += get(s.expired);
      b.cancelled += get(s.cancelled);
      b.dropped_client_gone += get(s.dropped_client_gone);
      for (const auto& q : s.queue_depth) b.queued += get(q);
    }
    all.push_back(std::move(b));
  }
  return all;
}

ProcSample DaemonWatch::sample() const {
  ProcSample p;
  const std::string dir = "/proc/" + std::to_string(pid_);
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("State:", 0) == 0) {
      // "State:\tS (sleeping)". Z (zombie) and X (dead): the daemon is gone
      // even though /proc still lists it.
      const std::size_t at = line.find_first_not_of(" \t", sizeof("State:") - 1);
      p.alive = at != std::string::npos && line[at] != 'Z' && line[at] != 'X';
    }
    if (int64_t v = status_kb(line, "VmRSS:"); v >= 0) p.rss_kb = v;
    if (int64_t v = status_kb(line, "RssAnon:"); v >= 0) p.rss_anon_kb = v;
    if (int64_t v = status_kb(line, "RssFile:"); v >= 0) p.rss_file_kb = v;
    if (int64_t v = status_kb(line, "RssShmem:"); v >= 0) p.rss_shmem_kb = v;
  }
  p.fds = count_entries(dir + "/fd");
  p.maps = count_lines(dir + "/maps");
  return p;
}

}  // namespace coproc::bench
