// The ntp check type as the configuration writes it: keys, defaults, names, and errors
// with file:line:column. The probe itself is tested against chronyd and an in-process fake
// (ntp_test.cpp).
#include "config.h"
#include "ntp.h"
#include "support/config_text.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;

namespace {

test::ConfigText load(std::string yaml) { return test::parse_config_text(std::move(yaml)); }

}  // namespace

TEST_CASE("ntp: the defaults", "[ntp][config]") {
  NtpSpec d;
  CHECK(d.server.empty());
  CHECK(d.port == 123);
  CHECK(d.max_offset == 1s);
  CHECK(d.max_stratum == 15);
  CHECK(d.samples == 1);
  CHECK(d.spacing == 2s);
  CHECK(d.name_suffix() == "ntp");
}

TEST_CASE("ntp: a bare NTP service, as the seed writes it, is a check with the defaults",
          "[ntp][config]") {
  auto l = load(R"(
servers:
  - address: www.example.com
    interval: 240
    services: [NTP]
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  REQUIRE(l.config->checks.size() == 1);
  const CheckConfig& c = l.config->checks[0];
  CHECK(c.name == "www.example.com/ntp");
  CHECK(c.type() == "ntp");
  CHECK(std::get<NtpSpec>(c.spec) == NtpSpec{});
  CHECK(c.target() == "www.example.com:123");
  CHECK(c.interval == 240s);
}

TEST_CASE("ntp: every key", "[ntp][config]") {
  auto l = load(R"(
servers:
  - address: 192.0.2.10
    services:
      - type: ntp
        server: ntp.example.net
        port: 1123
        max_offset: 250ms
        max_stratum: 4
        samples: 4
        spacing: 3s
      - {type: ntp, server: 127.0.0.1, name: local-ntp}
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  REQUIRE(l.config->checks.size() == 2);
  const CheckConfig& c = l.config->checks[0];
  CHECK(c.name == "192.0.2.10/ntp:1123");
  CHECK(c.target() == "ntp.example.net:1123");
  const auto& s = std::get<NtpSpec>(c.spec);
  CHECK(s.server == "ntp.example.net");
  CHECK(s.port == 1123);
  CHECK(s.max_offset == 250ms);
  CHECK(s.max_stratum == 4);
  CHECK(s.samples == 4);
  CHECK(s.spacing == 3s);
  CHECK(l.config->checks[1].name == "local-ntp");
  CHECK(l.config->checks[1].target() == "127.0.0.1:123");
}

TEST_CASE("ntp: bad values are errors at their line and column", "[ntp][config]") {
  auto l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - {type: ntp, port: 0, max_offset: 0, max_stratum: 16, samples: 9}
      - {type: ntp, name: b, spacing: 2m, max_offset: soon, server: "not a host"}
      - {type: ntp, name: c, samples: 0, max_stratum: 0, server: ""}
      - {type: ntp, name: d, sample: 2}
)");
  CHECK_FALSE(l.config);
  CHECK(l.errors ==
        std::vector<std::string>{
            "t.yaml:4:27: servers[0].services[0].port: port 0 is out of range (1..65535)",
            "t.yaml:4:42: servers[0].services[0].max_offset: max_offset must be longer than 0",
            "t.yaml:4:58: servers[0].services[0].max_stratum: 16 is out of range (1..15)",
            "t.yaml:4:71: servers[0].services[0].samples: 9 is out of range (1..8)",
            "t.yaml:5:39: servers[0].services[1].spacing: bad duration '2m' (use seconds or a "
            "number with ms, s, m, h or d: 250ms, 30s, 5m, 1h, 14d; at most 1m)",
            "t.yaml:5:55: servers[0].services[1].max_offset: bad duration 'soon' (use seconds or "
            "a number with ms, s, m, h or d: 250ms, 30s, 5m, 1h, 14d; at most 1d)",
            "t.yaml:5:69: servers[0].services[1].server: 'not a host' is not an IP address or a "
            "hostname",
            "t.yaml:6:39: servers[0].services[2].samples: 0 is out of range (1..8)",
            "t.yaml:6:55: servers[0].services[2].max_stratum: 0 is out of range (1..15)",
            "t.yaml:6:66: servers[0].services[2].server: '' is not an IP address or a hostname",
            "t.yaml:7:30: servers[0].services[3]: unknown key 'sample' (did you mean 'samples'?)",
        });
}
