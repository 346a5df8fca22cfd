// Hostile and foreign clients (docs/threat-model.md): who may connect, what a
// client can do to the memory it is handed, and the per-client limits.
//
// The access-control tests connect as a second user (peer_user.h): they need
// root. The other suites run as anyone.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coproc/ring/spsc_ring.h"
#include "coproc/ring/wait.h"
#include "coproc/segment.h"
#include "support/daemon_process.h"
#include "support/peer_user.h"
#include "support/raw_client.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// A supplementary group no user has: only the child that sets it carries it.
constexpr gid_t kSupplementaryGid = 4242;
constexpr gid_t kUnrelatedGid = 4243;

// Waits (up to 5 s) until the daemon's log contains `text`.
bool log_shows(DaemonProcess& daemon, const std::string& text) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (daemon.log().find(text) == std::string::npos) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// One noop inference on a connected client; 0 when its output is its input.
int one_noop_inference(coproc_client* c) {
  coproc_model* noop = nullptr;
  if (coproc_model_find(c, "noop", &noop) != COPROC_OK) return 1;
  coproc_tensor in = arena_tensor(c, {1, 16});
  coproc_tensor out = arena_tensor(c, {1, 16});
  if (in.data == nullptr || out.data == nullptr) return 2;
  for (int k = 0; k < 16; ++k) static_cast<float*>(in.data)[k] = static_cast<float>(k);
  if (coproc_infer(c, noop, &in, 1, &out, 1, 5'000'000'000) != COPROC_OK) return 3;
  return std::memcmp(in.data, out.data, 64) == 0 ? 0 : 4;
}

// ------------------------------------------------------------------ a second user

struct Attempt {
  int exit_code = -1;
  int status = -1;  // coproc_connect's coproc_status
  pid_t pid = 0;    // the child's, to find in the daemon's log
  std::string message;
};

// Connects from a child process running as uid:gid with exactly `groups` as
// its supplementary groups and, once connected, runs one noop inference.
Attempt connect_as(const std::string& socket, uid_t uid, gid_t gid, std::vector<gid_t> groups) {
  int report[2];
  if (::pipe(report) != 0) return {};
  const int code = run_in_child([&] {
    ::close(report[0]);
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      return 100;
    }
    ClientHandle client(socket);
    std::string text = std::to_string(::getpid()) + "\n" + std::to_string(client.status) + "\n";
    if (client.status != COPROC_OK) text += coproc_last_error();
    const int result = client.status == COPROC_OK ? one_noop_inference(client.c) : 0;
    [[maybe_unused]] ssize_t n = ::write(report[1], text.data(), text.size());
    return result;
  });
  ::close(report[1]);
  std::string text;
  char buffer[512];
  for (ssize_t n; (n = ::read(report[0], buffer, sizeof(buffer))) > 0;) text.append(buffer, n);
  ::close(report[0]);
  Attempt attempt;
  attempt.exit_code = code;
  const size_t first = text.find('\n');
  const size_t second = first == std::string::npos ? first : text.find('\n', first + 1);
  if (second == std::string::npos) return attempt;
  attempt.pid = std::stoi(text.substr(0, first));
  attempt.status = std::stoi(text.substr(first + 1, second - first - 1));
  attempt.message = text.substr(second + 1);
  return attempt;
}

class Security : public PeerUserTest {};

TEST_F(Security, shouldRefusePeerNotInTheAllowListWithPermissionDeniedAndLogIt) {
  auto args = standard_models();
  args.insert(args.end(), {"--socket-mode", "0666"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  open_socket_directory(daemon.socket_path());

  const Attempt attempt = connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {});

  EXPECT_EQ(attempt.exit_code, 0);
  EXPECT_EQ(attempt.status, COPROC_ERR_PERMISSION_DENIED) << attempt.message;
  const std::string ids =
      "uid " + std::to_string(peer_.uid) + " (gid " + std::to_string(peer_.gid) + ")";
  EXPECT_THAT(attempt.message,
              HasSubstr("permission denied: " + ids +
                        " is not in security.allowed_uids or security.allowed_gids"));
  EXPECT_TRUE(log_shows(daemon, "refused client (pid " + std::to_string(attempt.pid) + ", uid " +
                                    std::to_string(peer_.uid) + ", gid " +
                                    std::to_string(peer_.gid) + "): permission denied"))
      << daemon.log();
  // The daemon's own uid (root here) is still served.
  ClientHandle root(daemon.socket_path());
  ASSERT_EQ(root.status, COPROC_OK) << coproc_last_error();
  EXPECT_EQ(one_noop_inference(root.c), 0);
}

TEST_F(Security, shouldAcceptPeerWhoseUidIsAllowed) {
  auto args = standard_models();
  args.insert(args.end(),
              {"--socket-mode", "0666", "--allowed-uids", "12345," + std::to_string(peer_.uid)});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  open_socket_directory(daemon.socket_path());

  const Attempt attempt = connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {});

  EXPECT_EQ(attempt.status, COPROC_OK) << attempt.message;
  EXPECT_EQ(attempt.exit_code, 0) << "the peer's inference failed";
}

TEST_F(Security, shouldAcceptPeerWhosePrimaryGroupIsAllowed) {
  auto args = standard_models();
  args.insert(args.end(), {"--socket-mode", "0666", "--allowed-gids", std::to_string(peer_.gid)});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  open_socket_directory(daemon.socket_path());

  const Attempt attempt = connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {});

  EXPECT_EQ(attempt.status, COPROC_OK) << attempt.message;
  EXPECT_EQ(attempt.exit_code, 0) << "the peer's inference failed";
}

