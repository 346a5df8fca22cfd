#include "config/listen_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace coproc::daemon {

std::optional<ListenAddress> parse_listen_address(std::string_view text, bool* valid,
                                                  std::string* problem) {
  *valid = true;
  if (text == "off") return std::nullopt;
  auto fail = [&](std::string why) -> std::optional<ListenAddress> {
    *valid = false;
    *problem = std::move(why);
    return std::nullopt;
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail("has no :PORT");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return fail("has a port outside [0, 65535]");
  }
  const std::string literal(host);
  unsigned char buffer[16];
  const bool v4 = !bracketed && ::inet_pton(AF_INET, literal.c_str(), buffer) == 1;
  const bool v6 = bracketed && ::inet_pton(AF_INET6, literal.c_str(), buffer) == 1;
  if (!v4 && !v6) {
    return fail(
        "needs a numeric address: an IPv4 address (127.0.0.1:9470) or an IPv6 one in "
        "brackets ([::1]:9470)");
  }
  return ListenAddress{literal, static_cast<uint16_t>(port)};
}

}  // namespace coproc::daemon
