// The dns check type as the configuration writes it: keys, defaults, one check per record
// type, and errors with file:line:column. The probe itself is tested against dnsmasq and
// an in-process fake (dns_dnsmasq_test.cpp, dns_faults_test.cpp).
#include "config.h"
#include "dns.h"
#include "dns_message.h"
#include "support/config_text.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;

namespace {

using Loaded = test::ConfigText;
Loaded load(std::string yaml) { return test::parse_config_text(std::move(yaml)); }

std::vector<std::string> names(const Config& c) {
  std::vector<std::string> out;
  for (const auto& k : c.checks) out.push_back(k.name);
  return out;
}

}  // namespace

TEST_CASE("dns: two services asking the same type need names of their own", "[dns][config]") {
  Loaded l = load(R"(
servers:
  - address: 8.8.8.8
    services:
      - DNS
      - {type: dns, query: google.com, record_types: [A, MX]}
)");
  CHECK_FALSE(l.config);
  REQUIRE(l.errors.size() == 1);
  CHECK(l.errors[0].find("duplicate check name '8.8.8.8/dns/A'") != std::string::npos);
}

TEST_CASE("dns: the seed's DNS service becomes one check per record type", "[dns][config]") {
  Loaded l = load(R"(
servers:
  - address: 8.8.8.8
    services:
      - {type: dns, query: google.com, record_types: [A, MX, AAAA, CNAME]}
      - {type: dns, name: mail, query: google.com, record_types: MX, server: 127.0.0.1,
         port: 5353, protocol: tcp}
  - address: example.org
    services: [dns]
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  CHECK(names(*l.config) == std::vector<std::string>{"8.8.8.8/dns/A", "8.8.8.8/dns/MX",
                                                     "8.8.8.8/dns/AAAA", "8.8.8.8/dns/CNAME",
                                                     "mail/MX", "example.org/dns/A"});
  const auto& checks = l.config->checks;
  CHECK(checks[0].target() == "google.com A @8.8.8.8:53");
  CHECK(checks[3].target() == "google.com CNAME @8.8.8.8:53");
  CHECK(checks[4].target() == "google.com MX @127.0.0.1:5353");
  // A hostname address: it is the query, asked of the system's resolvers.
  CHECK(checks[5].target() == "example.org A @system");
  const auto& mx = std::get<DnsSpec>(checks[1].spec);
  CHECK(mx.record_type == static_cast<std::uint16_t>(RrType::MX));
  CHECK(mx.record_types == std::vector<std::uint16_t>{15});
  CHECK(std::get<DnsSpec>(checks[4].spec).tcp);
  CHECK(std::get<DnsSpec>(checks[4].spec).port == 5353);
}

TEST_CASE("dns: every key, and the defaults", "[dns][config]") {
  DnsSpec d;
  CHECK(d.port == 53);
  CHECK_FALSE(d.tcp);
  CHECK(d.record_type == 1);
  CHECK(d.expect_rcode == 0);
  CHECK(d.min_answers == 1);
  CHECK(d.recursion);
  CHECK(d.tries == 3);
  Loaded l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - type: dns
        query: 192.0.2.1
        record_types: [PTR]
        expect_rcode: nxdomain
        min_answers: 0
        expect: ["^host\\.test\\.$", example]
        recursion: false
        expect_flags: [aa, AD]
        tries: 2
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  const auto& s = std::get<DnsSpec>(l.config->checks.at(0).spec);
  CHECK(s.query == "192.0.2.1");
  CHECK(s.expect_rcode == 3);
  CHECK(s.min_answers == 0);
  CHECK(s.expect == std::vector<std::string>{"^host\\.test\\.$", "example"});
  CHECK_FALSE(s.recursion);
  CHECK(s.expect_flags == std::vector<std::string>{"AA", "AD"});
  CHECK(s.tries == 2);
  // PTR turns an IP address into its reverse name.
  CHECK(l.config->checks[0].target() == "1.2.0.192.in-addr.arpa PTR @127.0.0.1:53");
}

TEST_CASE("dns: bad values name file:line:column and the key", "[dns][config]") {
  Loaded l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - type: dns
        record_types: [A, AXFR, A]
        expect_rcode: NOPE
        protocol: sctp
        expect: ["(x"]
        expect_flags: [ZZ]
        query: "a..b"
        tries: 9
)");
  CHECK_FALSE(l.config);
  CHECK(l.errors ==
        std::vector<std::string>{
            "t.yaml:5:27: servers[0].services[0].record_types[1]: 'AXFR' is not a supported "
            "record type (A, AAAA, MX, CNAME, NS, TXT, SOA, PTR, SRV, CAA)",
            "t.yaml:5:33: servers[0].services[0].record_types[2]: A is listed twice",
            "t.yaml:6:23: servers[0].services[0].expect_rcode: 'NOPE' is not an rcode (NOERROR, "
            "NXDOMAIN, SERVFAIL, REFUSED, ...)",
            "t.yaml:7:19: servers[0].services[0].protocol: 'sctp' is not one of: udp, tcp",
            "t.yaml:8:17: servers[0].services[0].expect: bad regular expression /(x/: missing "
            "closing parenthesis at offset 2",
            "t.yaml:9:23: servers[0].services[0].expect_flags: 'ZZ' is not a flag (AA, RD, RA, "
            "AD)",
            "t.yaml:10:16: servers[0].services[0].query: 'a..b' is not a valid domain name: "
            "empty label in the name",
            "t.yaml:11:16: servers[0].services[0].tries: 9 is out of range (1..5)",
        });
}

TEST_CASE("dns: server is an IP address or a hostname, its port goes in 'port'", "[dns][config]") {
  Loaded l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - {type: dns, name: a, server: "127.0.0.1:5353"}
      - {type: dns, name: b, server: "[::1]:53"}
      - {type: dns, name: c, server: "ns1.example.net:53"}
      - {type: dns, name: d, server: "udp://8.8.8.8"}
      - {type: dns, name: e, server: ns1.example.net.}
      - {type: dns, name: f, server: "::1"}
)");
  CHECK_FALSE(l.config);
  CHECK(l.errors ==
        std::vector<std::string>{
            "t.yaml:4:38: servers[0].services[0].server: '127.0.0.1:5353': give the port in "
            "'port', not in 'server'",
            "t.yaml:5:38: servers[0].services[1].server: '[::1]:53': give the port in 'port', "
            "not in 'server'",
            "t.yaml:6:38: servers[0].services[2].server: 'ns1.example.net:53': give the port in "
            "'port', not in 'server'",
            "t.yaml:7:38: servers[0].services[3].server: 'udp://8.8.8.8' is not an IP address "
            "or a hostname",
        });
}

TEST_CASE("dns: ip_version both makes two checks only when it picks the server's family",
          "[dns][config]") {
  Loaded l = load(R"(
servers:
  - address: example.test
    ip_version: both
    services:
      - {type: dns, name: system}
      - {type: dns, name: own, server: ns.example.test}
)");
  INFO((l.errors.empty() ? "" : l.errors[0]));
  REQUIRE(l.errors.empty());
  // Asking the system's resolvers, v4 and v6 would be the same check twice.
  CHECK(names(*l.config) == std::vector<std::string>{"system/A", "own/A/v4", "own/A/v6"});
  CHECK(l.config->checks[0].endpoint.ip_version == IpVersion::Any);
  CHECK(l.config->checks[1].endpoint.ip_version == IpVersion::V4);
  CHECK(l.config->checks[2].endpoint.ip_version == IpVersion::V6);
}
