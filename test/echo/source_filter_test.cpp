// The reflection-safety rules and --allow ranges, as pure functions of addresses.
#include "source_filter.h"

#include "base/address.h"

#include <catch2/catch.hpp>

using namespace netmond;

namespace {

Verdict check(const SourceFilter& f, const std::string& ip, std::uint16_t port,
              ListenerScope scope = ListenerScope::Loopback) {
  auto a = parse_ip(ip, port);
  REQUIRE(a);
  return f.check(a->get(), scope);
}

bool contains(const std::string& cidr, const std::string& ip) {
  auto c = Cidr::parse(cidr);
  REQUIRE(c);
  auto a = parse_ip(ip);
  REQUIRE(a);
  return c->contains(*IpAddr::from(a->get()));
}

}  // namespace

TEST_CASE("echo filter: ordinary sources on high ports are answered", "[echo]") {
  SourceFilter f;
  CHECK(check(f, "127.0.0.1", 40000) == Verdict::Answer);
  CHECK(check(f, "192.0.2.7", 1024, ListenerScope::NonLoopback) == Verdict::Answer);
  CHECK(check(f, "::1", 65535) == Verdict::Answer);
  CHECK(check(f, "2001:db8::1", 5000, ListenerScope::Wildcard) == Verdict::Answer);
  CHECK(check(f, "fe80::1", 5000) == Verdict::Answer);
}

TEST_CASE("echo filter: source ports below 1024 and 2049 are dropped, unless allowed", "[echo]") {
  SourceFilter f;
  for (std::uint16_t port : {0, 7, 13, 19, 37, 53, 123, 1023, 2049}) {
    INFO(port);
    CHECK(check(f, "127.0.0.1", port) == Verdict::LowPort);
    CHECK(check(f, "::1", port) == Verdict::LowPort);
  }
  CHECK(check(f, "127.0.0.1", 2048) == Verdict::Answer);
  CHECK(check(f, "127.0.0.1", 2050) == Verdict::Answer);

  SourceFilter lab(true, {});
  CHECK(check(lab, "127.0.0.1", 7) == Verdict::Answer);
  CHECK(check(lab, "127.0.0.1", 2049) == Verdict::Answer);
  // The address rules still hold in the lab.
  CHECK(check(lab, "255.255.255.255", 7) == Verdict::BadSource);
}

TEST_CASE("echo filter: unspecified, multicast, broadcast, 0/8 and 255/8 sources are dropped",
          "[echo]") {
  SourceFilter f;
  for (std::string ip : {"0.0.0.0", "0.1.2.3", "255.255.255.255", "255.0.0.1", "224.0.0.1",
                         "239.255.255.250", "::", "ff02::1", "ff05::1:3", "::192.0.2.1",
                         "::ffff:255.255.255.255", "::ffff:224.0.0.251", "::ffff:0.0.0.0"}) {
    INFO(ip);
    CHECK(check(f, ip, 40000, ListenerScope::Wildcard) == Verdict::BadSource);
  }
  // Neighbours of the bad ranges are fine.
  CHECK(check(f, "1.0.0.1", 40000) == Verdict::Answer);
  CHECK(check(f, "223.255.255.255", 40000) == Verdict::Answer);
  CHECK(check(f, "254.255.255.255", 40000) == Verdict::Answer);

  // A local network's directed broadcast.
  f.set_broadcasts({0xc0a801ff});  // 192.168.1.255
  CHECK(check(f, "192.168.1.255", 40000) == Verdict::BadSource);
  CHECK(check(f, "::ffff:192.168.1.255", 40000) == Verdict::BadSource);
  CHECK(check(f, "192.168.1.254", 40000) == Verdict::Answer);
}

