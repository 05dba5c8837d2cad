#include "base/address.h"

#include <catch2/catch.hpp>

using namespace netmond;

TEST_CASE("IP literals parse and format with ports", "[address]") {
  auto v4 = parse_ip("127.0.0.1", 80);
  REQUIRE(v4);
  CHECK(v4->family() == AF_INET);
  CHECK(v4->with_port() == "127.0.0.1:80");
  auto v6 = parse_ip("::1", 53);
  REQUIRE(v6);
  CHECK(v6->family() == AF_INET6);
  CHECK(v6->with_port() == "[::1]:53");
  CHECK_FALSE(parse_ip("www.example.com"));
  CHECK_FALSE(parse_ip("[::1]"));
  CHECK_FALSE(parse_ip(""));
  CHECK_FALSE(parse_ip("1.2.3.4.5"));
}

TEST_CASE("host_of strips URLs to their host", "[address]") {
  CHECK(host_of("https://example.com") == "example.com");
  CHECK(host_of("http://example.com:8080/path?q") == "example.com");
  CHECK(host_of("https://user:pw@[2001:db8::1]:8443/x") == "2001:db8::1");
  CHECK(host_of("www.example.com") == "www.example.com");
  CHECK(host_of("[::1]") == "::1");
  CHECK(host_of("8.8.8.8") == "8.8.8.8");
}
