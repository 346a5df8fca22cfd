// Connecting to coprocd: the hello exchange on the control socket, mapping
// the segments the daemon hands over, and reading the model table.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "client_impl.h"
#include "coproc/coproc_generated.h"
#include "coproc/hello_io.h"
#include "coproc/socket_path.h"

namespace {

using coproc::wire::HelloReply;
using coproc::wire::HelloRequest;

constexpr int kHelloTimeoutMs = 5000;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The uid named by $COPROC_DAEMON_UID, or -1 when it is unset; an unparsable
// value is an error rather than silently no expected uid.
bool env_daemon_uid(int64_t* uid, std::string* message) {
  *uid = -1;
  const char* env = std::getenv("COPROC_DAEMON_UID");
  if (env == nullptr || *env == '\0') return true;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(env, &end, 10);
  if (errno != 0 || *end != '\0' || *env == '-' || v >= UINT32_MAX) {
    *message = std::string("COPROC_DAEMON_UID='") + env + "' is not a uid";
    return false;
  }
  *uid = static_cast<int64_t>(v);
  return true;
}

// Whether `uid` owns the directory holding the socket and only root could
// have put that directory there: its parent belongs to root and no one else
// may write it (as /run, unlike /tmp). Paths are resolved first, so a symlink
// in a shared directory proves nothing.
bool owns_protected_socket_dir(const std::string& socket_path, uid_t uid) {
  const std::size_t slash = socket_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : socket_path.substr(0, slash + 1);
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) return false;
  struct stat d{};
  if (::stat(resolved, &d) != 0 || d.st_uid != uid || (d.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return false;
  }
  std::string parent(resolved);
  const std::size_t cut = parent.rfind('/');
  parent = cut == 0 || cut == std::string::npos ? "/" : parent.substr(0, cut);
  struct stat p{};
  return ::stat(parent.c_str(), &p) == 0 && p.st_uid == 0 && (p.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

// The client's half of mutual authentication: before a byte of ours goes out,
// who is listening? A process of another user that answers at the path (one
// that squatted a shared directory, or a path from a tampered environment)
// would receive every tensor we send, so only root, our own uid, the uid the
// caller names, or the owner of a root-protected socket directory will do.
coproc_status check_daemon_identity(int fd, const std::string& path, int64_t expected_uid,
                                    std::string* message) {
  ucred peer{};
  socklen_t len = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || len != sizeof(peer)) {
    *message = errno_text("SO_PEERCRED on the daemon's socket");
    return COPROC_ERR_CONNECT;
  }
  if (peer.uid == 0 || peer.uid == ::geteuid()) return COPROC_OK;
  if (expected_uid >= 0 && peer.uid == static_cast<uid_t>(expected_uid)) return COPROC_OK;
  if (owns_protected_socket_dir(path, peer.uid)) return COPROC_OK;
  *message = "the process listening at " + path + " (pid " + std::to_string(peer.pid) +
             ") runs as uid " + std::to_string(peer.uid) +
             ", which is not root, this process's uid, the expected daemon uid "
             "(coproc_connect_options.daemon_uid or COPROC_DAEMON_UID), nor the owner of a "
             "socket directory only root can create: nothing was sent to it";
  return COPROC_ERR_PERMISSION_DENIED;
}

void* map_fd(int fd, size_t bytes, int prot) {
  void* p = ::mmap(nullptr, bytes, prot, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

coproc_status coproc_client::connect(const coproc_connect_options& options, coproc_client** out,
                                     std::string* message) {
  std::string path = options.socket_path ? options.socket_path : coproc::wire::default_socket_path();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    *message = "socket path too long: " + path;
    return COPROC_ERR_INVALID_ARGUMENT;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  int64_t expected_uid = options.daemon_uid;
  if (expected_uid < 0 && !env_daemon_uid(&expected_uid, message)) {
    return COPROC_ERR_INVALID_ARGUMENT;
  }

  std::unique_ptr<coproc_client> client(new coproc_client());
  client->spin_ns_ = options.spin_ns;
  client->builder_.ForceDefaults(true);
  client->socket_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client->socket_fd_ < 0) {
    *message = errno_text("socket");
    return COPROC_ERR_CONNECT;
  }
  if (::connect(client->socket_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *message = errno_text(("connect to " + path).c_str()) + " (is coprocd running?)";
    return COPROC_ERR_CONNECT;
  }

  if (coproc_status s = check_daemon_identity(client->socket_fd_, path, expected_uid, message);
      s != COPROC_OK) {
    return s;
  }

  HelloRequest hello{coproc::wire::kHelloMagic, coproc::wire::kProtocolVersion,
                     coproc::wire::HelloKind::kClient, 0};
  // The daemon may refuse a connection as soon as it accepts it (too many waiting for their
  // hello) and hang up before our hello arrives: the send then fails, but its answer is queued
  // in our socket, and that answer, not the failed send, says what happened.
  std::string send_error;
  if (::send(client->socket_fd_, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello)) {
    send_error = errno_text("send hello");
  }
  HelloReply reply{};
  std::vector<int> fds;
  std::string receive_error;
  const bool received = coproc::wire::receive_hello_reply(client->socket_fd_, &reply, &fds,
                                                          kHelloTimeoutMs, &receive_error);
  auto close_fds = [&] {
    for (const int fd : fds) ::close(fd);
  };
  if (!received) {
    close_fds();
    *message = send_error.empty() ? receive_error : send_error;
    return COPROC_ERR_CONNECT;
  }
  if (reply.magic != coproc::wire::kHelloMagic) {
    close_fds();
    *message = "the peer at " + path + " is not coprocd (bad hello magic)";
    return COPROC_ERR_CONNECT;
  }
  if (reply.protocol_version != coproc::wire::kProtocolVersion) {
    close_fds();
    *message = "protocol version mismatch: client speaks " +
               std::to_string(coproc::wire::kProtocolVersion) + ", daemon speaks " +
               std::to_string(reply.protocol_version);
    return COPROC_ERR_VERSION_MISMATCH;
  }
  if (reply.status != 0) {
    close_fds();
    reply.message[sizeof(reply.message) - 1] = '\0';
    *message = std::string("the daemon refused the connection: ") + reply.message;
    return static_cast<coproc_status>(reply.status);
  }
  if (fds.size() != static_cast<std::size_t>(coproc::wire::kHelloFdCount)) {
    close_fds();
    *message = "hello reply carried " + std::to_string(fds.size()) + " descriptors, expected 4";
    return COPROC_ERR_CONNECT;
  }
  client->client_id_ = reply.client_id;
  client->segment_bytes_ = reply.segment_bytes;
  client->registry_bytes_ = reply.registry_bytes;
  coproc_status status = client->map_segments(fds.data(), message);
  close_fds();  // the mappings and the dup'ed eventfd keep what we need
  if (status != COPROC_OK) return status;
  status = client->read_model_table(message);
  if (status != COPROC_OK) return status;
  *out = client.release();
  return COPROC_OK;
}

coproc_status coproc_client::map_segments(const int fds[], std::string* message) {
  using namespace coproc::wire;
  segment_ = map_fd(fds[0], segment_bytes_, PROT_READ | PROT_WRITE);
  registry_ = map_fd(fds[1], registry_bytes_, PROT_READ);
  doorbell_ = map_fd(fds[2], kPageBytes, PROT_READ | PROT_WRITE);
  if (!segment_ || !registry_ || !doorbell_) {
    *message = errno_text("mmap of the daemon's segments");
    return COPROC_ERR_CONNECT;
  }
  event_fd_ = ::dup(fds[3]);
  if (event_fd_ < 0) {
    *message = errno_text("dup eventfd");
    return COPROC_ERR_CONNECT;
  }
  ::fcntl(event_fd_, F_SETFD, FD_CLOEXEC);

  header_ = static_cast<SegmentHeader*>(segment_);
  registry_header_ = static_cast<const RegistryHeader*>(registry_);
  doorbell_page_ = static_cast<Doorbell*>(doorbell_);
  // acquire: pairs with the daemon's release store of layout_version, which
  // it makes after filling in every other field.
  uint32_t seg_version = header_->layout_version.load(std::memory_order_acquire);
  uint32_t reg_version = registry_header_->layout_version.load(std::memory_order_acquire);
  if (header_->magic != kSegmentMagic || seg_version != kSegmentLayoutVersion) {
    *message = "client segment layout " + std::to_string(seg_version) + ", library expects " +
               std::to_string(kSegmentLayoutVersion);
    return COPROC_ERR_VERSION_MISMATCH;
  }
  if (registry_header_->magic != kRegistryMagic || reg_version != kRegistryLayoutVersion) {
    *message = "registry layout " + std::to_string(reg_version) + ", library expects " +
               std::to_string(kRegistryLayoutVersion);
    return COPROC_ERR_VERSION_MISMATCH;
  }

  const auto& sq = header_->submission;
  const auto& cq = header_->completion;
  submissions_ = coproc::ring::RingProducer(static_cast<std::byte*>(segment_) + sq.offset,
                                            {sq.capacity, sq.slot_bytes});
  completions_ = coproc::ring::RingConsumer(static_cast<std::byte*>(segment_) + cq.offset,
                                            {cq.capacity, cq.slot_bytes});
  completion_buffer_.resize(completions_.max_payload());
  arena_ = static_cast<std::byte*>(segment_) + header_->arena_offset;
  arena_bytes_ = header_->arena_bytes;
  allocator_ = std::make_unique<boost::interprocess::managed_external_buffer>(
      boost::interprocess::create_only, arena_, arena_bytes_);

  // The in-flight window never exceeds the completion ring, so the daemon
  // always has a completion slot for every request it accepted from us.
  uint32_t window = cq.capacity;
  pool_.reserve(window);
  free_.reserve(window);
  for (uint32_t i = 0; i < window; ++i) {
    auto request = std::make_unique<coproc_request>();
    request->client = this;
    request->index = i;
    pool_.push_back(std::move(request));
    free_.push_back(window - 1 - i);
  }
  return COPROC_OK;
}

coproc_status coproc_client::read_model_table(std::string* message) {
  using namespace coproc::wire;
  // acquire: pairs with the daemon's release store after writing the table.
  uint64_t bytes = registry_header_->model_table_bytes.load(std::memory_order_acquire);
  uint64_t offset = registry_header_->model_table_offset;
  if (offset > registry_bytes_ || bytes > registry_bytes_ - offset) {
    *message = "registry model table lies outside the registry";
    return COPROC_ERR_INTERNAL;
  }
  const auto* data = static_cast<const uint8_t*>(registry_) + offset;
  flatbuffers::Verifier verifier(data, bytes);
  if (bytes == 0 || !verifier.VerifyBuffer<coproc::fb::ModelTable>(nullptr)) {
    *message = "registry model table failed verification";
    return COPROC_ERR_INTERNAL;
  }
  const auto* table = flatbuffers::GetRoot<coproc::fb::ModelTable>(data);
  if (!table->models()) return COPROC_OK;
  auto copy_infos = [](const auto* list, std::vector<std::string>& names,
                       std::vector<coproc_tensor_info>& infos) {
    if (!list) return;
    names.reserve(list->size());
    for (const auto* t : *list) {
      names.push_back(t->name() ? t->name()->str() : std::string());
      coproc_tensor_info info{};
      info.dtype = static_cast<coproc_dtype>(t->dtype());
      if (t->shape()) {
        info.rank = static_cast<int32_t>(std::min<size_t>(t->shape()->size(), COPROC_MAX_RANK));
        for (int32_t d = 0; d < info.rank; ++d) info.shape[d] = t->shape()->Get(d);
      }
      infos.push_back(info);
    }
    // Names point into `names`, which no longer reallocates.
    for (size_t i = 0; i < infos.size(); ++i) infos[i].name = names[i].c_str();
  };
  for (const auto* m : *table->models()) {
    auto model = std::make_unique<coproc_model>();
    model->client = this;
    model->id = m->id();
    model->name = m->name() ? m->name()->str() : std::string();
    model->max_batch = m->max_batch();
    copy_infos(m->inputs(), model->input_names, model->inputs);
    copy_infos(m->outputs(), model->output_names, model->outputs);
    models_.push_back(std::move(model));
  }
  return COPROC_OK;
}

coproc_client::~coproc_client() {
  allocator_.reset();
  if (segment_) ::munmap(segment_, segment_bytes_);
  if (registry_) ::munmap(const_cast<void*>(registry_), registry_bytes_);
  if (doorbell_) ::munmap(doorbell_, coproc::wire::kPageBytes);
  if (event_fd_ >= 0) ::close(event_fd_);
  if (socket_fd_ >= 0) ::close(socket_fd_);
}

bool coproc_client::daemon_gone() {
  if (gone_.load(std::memory_order_relaxed)) return true;
  // The daemon never writes to the socket after hello, so readable or hung
  // up means it exited (the kernel closed its end).
  pollfd pfd{socket_fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLRDHUP | POLLERR))) {
    gone_.store(true, std::memory_order_relaxed);
  }
  return gone_.load(std::memory_order_relaxed);
}