TEST_CASE("echo filter: loopback sources on a non-loopback listener are spoofed", "[echo]") {
  SourceFilter f;
  for (std::string ip : {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"}) {
    INFO(ip);
    CHECK(check(f, ip, 40000, ListenerScope::NonLoopback) == Verdict::SpoofedLoopback);
    CHECK(check(f, ip, 40000, ListenerScope::Loopback) == Verdict::Answer);
    // The kernel drops loopback sources arriving on other interfaces ("martians").
    CHECK(check(f, ip, 40000, ListenerScope::Wildcard) == Verdict::Answer);
  }
}

TEST_CASE("echo filter: the listener's scope comes from its bound address", "[echo]") {
  auto scope = [](const std::string& ip) { return scope_of(parse_ip(ip, 7)->get()); };
  CHECK(scope("127.0.0.1") == ListenerScope::Loopback);
  CHECK(scope("127.1.2.3") == ListenerScope::Loopback);
  CHECK(scope("::1") == ListenerScope::Loopback);
  CHECK(scope("::ffff:127.0.0.1") == ListenerScope::Loopback);
  CHECK(scope("0.0.0.0") == ListenerScope::Wildcard);
  CHECK(scope("::") == ListenerScope::Wildcard);
  CHECK(scope("192.0.2.1") == ListenerScope::NonLoopback);
  CHECK(scope("2001:db8::1") == ListenerScope::NonLoopback);
}

TEST_CASE("echo filter: --allow ranges restrict who is answered", "[echo]") {
  SourceFilter f(false, {*Cidr::parse("10.0.0.0/8"), *Cidr::parse("2001:db8::/32"),
                         *Cidr::parse("127.0.0.2")});
  CHECK(check(f, "10.1.2.3", 40000, ListenerScope::Wildcard) == Verdict::Answer);
  CHECK(check(f, "::ffff:10.1.2.3", 40000, ListenerScope::Wildcard) == Verdict::Answer);
  CHECK(check(f, "2001:db8:1::5", 40000, ListenerScope::Wildcard) == Verdict::Answer);
  CHECK(check(f, "127.0.0.2", 40000) == Verdict::Answer);
  CHECK(check(f, "127.0.0.1", 40000) == Verdict::NotAllowed);
  CHECK(check(f, "11.0.0.1", 40000, ListenerScope::Wildcard) == Verdict::NotAllowed);
  CHECK(check(f, "2001:db9::1", 40000, ListenerScope::Wildcard) == Verdict::NotAllowed);
  // The safety rules come first: an allowed source on a low port is still a low port.
  CHECK(check(f, "10.1.2.3", 19, ListenerScope::Wildcard) == Verdict::LowPort);
  CHECK(f.allowed(parse_ip("10.9.9.9", 1)->get()));
  CHECK_FALSE(f.allowed(parse_ip("192.0.2.1", 1)->get()));
  CHECK(SourceFilter().allowed(parse_ip("192.0.2.1", 1)->get()));
}

TEST_CASE("echo filter: CIDR parsing and matching", "[echo]") {
  CHECK(contains("192.0.2.0/24", "192.0.2.255"));
  CHECK_FALSE(contains("192.0.2.0/24", "192.0.3.0"));
  CHECK(contains("192.0.2.77/24", "192.0.2.1"));  // host bits are ignored
  CHECK(contains("10.0.0.0/9", "10.127.255.255"));
  CHECK_FALSE(contains("10.0.0.0/9", "10.128.0.0"));
  CHECK(contains("0.0.0.0/0", "203.0.113.9"));
  CHECK_FALSE(contains("0.0.0.0/0", "2001:db8::1"));  // families never mix
  CHECK(contains("::/0", "2001:db8::1"));
  CHECK_FALSE(contains("::/0", "203.0.113.9"));
  CHECK(contains("2001:db8::/33", "2001:db8:7fff::1"));
  CHECK_FALSE(contains("2001:db8::/33", "2001:db8:8000::1"));
  CHECK(contains("192.0.2.1", "192.0.2.1"));
  CHECK_FALSE(contains("192.0.2.1", "192.0.2.2"));
  CHECK(contains("::ffff:10.0.0.0/104", "10.20.30.40"));  // an IPv4-mapped range
  CHECK(contains("10.0.0.0/8", "::ffff:10.20.30.40"));

  for (std::string bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8x",
                          "2001:db8::/129", "::ffff:10.0.0.0/95", "example.com/8", "10.0.0/8"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad));
  }
}