TEST_F(Security, shouldAcceptPeerBySupplementaryGroupAndOnlyWhileItHasIt) {
  auto args = standard_models();
  args.insert(args.end(),
              {"--socket-mode", "0666", "--allowed-gids", std::to_string(kSupplementaryGid)});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  open_socket_directory(daemon.socket_path());

  const Attempt with_group =
      connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {kSupplementaryGid});
  const Attempt without = connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {});

  EXPECT_EQ(with_group.status, COPROC_OK) << with_group.message;
  EXPECT_EQ(with_group.exit_code, 0) << "the peer's inference failed";
  EXPECT_EQ(without.status, COPROC_ERR_PERMISSION_DENIED) << without.message;
}

TEST_F(Security, shouldKeepTheSocketClosedToOtherUsersByDefault) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  open_socket_directory(daemon.socket_path());
  struct stat st {};
  ASSERT_EQ(::stat(daemon.socket_path().c_str(), &st), 0);

  const Attempt attempt = connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {});

  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, ::getegid());
  // The file mode stops the peer at connect(), before any hello.
  EXPECT_EQ(attempt.status, COPROC_ERR_CONNECT) << attempt.message;
  EXPECT_THAT(attempt.message, HasSubstr("Permission denied"));
}

TEST_F(Security, shouldGiveTheSocketTheConfiguredGroupSoThatGroupReachesIt) {
  auto args = standard_models();
  args.insert(args.end(), {"--socket-group", peer_.group, "--socket-mode", "0660", "--allowed-gids",
                           std::to_string(peer_.gid)});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  open_socket_directory(daemon.socket_path());
  struct stat st {};
  ASSERT_EQ(::stat(daemon.socket_path().c_str(), &st), 0);

  const Attempt member = connect_as(daemon.socket_path(), peer_.uid, peer_.gid, {});
  const Attempt outsider = connect_as(daemon.socket_path(), peer_.uid, kUnrelatedGid, {});

  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, peer_.gid);
  EXPECT_EQ(member.status, COPROC_OK) << member.message;
  EXPECT_EQ(member.exit_code, 0) << "the peer's inference failed";
  EXPECT_EQ(outsider.status, COPROC_ERR_CONNECT) << outsider.message;
}

