// The icmp check type as the configuration writes it: its names, keys, defaults, and errors
// with file:line:column. The probe itself is tested in icmp_test.cpp.
#include "config.h"
#include "icmp.h"
#include "support/config_text.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;

namespace {

using Loaded = test::ConfigText;
Loaded load(std::string yaml) { return test::parse_config_text(std::move(yaml)); }

}  // namespace

TEST_CASE("icmp: the seed's ping and icmp services, with defaults", "[icmp][config]") {
  Loaded l = load(R"(
servers:
  - address: 8.8.8.8
    services:
      - ping
      - {type: icmp, name: 8.8.8.8/icmp-2}
      - {type: PING, name: v4, ip_version: 4}
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  const auto& checks = l.config->checks;
  REQUIRE(checks.size() == 3);
  CHECK(checks[0].name == "8.8.8.8/icmp");
  CHECK(checks[1].name == "8.8.8.8/icmp-2");
  CHECK(checks[2].name == "v4");
  CHECK(checks[2].endpoint.ip_version == IpVersion::V4);
  for (const auto& c : checks) {
    CHECK(c.type() == "icmp");
    CHECK(c.target() == "8.8.8.8");
    REQUIRE(std::holds_alternative<IcmpSpec>(c.spec));
    CHECK(std::get<IcmpSpec>(c.spec) == IcmpSpec{});
  }
  const IcmpSpec d;
  CHECK(d.count == 1);
  CHECK(d.spacing == 200ms);
  CHECK(d.size == 56);
  CHECK(d.ttl == 0);
  CHECK(d.max_rtt == 0ms);
  CHECK(d.max_loss == 100);
  CHECK(d.name_suffix() == "icmp");
}

TEST_CASE("icmp: every key", "[icmp][config]") {
  Loaded l = load(R"(
servers:
  - address: example.net
    ip_version: both
    services:
      - type: icmp
        count: 5
        spacing: 50ms
        size: 1400
        ttl: 32
        max_rtt: 250ms
        max_loss: 20
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  const auto& checks = l.config->checks;
  REQUIRE(checks.size() == 2);  // ip_version both: one check per family
  CHECK(checks[0].name == "example.net/icmp/v4");
  CHECK(checks[1].name == "example.net/icmp/v6");
  const IcmpSpec& s = std::get<IcmpSpec>(checks[0].spec);
  CHECK(s.count == 5);
  CHECK(s.spacing == 50ms);
  CHECK(s.size == 1400);
  CHECK(s.ttl == 32);
  CHECK(s.max_rtt == 250ms);
  CHECK(s.max_loss == 20);
}

TEST_CASE("icmp: bad values name the file, line and column", "[icmp][config]") {
  Loaded l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - {type: icmp, name: a, count: 0, size: 7, ttl: 256}
      - {type: icmp, name: b, count: 101, size: 65508, ttl: 0, max_loss: 101}
      - {type: ping, name: c, spacing: 0, max_rtt: 0s}
      - {type: ping, name: d, spacing: fast, max_rtt: 2m}
      - {type: ping, name: e, port: 7, interval_between: 1s, timeout: 1s}
)");
  CHECK_FALSE(l.config);
  CHECK(l.errors == std::vector<std::string>{
                        "t.yaml:4:38: servers[0].services[0].count: 0 is out of range (1..100)",
                        "t.yaml:4:47: servers[0].services[0].size: 7 is out of range (8..65507)",
                        "t.yaml:4:55: servers[0].services[0].ttl: 256 is out of range (1..255)",
                        "t.yaml:5:38: servers[0].services[1].count: 101 is out of range (1..100)",
                        "t.yaml:5:49: servers[0].services[1].size: 65508 is out of range "
                        "(8..65507)",
                        "t.yaml:5:61: servers[0].services[1].ttl: 0 is out of range (1..255)",
                        "t.yaml:5:74: servers[0].services[1].max_loss: 101 is out of range "
                        "(0..100)",
                        "t.yaml:6:40: servers[0].services[2].spacing: spacing must be at least "
                        "1ms",
                        "t.yaml:6:52: servers[0].services[2].max_rtt: max_rtt must be more than "
                        "0 (leave it out for no limit)",
                        "t.yaml:7:40: servers[0].services[3].spacing: bad duration 'fast' (use "
                        "seconds or a number with ms, s, m, h or d: 250ms, 30s, 5m, 1h, 14d; at "
                        "most 1m)",
                        "t.yaml:7:55: servers[0].services[3].max_rtt: bad duration '2m' (use "
                        "seconds or a number with ms, s, m, h or d: 250ms, 30s, 5m, 1h, 14d; at "
                        "most 1m)",
                        "t.yaml:8:31: servers[0].services[4]: unknown key 'port'",
                        "t.yaml:8:40: servers[0].services[4]: unknown key 'interval_between'",
                    });
}
