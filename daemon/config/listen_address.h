// The HTTP endpoint's address as the config writes it (http.listen): "off",
// "127.0.0.1:9470", "[::1]:9470". Numeric addresses only, so starting the
// daemon never waits on a name lookup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coproc::daemon {

struct ListenAddress {
  std::string host;   // an IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;  // 0: any free port (the bound one is published in the stats page)
};

// nullopt for "off"; an Error-free parse is the caller's check: `valid` is
// false and `problem` says why when the text is neither "off" nor an address.
std::optional<ListenAddress> parse_listen_address(std::string_view text, bool* valid,
                                                  std::string* problem);

}  // namespace coproc::daemon
