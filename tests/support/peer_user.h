// A second local user for the tests that check who may talk to whom: the test
// creates it (useradd) and becomes it in forked children (setgid/setuid), so
// these tests need root. CI runs as root; elsewhere they FAIL, saying so,
// unless COPROC_TEST_NO_ROOT=1 is set, which skips them.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <optional>
#include <string>

namespace coproc::test {

inline constexpr const char* kPeerUser = "coproc-test-peer";

struct Peer {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string group;  // the name of its primary group
};

// The peer user, created on first use; nullopt if useradd fails.
std::optional<Peer> ensure_peer();

// Base fixture: requires root (or skips under COPROC_TEST_NO_ROOT=1) and
// provides the peer user in peer_.
class PeerUserTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // Lets the peer reach a test daemon's socket: search permission on its private (0700)
  // directory. The socket file's own mode still applies.
  static void open_socket_directory(const std::string& socket_path);
  Peer peer_;
};

}  // namespace coproc::test
