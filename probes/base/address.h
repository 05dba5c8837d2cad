// Socket addresses: parsing IP literals, formatting for humans.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netmond {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  std::uint16_t port() const;
  void set_port(std::uint16_t port);
  // "192.0.2.1" or "2001:db8::1"
  std::string ip() const;
  // "192.0.2.1:80" or "[2001:db8::1]:80"
  std::string with_port() const;
  // The same family, address, port (and IPv6 scope): the same peer, whatever padding the
  // structures were built with.
  bool same_endpoint(const SockAddr& other) const;
};

// Parses an IPv4 or IPv6 literal (no brackets, no port); nullopt if it is not one.
std::optional<SockAddr> parse_ip(std::string_view text, std::uint16_t port = 0);

// "host:port", bracketing IPv6 literals: "[::1]:53".
std::string host_port(std::string_view host, std::uint16_t port);

// The parts of "host", "host:port", "[v6]" or "[v6]:port" (two colons or more without
// brackets are a bare IPv6 address, no port). The port stays text for the caller to judge.
struct HostPortText {
  std::string_view host;
  std::optional<std::string_view> port;
  bool bracketed = false;
};
enum class SplitError { None, MissingBracket, JunkAfterBracket };
SplitError split_host_port(std::string_view text, HostPortText* out);

// Strips a URL down to its host ("https://[::1]:8443/x" -> "::1"); returns the text
// unchanged when it is not a URL.
std::string host_of(std::string_view address);

// A hostname as resolvers accept it (letters, digits, '-', '_'; labels of 1..63; not ending
// in an all-digit label, so "8.8.8.300" is not a name).
bool valid_hostname(std::string_view h);

}  // namespace netmond