TEST_F(Security, shouldRefuseToStartInASocketDirectoryAnotherUserOwns) {
  char tmpl[] = "/tmp/coproc-sec-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(::chown(dir.c_str(), peer_.uid, peer_.gid), 0) << std::strerror(errno);
  auto args = standard_models();
  args.insert(args.end(), {"--socket", dir + "/coprocd.sock"});

  DaemonProcess daemon(args);
  const int status = daemon.wait_exit(30000);

  std::filesystem::remove_all(dir);
  EXPECT_FALSE(daemon.started());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("socket directory " + dir + " belongs to uid " +
                                      std::to_string(peer_.uid)));
}

// ------------------------------------------------------------------ the memory a client gets

// The hello by hand, keeping every descriptor the daemon sends.
struct RawHello {
  wire::HelloReply reply{};
  int socket = -1;
  std::vector<int> fds;

  explicit RawHello(const std::string& path) {
    socket = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    reply.status = -1;
    if (::connect(socket, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    wire::HelloRequest hello{wire::kHelloMagic, wire::kProtocolVersion, wire::HelloKind::kClient,
                             0};
    if (::send(socket, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello)) return;
    iovec iov{&reply, sizeof(reply)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * wire::kHelloFdCount)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    pollfd pfd{socket, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) != 1 || ::recvmsg(socket, &msg, MSG_WAITALL) != sizeof(reply)) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(fd);
      }
    }
  }
  ~RawHello() {
    for (int fd : fds) ::close(fd);
    if (socket >= 0) ::close(socket);
  }
  RawHello(const RawHello&) = delete;
  RawHello& operator=(const RawHello&) = delete;

  bool ok() const { return reply.status == 0 && fds.size() == wire::kHelloFdCount; }
  int segment() const { return fds[0]; }
  int registry() const { return fds[1]; }
  int doorbell() const { return fds[2]; }

  bool closed_by_daemon(int timeout_ms) const {
    pollfd pfd{socket, POLLIN | POLLRDHUP, 0};
    if (::poll(&pfd, 1, timeout_ms) != 1) return false;
    char byte;
    return ::recv(socket, &byte, 1, MSG_DONTWAIT) == 0;
  }
};

