#include "tcp.h"

#include "base/address.h"

namespace netmond {

std::string TcpSpec::name_suffix() const { return "tcp:" + std::to_string(port); }

bool parse(Params& p, TcpSpec* out) {
  p.require("port");
  p.get_port("port", &out->port);
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const TcpSpec& s) { return host_port(e.host, s.port); }

// STUB: replaced by the tcp probe implementation.
std::unique_ptr<Probe> make_probe(ProbeContext&, const Endpoint&, const TcpSpec&) { return nullptr; }

}  // namespace netmond
