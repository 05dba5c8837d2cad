// Which datagrams the echo server answers: the reflection-safety rules (after OpenBSD
// inetd's dg_badinput) and the --allow list. Pure functions of the addresses, so they are
// tested without sockets; the only I/O, local_broadcasts(), is kept apart.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace netmond {

// An IP address reduced to what the rules look at: IPv4 (including IPv4-mapped IPv6,
// which a dual-stack socket reports for IPv4 peers) or IPv6, in network byte order.
struct IpAddr {
  bool v4 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4

  // nullopt for families other than AF_INET and AF_INET6.
  static std::optional<IpAddr> from(const sockaddr* sa);
  std::uint32_t v4_host_order() const;
  bool operator==(const IpAddr&) const = default;
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
struct Cidr {
  IpAddr base;  // host bits cleared
  int prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddr& a) const;
};

// Why a datagram is not answered; Answer when it is.
enum class Verdict : std::uint8_t {
  Answer,
  BadSource,        // unspecified, multicast, broadcast, 0/8, 255/8, IPv4-compatible IPv6
  SpoofedLoopback,  // 127/8 or ::1 arriving on a non-loopback address
  LowPort,          // source port < 1024 or 2049 (NFS): a service that may answer back
  NotAllowed,       // outside every --allow range
};

// Where a listener is bound, as far as the loopback rule is concerned.
enum class ListenerScope : std::uint8_t {
  Loopback,     // 127/8 or ::1: loopback sources are expected
  Wildcard,     // 0.0.0.0 or ::: the arrival address is unknown; the kernel already drops
                // loopback sources that arrive on other interfaces (martians)
  NonLoopback,  // a specific other address: loopback sources are spoofed
};
ListenerScope scope_of(const sockaddr* bound);

class SourceFilter {
 public:
  SourceFilter() = default;
  SourceFilter(bool allow_low_ports, std::vector<Cidr> allow)
      : allow_low_ports_(allow_low_ports), allow_(std::move(allow)) {}

  // The verdict for a datagram from `source` arriving on a listener of `scope`. The rules
  // are checked in the order of Verdict's values.
  Verdict check(const sockaddr* source, ListenerScope scope) const;
  // Only the --allow list (TCP: a handshake cannot be spoofed, so only who may connect).
  bool allowed(const sockaddr* source) const;

  // The directed-broadcast addresses of the local IPv4 networks (host byte order),
  // dropped as sources like 255.255.255.255.
  void set_broadcasts(std::vector<std::uint32_t> broadcasts) {
    broadcasts_ = std::move(broadcasts);
  }

 private:
  bool allow_low_ports_ = false;
  std::vector<Cidr> allow_;
  std::vector<std::uint32_t> broadcasts_;
};

// The broadcast addresses of the host's IPv4 interfaces (host byte order), read with
// SIOCGIFCONF/SIOCGIFBRDADDR on an AF_INET socket (no netlink needed); empty on error.
std::vector<std::uint32_t> local_broadcasts();

}  // namespace netmond
