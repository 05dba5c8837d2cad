// A real DNS server for dns probe tests: the system's dnsmasq (/usr/sbin/dnsmasq, package
// dnsmasq-base), run as a child of the test on a loopback high port, UDP and TCP, on
// 127.0.0.1 and (when the host has it) ::1. It knows only the static records below: no
// upstream servers, no hosts file, no resolv.conf, so it never sends a packet anywhere.
//
// The zone "test." (answers in dig's presentation form, every TTL kTtl unless noted):
//   host.test.          A      192.0.2.1                       (AA)
//                       AAAA   2001:db8::1
//   1.2.0.192.in-addr.arpa. and 2001:db8::1's ip6.arpa name: PTR host.test.
//   multi.test.         A      192.0.2.10, 192.0.2.11
//   mail.test.          MX     10 mx1.test.  and  20 mx2.test.
//   mx1.test., mx2.test. A     192.0.2.25, 192.0.2.26
//   www.test.           CNAME  host.test.  (an A query gets the CNAME and host.test's A)
//   txt.test.           TXT    "v=spf1 -all"  and  "hello" "world"
//   _sip._tcp.test.     SRV    10 60 5060 sip.test.
//   ptr.test.           PTR    host.test.
//   caa.test.           CAA    0 issue "letsencrypt.org"
//   test.               NS     ns1.test.  and  ns2.test.
//                       SOA    ns1.test. hostmaster.test. 2024010101 3600 600 86400 300
//   big.test.           TXT    kBigRecords records of ~110 bytes: over 4 KiB, more than any
//                              UDP answer dnsmasq sends (EDNS 1232), so UDP gets TC set
//   host.plain.test.    A      192.0.2.50, TTL 600, *without* AA (see below)
//   any other name in test.   NXDOMAIN
//   a known name, other type  NOERROR without answers (e.g. host.test MX)
//   a name outside test.      REFUSED (dnsmasq has no upstream to ask)
//
// Flags: dnsmasq sets AA on answers from its local records (everything above but
// host.plain.test) and RA on every answer, never AD. host.plain.test lives in an
// --auth-zone; dnsmasq answers such records on its recursive port without AA. NXDOMAIN
// and empty answers come without AA either. Answers for several records of one name come
// in dnsmasq's order (the reverse of the configuration's): compare them as sets.
#pragma once

#include "support/process.h"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netmond::test {

// One record dnsmasq serves, as dig prints it.
struct ZoneRecord {
  std::string name;  // owner with trailing dot: "host.test."
  std::string type;  // "A", "MX", ...
  std::uint16_t type_code = 0;
  std::uint32_t ttl = 0;
  std::string data;  // dig's presentation form: "192.0.2.1", "10 mx1.test."
};

class Dnsmasq {
 public:
  static constexpr std::uint32_t kTtl = 300;
  static constexpr std::uint32_t kAuthTtl = 600;  // host.plain.test
  static constexpr int kBigRecords = 40;

  // Names worth a constant (queries take them with or without the trailing dot).
  static constexpr std::string_view kHost = "host.test";
  static constexpr std::string_view kHostIp = "192.0.2.1";
  static constexpr std::string_view kHostIp6 = "2001:db8::1";
  static constexpr std::string_view kHostReverse = "1.2.0.192.in-addr.arpa";
  static constexpr std::string_view kMulti = "multi.test";
  static constexpr std::string_view kMail = "mail.test";
  static constexpr std::string_view kAlias = "www.test";
  static constexpr std::string_view kText = "txt.test";
  static constexpr std::string_view kService = "_sip._tcp.test";
  static constexpr std::string_view kPtr = "ptr.test";
  static constexpr std::string_view kCaa = "caa.test";
  static constexpr std::string_view kZone = "test";
  static constexpr std::string_view kBig = "big.test";
  static constexpr std::string_view kNotAuthoritative = "host.plain.test";
  static constexpr std::string_view kMissing = "nope.test";    // NXDOMAIN
  static constexpr std::string_view kOutside = "example.com";  // REFUSED

  // Starts dnsmasq and returns once it answers a query for host.test over UDP. Throws
  // std::runtime_error with dnsmasq's output when it exits or does not answer within 10 s.
  Dnsmasq();
  // SIGTERM, SIGKILL when dnsmasq takes over 5 s to exit.
  ~Dnsmasq();
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  std::uint16_t port() const { return port_; }  // UDP and TCP, on 127.0.0.1 and ::1
  bool has_ipv6() const { return ipv6_; }       // also listening on ::1
  // "127.0.0.1:<port>"
  std::string server() const;

  // Every record configured, in configuration order (big.test's too).
  const std::vector<ZoneRecord>& records() const { return records_; }
  // The data of the records of `name` (trailing dot optional, any case) and `type` ("MX"),
  // in configuration order; empty when there are none. www.test's A gives nothing: only
  // its CNAME is configured.
  std::vector<std::string> data(std::string_view name, std::string_view type) const;

  pid_t pid() const;
  // dnsmasq's stderr so far (startup lines; no per-query logging).
  std::string log() const;

 private:
  bool start(std::uint16_t port, std::string* why);
  bool answers() const;
  void stop();

  std::uint16_t port_ = 0;
  bool ipv6_ = false;
  std::vector<ZoneRecord> records_;
  std::unique_ptr<ChildProcess> child_;
};

// The wire form of a query (RD set, no EDNS) for `name` and `type`, for fixtures that ask
// servers themselves.
std::string dns_query_bytes(std::uint16_t id, std::string_view name, std::uint16_t type);

// Sends `query` over UDP to ip:port from a fresh socket and waits up to `limit` for one
// datagram back; nullopt on timeout. A test-side client (blocking: do not aim it at a fake
// served by the test's own loop).
std::optional<std::string> udp_exchange(const std::string& ip, std::uint16_t port,
                                        std::string_view query, std::chrono::milliseconds limit);
// The same over TCP with the two-byte length prefix; returns the message without it.
std::optional<std::string> tcp_exchange(const std::string& ip, std::uint16_t port,
                                        std::string_view query, std::chrono::milliseconds limit);

}  // namespace netmond::test
