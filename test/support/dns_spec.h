// A dns check of `query` IN `type` asking a test's DNS server on 127.0.0.1:`port`.
#pragma once

#include "dns.h"
#include "dns_message.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace netmond::test {

inline DnsSpec loopback_dns_spec(std::uint16_t port, std::string_view query, RrType type) {
  DnsSpec spec;
  spec.server = "127.0.0.1";
  spec.port = port;
  spec.query = std::string(query);
  spec.record_type = static_cast<std::uint16_t>(type);
  spec.record_types = {spec.record_type};
  return spec;
}

}  // namespace netmond::test
