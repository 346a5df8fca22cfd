// The client authenticates the daemon: before sending a byte, libcoproc checks
// who listens at the socket (SO_PEERCRED) and refuses a process of another
// user unless the caller expects that uid or only root could have made the
// socket's directory (client/src/connect.cc, docs/threat-model.md).
//
// An impostor, running as the peer user (peer_user.h: these tests need root),
// listens where a client is pointed and counts the bytes it receives.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "coproc.h"
#include "support/daemon_process.h"
#include "support/peer_user.h"

namespace coproc::test {
namespace {

using ::testing::HasSubstr;

// A process of the peer user listening at `path`: it accepts one connection
// and reports how many bytes arrived before the client hung up (or 1 s passed).
class Impostor {
 public:
  Impostor(const std::string& path, const Peer& peer) {
    if (::pipe(ready_) != 0 || ::pipe(report_) != 0) return;
    // Forked from the test's thread (daemon_process.h, start_child), waited for on destruction.
    child_ = start_child([&] { return serve(path, peer); });
    char byte = 0;
    pollfd pfd{ready_[0], POLLIN, 0};
    listening_ = ::poll(&pfd, 1, 10000) == 1 && ::read(ready_[0], &byte, 1) == 1 && byte == 'r';
  }
  ~Impostor() {
    if (child_ > 0) wait_child(child_, 20000);
    for (int fd : {ready_[0], ready_[1], report_[0], report_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  Impostor(const Impostor&) = delete;
  Impostor& operator=(const Impostor&) = delete;

  bool listening() const { return listening_; }

  // The bytes the client sent it; -1 if it could not tell.
  long bytes_received() {
    long n = -1;
    pollfd pfd{report_[0], POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1 || ::read(report_[0], &n, sizeof(n)) != sizeof(n)) return -1;
    return n;
  }

 private:
  int serve(const std::string& path, const Peer& peer) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(peer.gid) != 0 || ::setuid(peer.uid) != 0) {
      return 100;
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::chmod(path.c_str(), 0666) != 0 || ::listen(fd, 1) != 0) {
      return 101;
    }
    if (::write(ready_[1], "r", 1) != 1) return 102;
    pollfd listen_pfd{fd, POLLIN, 0};
    if (::poll(&listen_pfd, 1, 10000) != 1) return 103;
    const int conn = ::accept(fd, nullptr, nullptr);
    long total = 0;
    char buffer[256];
    for (;;) {
      pollfd pfd{conn, POLLIN, 0};
      if (::poll(&pfd, 1, 1000) != 1) break;
      const ssize_t n = ::read(conn, buffer, sizeof(buffer));
      if (n <= 0) break;
      total += n;
    }
    ::close(conn);
    return ::write(report_[1], &total, sizeof(total)) == sizeof(total) ? 0 : 104;
  }

  int ready_[2] = {-1, -1};
  int report_[2] = {-1, -1};
  bool listening_ = false;
  pid_t child_ = -1;
};

coproc_status connect_to(const std::string& socket, int64_t daemon_uid, std::string* message) {
  coproc_connect_options o;
  coproc_connect_options_init(&o);
  o.socket_path = socket.c_str();
  o.daemon_uid = daemon_uid;
  coproc_client* c = nullptr;
  const coproc_status status = coproc_connect(&o, &c);
  *message = status == COPROC_OK ? "" : coproc_last_error();
  coproc_disconnect(c);
  return status;
}

class DaemonIdentity : public PeerUserTest {
 protected:
  void TearDown() override {
    for (const auto& dir : dirs_) std::filesystem::remove_all(dir);
  }
  // A fresh directory owned by `owner` with mode 0755, made under `parent`.
  std::string make_dir(const std::string& parent, uid_t owner, gid_t group) {
    std::string tmpl = parent + "/coproc-ident-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return {};
    if (::chmod(tmpl.c_str(), 0755) != 0 || ::chown(tmpl.c_str(), owner, group) != 0) return {};
    dirs_.push_back(tmpl);
    return tmpl;
  }
  std::vector<std::string> dirs_;
};

TEST_F(DaemonIdentity, shouldRefuseAnotherUsersListenerInASharedDirectoryAndSendItNothing) {
  // The peer's own directory, but in /tmp, where anyone could have made it.
  const std::string dir = make_dir("/tmp", peer_.uid, peer_.gid);
  ASSERT_FALSE(dir.empty());
  Impostor impostor(dir + "/coprocd.sock", peer_);
  ASSERT_TRUE(impostor.listening());
  unsetenv("COPROC_DAEMON_UID");

  std::string message;
  EXPECT_EQ(connect_to(dir + "/coprocd.sock", -1, &message), COPROC_ERR_PERMISSION_DENIED);
  EXPECT_THAT(message, HasSubstr("runs as uid " + std::to_string(peer_.uid)));
  EXPECT_THAT(message, HasSubstr("nothing was sent to it"));
  EXPECT_EQ(impostor.bytes_received(), 0);
}

TEST_F(DaemonIdentity, shouldTalkToTheDaemonUidTheCallerNames) {
  const std::string dir = make_dir("/tmp", peer_.uid, peer_.gid);
  ASSERT_FALSE(dir.empty());
  Impostor impostor(dir + "/coprocd.sock", peer_);
  ASSERT_TRUE(impostor.listening());

  std::string message;
  // Trusted, so the hello goes out; this listener never answers it.
  EXPECT_EQ(connect_to(dir + "/coprocd.sock", peer_.uid, &message), COPROC_ERR_CONNECT) << message;
  EXPECT_GT(impostor.bytes_received(), 0);
}

TEST_F(DaemonIdentity, shouldTakeTheDaemonUidFromTheEnvironmentAndRefuseAMalformedOne) {
  const std::string dir = make_dir("/tmp", peer_.uid, peer_.gid);
  ASSERT_FALSE(dir.empty());
  std::string message;
  setenv("COPROC_DAEMON_UID", "12ab", 1);
  EXPECT_EQ(connect_to(dir + "/none.sock", -1, &message), COPROC_ERR_INVALID_ARGUMENT) << message;
  EXPECT_THAT(message, HasSubstr("COPROC_DAEMON_UID='12ab' is not a uid"));

  Impostor impostor(dir + "/coprocd.sock", peer_);
  ASSERT_TRUE(impostor.listening());
  setenv("COPROC_DAEMON_UID", std::to_string(peer_.uid).c_str(), 1);
  EXPECT_EQ(connect_to(dir + "/coprocd.sock", -1, &message), COPROC_ERR_CONNECT) << message;
  unsetenv("COPROC_DAEMON_UID");
  EXPECT_GT(impostor.bytes_received(), 0);
}

TEST_F(DaemonIdentity, shouldTrustTheOwnerOfASocketDirectoryOnlyRootCouldHaveMade) {
  // root's 0755 directory holding the peer's: as /run/coproc under systemd.
  const std::string outer = make_dir("/tmp", 0, 0);
  ASSERT_FALSE(outer.empty());
  const std::string dir = make_dir(outer, peer_.uid, peer_.gid);
  ASSERT_FALSE(dir.empty());
  Impostor impostor(dir + "/coprocd.sock", peer_);
  ASSERT_TRUE(impostor.listening());
  unsetenv("COPROC_DAEMON_UID");

  std::string message;
  EXPECT_EQ(connect_to(dir + "/coprocd.sock", -1, &message), COPROC_ERR_CONNECT) << message;
  EXPECT_GT(impostor.bytes_received(), 0);
}

TEST(DaemonIdentityOptions, shouldRefuseADaemonUidThatIsNoUid) {
  coproc_connect_options o;
  coproc_connect_options_init(&o);
  EXPECT_EQ(o.daemon_uid, -1);
  o.daemon_uid = -2;
  coproc_client* c = nullptr;
  EXPECT_EQ(coproc_connect(&o, &c), COPROC_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(coproc_last_error(), HasSubstr("daemon_uid"));
}

}  // namespace
}  // namespace coproc::test
