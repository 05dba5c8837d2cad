// tcp: a non-blocking connect to host:port; UP when the handshake completes.
#pragma once

#include "params.h"
#include "probe.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace netmond {

struct TcpSpec {
  static constexpr std::string_view kType = "tcp";
  std::uint16_t port = 0;  // required
  bool operator==(const TcpSpec&) const = default;
  std::string name_suffix() const;  // "tcp:80"
};

// Reads the tcp keys from `p` (records errors there); false when something was wrong.
bool parse(Params& p, TcpSpec* out);
std::string describe_target(const Endpoint& e, const TcpSpec& s);  // "host:port"
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const TcpSpec& s);

}  // namespace netmond
