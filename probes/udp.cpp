#include "udp.h"

#include "base/address.h"

namespace netmond {

std::string UdpSpec::name_suffix() const { return "udp:" + std::to_string(port); }

bool parse(Params& p, UdpSpec* out) {
  p.require("port");
  p.get_port("port", &out->port);
  p.get("payload", &out->payload);
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const UdpSpec& s) { return host_port(e.host, s.port); }

// STUB: replaced by the udp probe implementation.
std::unique_ptr<Probe> make_probe(ProbeContext&, const Endpoint&, const UdpSpec&) { return nullptr; }

}  // namespace netmond
