#include "peer_user.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

namespace coproc::test {
namespace {

std::optional<Peer> lookup_peer() {
  const passwd* pw = ::getpwnam(kPeerUser);
  if (pw == nullptr) return std::nullopt;
  Peer peer{pw->pw_uid, pw->pw_gid, {}};
  const group* gr = ::getgrgid(pw->pw_gid);
  peer.group = gr != nullptr ? gr->gr_name : std::to_string(pw->pw_gid);
  return peer;
}

}  // namespace

// Test processes may race to create the user; the loser finds it on the next look.
std::optional<Peer> ensure_peer() {
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (auto peer = lookup_peer()) return peer;
    const std::string command = std::string("useradd --system --user-group --no-create-home ") +
                                "--shell /usr/sbin/nologin " + kPeerUser + " >/dev/null 2>&1";
    [[maybe_unused]] int rc = std::system(command.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return lookup_peer();
}

void PeerUserTest::SetUp() {
  if (::geteuid() != 0) {
    const char* opt_out = std::getenv("COPROC_TEST_NO_ROOT");
    if (opt_out != nullptr && std::string(opt_out) == "1") {
      GTEST_SKIP() << "not root and COPROC_TEST_NO_ROOT=1: tests with a second user are skipped";
    }
    FAIL() << "this test creates a second user and switches to it, which needs root (CI runs "
              "as root); run it as root, or set COPROC_TEST_NO_ROOT=1 to skip it";
  }
  auto peer = ensure_peer();
  ASSERT_TRUE(peer.has_value()) << "cannot create the user " << kPeerUser << " with useradd";
  ASSERT_NE(peer->uid, 0u);
  peer_ = *peer;
}

void PeerUserTest::open_socket_directory(const std::string& socket_path) {
  const std::string dir = std::filesystem::path(socket_path).parent_path().string();
  ASSERT_EQ(::chmod(dir.c_str(), 0711), 0) << dir << ": " << std::strerror(errno);
}

}  // namespace coproc::test
