// Per-source token buckets in a bounded table.
#include "rate_limit.h"

#include "base/address.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>

using namespace netmond;

namespace {

constexpr std::uint64_t kSecond = 1'000'000'000;

IpAddr ip(const std::string& text) { return *IpAddr::from(parse_ip(text)->get()); }

IpAddr nth_v4(std::uint32_t n) {
  IpAddr a;
  a.v4 = true;
  std::uint32_t be = htonl(0x0a000000u + n);  // 10.0.0.0 + n
  std::memcpy(a.bytes.data(), &be, 4);
  return a;
}

int allowed(RateLimiter& r, const IpAddr& a, int tries, std::uint64_t now) {
  int n = 0;
  for (int i = 0; i < tries; ++i) n += r.allow(a, now) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("echo rate limit: a burst, then the rate", "[echo]") {
  RateLimiter r(10, 5, 64);
  auto a = ip("192.0.2.1");
  CHECK(allowed(r, a, 8, 0) == 5);
  // 10/s: one token every 100 ms, never more than the burst.
  CHECK(allowed(r, a, 3, kSecond / 10) == 1);
  CHECK(allowed(r, a, 3, kSecond / 10 + kSecond / 20) == 0);
  CHECK(allowed(r, a, 10, 100 * kSecond) == 5);
  // Time going backwards (it cannot with a monotonic clock, but) gives no tokens.
  CHECK(allowed(r, a, 1, 50 * kSecond) == 0);
}

TEST_CASE("echo rate limit: sources have their own buckets, IPv6 per /64", "[echo]") {
  RateLimiter r(1, 2, 64);
  CHECK(allowed(r, ip("192.0.2.1"), 5, 0) == 2);
  CHECK(allowed(r, ip("192.0.2.2"), 5, 0) == 2);
  CHECK(allowed(r, ip("::ffff:192.0.2.1"), 5, 0) == 0);  // the same IPv4 source
  CHECK(allowed(r, ip("2001:db8:0:1::1"), 5, 0) == 2);
  CHECK(allowed(r, ip("2001:db8:0:1::2"), 5, 0) == 0);  // same /64
  CHECK(allowed(r, ip("2001:db8:0:2::1"), 5, 0) == 2);  // next /64
  CHECK(r.tracked() == 4);
}

TEST_CASE("echo rate limit: rate 0 turns it off and tracks nothing", "[echo]") {
  RateLimiter r(0, 1, 4096);
  CHECK_FALSE(r.enabled());
  CHECK(allowed(r, ip("192.0.2.1"), 1000, 0) == 1000);
  CHECK(r.capacity() == 0);
}

TEST_CASE("echo rate limit: a flood of spoofed sources stays within the table", "[echo]") {
  RateLimiter r(1, 3, 4096);
  REQUIRE(r.capacity() == 4096);
  auto steady = ip("192.0.2.1");
  int steady_allowed = 0, new_refused = 0;
  // 200k distinct sources at one instant (no refills), with the steady source once per
  // 10 of them: it keeps its entry (an eviction would need 8 newer sources landing in its
  // set in between), so it gets exactly its burst.
  for (std::uint32_t i = 0; i < 200'000; ++i) {
    new_refused += r.allow(nth_v4(i), 0) ? 0 : 1;  // a new source starts with a full bucket
    if (i % 10 == 0) steady_allowed += r.allow(steady, 0) ? 1 : 0;
  }
  CHECK(new_refused == 0);
  CHECK(steady_allowed == 3);
  CHECK(r.tracked() <= r.capacity());
  CHECK(r.tracked() > r.capacity() * 9 / 10);
  CHECK(r.evictions() >= 200'000 - r.capacity());
}

TEST_CASE("echo rate limit: capacity rounds up to whole sets", "[echo]") {
  CHECK(RateLimiter(1, 1, 1).capacity() == RateLimiter::kWays);
  CHECK(RateLimiter(1, 1, 100).capacity() == 16 * RateLimiter::kWays);
  CHECK(RateLimiter(1, 1, 4096).capacity() == 4096);
}
