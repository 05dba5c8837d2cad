// udp: is a UDP port open? Sends one datagram on a connected socket with IP_RECVERR.
//   any reply                      -> Ok, "open (reply received)"
//   ICMP port unreachable          -> Refused, "port closed (ICMP port unreachable)"
//   other ICMP errors              -> Unreachable, with the ICMP type and the sender
//   silence until the deadline     -> Ok, "open|filtered (no response)"
#pragma once

#include "params.h"
#include "probe.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace netmond {

struct UdpSpec {
  static constexpr std::string_view kType = "udp";
  std::uint16_t port = 0;  // required
  std::string payload;     // sent as is; default empty datagram
  bool operator==(const UdpSpec&) const = default;
  std::string name_suffix() const;  // "udp:53"
};

bool parse(Params& p, UdpSpec* out);
std::string describe_target(const Endpoint& e, const UdpSpec& s);
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const UdpSpec& s);

}  // namespace netmond