std::string fd_target(int fd) {
  char target[256] = {};
  const ssize_t n =
      ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

constexpr int kSizeSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

TEST(SegmentSealing, shouldNotLetAClientResizeItsSegmentOrAddSeals) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawHello hello(daemon.socket_path());
  ASSERT_TRUE(hello.ok()) << hello.reply.message;
  const int segment = hello.segment();
  const auto bytes = static_cast<off_t>(hello.reply.segment_bytes);

  EXPECT_EQ(::fcntl(segment, F_GET_SEALS) & kSizeSeals, kSizeSeals);
  errno = 0;
  EXPECT_EQ(::ftruncate(segment, 0), -1);
  EXPECT_EQ(errno, EPERM) << "shrinking the segment would make the daemon's reads fault";
  errno = 0;
  EXPECT_EQ(::ftruncate(segment, bytes / 2), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::ftruncate(segment, bytes * 2), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::fallocate(segment, 0, bytes, 4096), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::fcntl(segment, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
  EXPECT_EQ(errno, EPERM) << "a client must not be able to stop the daemon writing results";
  struct stat st {};
  ASSERT_EQ(::fstat(segment, &st), 0);
  EXPECT_EQ(st.st_size, bytes);

  // Nothing of it reached the daemon: it still serves everyone.
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  EXPECT_EQ(one_noop_inference(client.c), 0);
  EXPECT_EQ(daemon.wait_exit(0), -1) << "daemon died: " << daemon.log();
}

TEST(SegmentSealing, shouldHandOutTheRegistryReadOnlyAndTheDoorbellAtFixedSize) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawHello hello(daemon.socket_path());
  ASSERT_TRUE(hello.ok()) << hello.reply.message;
  const size_t registry_bytes = hello.reply.registry_bytes;

  EXPECT_EQ(::fcntl(hello.registry(), F_GET_SEALS) & (kSizeSeals | F_SEAL_FUTURE_WRITE),
            kSizeSeals | F_SEAL_FUTURE_WRITE);
  errno = 0;
  EXPECT_EQ(
      ::mmap(nullptr, registry_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, hello.registry(), 0),
      MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  void* view = ::mmap(nullptr, registry_bytes, PROT_READ, MAP_SHARED, hello.registry(), 0);
  ASSERT_NE(view, MAP_FAILED);
  EXPECT_NE(::mprotect(view, registry_bytes, PROT_READ | PROT_WRITE), 0)
      << "a read-only view of the registry must not become writable";
  ::munmap(view, registry_bytes);
  const char byte = 0;
  EXPECT_EQ(::pwrite(hello.registry(), &byte, 1, 0), -1);
  EXPECT_EQ(::ftruncate(hello.registry(), 0), -1);

  EXPECT_EQ(::fcntl(hello.doorbell(), F_GET_SEALS) & kSizeSeals, kSizeSeals);
  EXPECT_EQ(::ftruncate(hello.doorbell(), 0), -1);
}

TEST(SegmentSealing, shouldNameSharedMemoryWithFixedStringsOnly) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawHello hello(daemon.socket_path());
  ASSERT_TRUE(hello.ok()) << hello.reply.message;

  // memfd names show in /proc of whoever holds them: nothing about a client.
  EXPECT_EQ(fd_target(hello.segment()), "/memfd:coproc-client (deleted)");
  EXPECT_EQ(fd_target(hello.registry()), "/memfd:coproc-registry (deleted)");
  EXPECT_EQ(fd_target(hello.doorbell()), "/memfd:coproc-doorbell (deleted)");
}

// ------------------------------------------------------------------ limits

TEST(ClientLimits, shouldRefuseTheClientBeyondMaxClientsNamingTheLimit) {
  auto args = standard_models();
  args.insert(args.end(), {"--max-clients", "2"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  auto first = std::make_unique<ClientHandle>(daemon.socket_path());
  ClientHandle second(daemon.socket_path());
  ASSERT_EQ(first->status, COPROC_OK);
  ASSERT_EQ(second.status, COPROC_OK);

  ClientHandle third(daemon.socket_path());
  const std::string message = coproc_last_error();

  EXPECT_EQ(third.status, COPROC_ERR_RESOURCE_EXHAUSTED);
  EXPECT_THAT(message, HasSubstr("too many clients (limits.max_clients = 2)"));
  EXPECT_TRUE(log_shows(daemon, "too many clients (limits.max_clients = 2)")) << daemon.log();
  // A place frees up as soon as the daemon reclaims a client that left.
  first.reset();
  coproc_status status = COPROC_ERR_RESOURCE_EXHAUSTED;
  for (auto deadline = Clock::now() + std::chrono::seconds(5);
       status == COPROC_ERR_RESOURCE_EXHAUSTED && Clock::now() < deadline;) {
    ClientHandle again(daemon.socket_path());
    status = again.status;
    if (status == COPROC_OK) {
      EXPECT_EQ(one_noop_inference(again.c), 0);
    }
  }
  EXPECT_EQ(status, COPROC_OK);
}

// A silent connection dropped by the daemon, seen from our end: what the daemon said before it
// hung up (a refusal) is read and skipped.
bool closed_within(int fd, int timeout_ms) {
  for (;;) {
    pollfd pfd{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&pfd, 1, timeout_ms) != 1) return false;
    char buffer[512];
    if (::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT) <= 0) return true;
  }
}

TEST(ClientLimits, shouldBoundConnectionsThatNeverSayHelloInNumberAndTime) {
  auto args = standard_models();
  args.insert(args.end(), {"--max-pending-hellos-per-uid", "2"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  // Two connections that say nothing take every place this uid has for a hello. (A third one
  // right now could race with DaemonProcess's start-up probe: let that go first.)
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int silent[2] = {connect_silently(daemon.socket_path()),
                         connect_silently(daemon.socket_path())};
  ASSERT_GE(silent[0], 0);
  ASSERT_GE(silent[1], 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int extra = connect_silently(daemon.socket_path());

  // A third is answered and closed at once; the silent two are closed after the hello timeout.
  EXPECT_TRUE(closed_within(extra, 2000));
  EXPECT_TRUE(closed_within(silent[0], 8000));
  EXPECT_TRUE(closed_within(silent[1], 8000));
  EXPECT_TRUE(log_shows(daemon, "too many connections waiting for their hello from uid " +
                                    std::to_string(::geteuid()) +
                                    " (limits.max_pending_hellos_per_uid = 2)"))
      << daemon.log();
  EXPECT_TRUE(log_shows(daemon, "no hello within 5000 ms")) << daemon.log();
  for (int fd : {silent[0], silent[1], extra}) ::close(fd);
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  EXPECT_EQ(one_noop_inference(client.c), 0);
}

TEST(ClientLimits, shouldReportArenaExhaustionNamingTheArenaSize) {
  auto args = standard_models();
  args.insert(args.end(), {"--arena-bytes", "64KiB"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();

  void* p = nullptr;
  const coproc_status status = coproc_alloc(client.c, 65536, &p);

  EXPECT_EQ(status, COPROC_ERR_NO_MEMORY);
  EXPECT_EQ(p, nullptr);
  EXPECT_THAT(std::string(coproc_last_error()),
              HasSubstr("arena exhausted: 65536 bytes requested"));
  EXPECT_THAT(std::string(coproc_last_error()), HasSubstr("free of 65536"));
  EXPECT_EQ(one_noop_inference(client.c), 0);
}

TEST(ClientLimits, shouldAnswerARequestOverTheMemoryLimitResourceExhaustedAndRunTheRest) {
  // max_batch 4096: the 2048-row request is one run. (Under the default max_batch it runs in
  // chunks, each checked against the limit on its own: the next test.)
  DaemonProcess daemon({"--request-memory", "1MiB", "--config",
                        write_config("memory", model_block("mlp", "max_batch = 4096"))});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  coproc_model* mlp = client.model("mlp");

  // 2048 rows of 256 floats: 2 MiB of input alone. 8 rows fit.
  coproc_tensor big_in = arena_tensor(client.c, {2048, 256});
  coproc_tensor big_out = arena_tensor(client.c, {2048, 16});
  const coproc_status refused = coproc_infer(client.c, mlp, &big_in, 1, &big_out, 1, 5'000'000'000);
  const std::string message = coproc_last_error();
  coproc_tensor in = arena_tensor(client.c, {8, 256});
  coproc_tensor out = arena_tensor(client.c, {8, 16});
  const coproc_status fits = coproc_infer(client.c, mlp, &in, 1, &out, 1, 5'000'000'000);

  EXPECT_EQ(refused, COPROC_ERR_RESOURCE_EXHAUSTED) << message;
  EXPECT_THAT(message, HasSubstr("over the limit of 1048576"));
  EXPECT_EQ(fits, COPROC_OK) << coproc_last_error();
  EXPECT_EQ(daemon.wait_exit(0), -1) << "daemon died: " << daemon.log();
}

TEST(ClientLimits, shouldRunABigRequestOverTheMemoryLimitInChunksThatFitIt) {
  auto args = standard_models();
  args.insert(args.end(), {"--request-memory", "1MiB"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();

  // 2 MiB of input as a whole; its chunks of max_batch (32) rows fit 1 MiB each.
  coproc_tensor big_in = arena_tensor(client.c, {2048, 256});
  coproc_tensor big_out = arena_tensor(client.c, {2048, 16});
  EXPECT_EQ(coproc_infer(client.c, client.model("mlp"), &big_in, 1, &big_out, 1, 5'000'000'000),
            COPROC_OK)
      << coproc_last_error();
  EXPECT_EQ(big_out.rank, 2);
  EXPECT_EQ(big_out.shape[0], 2048);
}

TEST(ClientLimits, shouldReturnWouldBlockNamingTheWindowWhenItIsFull) {
  auto args = standard_models();
  args.insert(args.end(), {"--ring-slots", "8"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  coproc_model* noop = client.model("noop");
  coproc_tensor in = arena_tensor(client.c, {1, 16});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  std::vector<coproc_request*> requests(8);
  for (auto*& r : requests) {
    ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  }

  coproc_request* ninth = nullptr;
  const coproc_status status = coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &ninth);

  EXPECT_EQ(status, COPROC_ERR_WOULD_BLOCK);
  EXPECT_THAT(std::string(coproc_last_error()), HasSubstr("in-flight window full (8 requests)"));
  for (auto* r : requests) {
    EXPECT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK);
    EXPECT_EQ(coproc_release(r), COPROC_OK);
  }
}

TEST(ClientLimits, shouldRefuseARequestLargerThanTheRingSlotNamingBothSizes) {
  auto args = standard_models();
  args.insert(args.end(),
              {"--slot-bytes", "256", "--model", "flatten=" + models_dir() + "/op_flatten.onnx"});
  DaemonProcess daemon(args);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  coproc_model* flatten = client.model("flatten");
  ASSERT_NE(flatten, nullptr);
  // One input and seven outputs: eight TensorRefs do not fit a 256-byte slot
  // (248 bytes of payload).
  coproc_tensor in = arena_tensor(client.c, {1, 2, 3, 4});
  std::vector<coproc_tensor> outs;
  for (int j = 0; j < 7; ++j) outs.push_back(arena_tensor(client.c, {1, 24}));

  coproc_request* r = nullptr;
  const coproc_status status =
      coproc_submit(client.c, flatten, &in, 1, outs.data(), outs.size(), nullptr, &r);

  EXPECT_EQ(status, COPROC_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(std::string(coproc_last_error()), HasSubstr("bytes exceeds the 248-byte ring slot"));
  EXPECT_EQ(one_noop_inference(client.c), 0);
}

TEST(ClientLimits, shouldDisconnectAClientThatWritesASlotLongerThanTheSlot) {
  DaemonProcess daemon(standard_models());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  RawHello hello(daemon.socket_path());
  ASSERT_TRUE(hello.ok()) << hello.reply.message;
  const size_t bytes = hello.reply.segment_bytes;
  auto* base = static_cast<std::byte*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, hello.segment(), 0));
  ASSERT_NE(static_cast<void*>(base), MAP_FAILED);
  void* doorbell =
      ::mmap(nullptr, wire::kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, hello.doorbell(), 0);
  const void* registry =
      ::mmap(nullptr, hello.reply.registry_bytes, PROT_READ, MAP_SHARED, hello.registry(), 0);
  ASSERT_NE(doorbell, MAP_FAILED);
  ASSERT_NE(registry, MAP_FAILED);
  const auto* header = reinterpret_cast<const wire::SegmentHeader*>(base);
  std::byte* ring = base + header->submission.offset;

  // Slot 0 claims the whole slot as payload, 8 bytes more than fits, and the
  // tail publishes it.
  std::byte* slot = ring + ring::detail::kControlBytes;
  ring::detail::slot_length(slot).store(header->submission.slot_bytes, std::memory_order_relaxed);
  ring::detail::index_at(ring, ring::detail::kTailOffsetBytes)->store(1, std::memory_order_release);
  ring::notify(static_cast<wire::Doorbell*>(doorbell)->seq,
               static_cast<const wire::RegistryHeader*>(registry)->poller_sleepers);

  EXPECT_TRUE(hello.closed_by_daemon(5000));
  EXPECT_TRUE(log_shows(daemon, "submission ring is corrupt")) << daemon.log();
  ::munmap(base, bytes);
  ::munmap(doorbell, wire::kPageBytes);
  ::munmap(const_cast<void*>(registry), hello.reply.registry_bytes);
  ClientHandle client(daemon.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  EXPECT_EQ(one_noop_inference(client.c), 0);
}

TEST(SocketDirectory, shouldRefuseToStartInADirectoryOthersMayWrite) {
  char tmpl[] = "/tmp/coproc-sec-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  auto args = standard_models();
  args.insert(args.end(), {"--socket", dir + "/coprocd.sock"});

  DaemonProcess daemon(args);
  const int status = daemon.wait_exit(30000);

  std::filesystem::remove_all(dir);
  EXPECT_FALSE(daemon.started());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("socket directory " + dir +
                                      " has mode 0777: group or others may write there"));
}

}  // namespace
}  // namespace coproc::test
