// The icmp probe's pure parts, without sockets: building requests, parsing replies and
// errors as each kind of socket returns them, matching them to a run, the RTT, the verdict.
#include "icmp_packet.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>

#include <catch2/catch.hpp>

#include <deque>
#include <stdexcept>
#include <vector>

using namespace netmond;
using namespace netmond::icmp;
using namespace std::chrono_literals;

namespace {

std::string raw_ip(const std::string& text) {
  std::string out(text.find(':') != std::string::npos ? 16 : 4, '\0');
  if (inet_pton(out.size() == 16 ? AF_INET6 : AF_INET, text.c_str(), out.data()) != 1)
    throw std::invalid_argument(text);
  return out;
}

SockAddr ip(const std::string& text) { return *parse_ip(text); }

// An IPv4 header (no options) in front of `body`.
std::string ipv4(std::uint8_t ttl, std::uint8_t protocol, const std::string& src,
                 const std::string& dst, const std::string& body) {
  std::string h(20, '\0');
  h[0] = 0x45;
  const std::size_t total = 20 + body.size();
  h[2] = static_cast<char>(total >> 8);
  h[3] = static_cast<char>(total & 0xff);
  h[8] = static_cast<char>(ttl);
  h[9] = static_cast<char>(protocol);
  h.replace(12, 4, raw_ip(src));
  h.replace(16, 4, raw_ip(dst));
  return h + body;
}

// An IPv6 header (no extension headers) in front of `body`.
std::string ipv6(std::uint8_t next, const std::string& src, const std::string& dst,
                 const std::string& body) {
  std::string h(40, '\0');
  h[0] = 0x60;
  h[4] = static_cast<char>(body.size() >> 8);
  h[5] = static_cast<char>(body.size() & 0xff);
  h[6] = static_cast<char>(next);
  h[7] = 64;
  h.replace(8, 16, raw_ip(src));
  h.replace(24, 16, raw_ip(dst));
  return h + body;
}

// `message` with another type and, for IPv4, its checksum made right again.
std::string retyped(std::string message, std::uint8_t type, bool v4 = true) {
  message[0] = static_cast<char>(type);
  message[2] = message[3] = 0;
  if (v4) {
    std::uint16_t sum = internet_checksum(message);
    message[2] = static_cast<char>(sum >> 8);
    message[3] = static_cast<char>(sum & 0xff);
  }
  return message;
}

// An ICMP error of `type`/`code` whose body quotes `quoted` (IPv4: with a checksum).
std::string icmp_error(std::uint8_t type, std::uint8_t code, const std::string& quoted,
                       bool v4 = true) {
  std::string m(8, '\0');
  m[1] = static_cast<char>(code);
  return retyped(m + quoted, type, v4);
}

SocketError icmp4(int type, int code, const std::string& from = "") {
  SocketError e;
  e.origin = SO_EE_ORIGIN_ICMP;
  e.type = type;
  e.code = code;
  if (!from.empty()) e.offender = ip(from);
  return e;
}

SocketError icmp6(int type, int code, const std::string& from = "") {
  SocketError e = icmp4(type, code, from);
  e.origin = SO_EE_ORIGIN_ICMP6;
  return e;
}

constexpr std::uint64_t kCookie = 0x0123456789abcdefULL;

}  // namespace

// ---- Building ------------------------------------------------------------------------------

TEST_CASE("icmp: the Internet checksum (RFC 1071)", "[icmp]") {
  // RFC 1071 §3's example: the one's complement sum of these bytes is 0xddf2.
  CHECK(internet_checksum(std::string("\x00\x01\xf2\x03\xf4\xf5\xf6\xf7", 8)) == 0x220d);
  CHECK(internet_checksum("") == 0xffff);
  CHECK(internet_checksum(std::string("\x01", 1)) == 0xfeff);  // odd: padded with a zero
}

TEST_CASE("icmp: the payload is the run's cookie, then a fill pattern", "[icmp]") {
  std::string p = echo_payload(kCookie, 12);
  CHECK(p == std::string("\x01\x23\x45\x67\x89\xab\xcd\xef\x08\x09\x0a\x0b", 12));
  CHECK(echo_payload(kCookie, 56).size() == 56);
  CHECK(echo_payload(kCookie, 56)[55] == 55);
  CHECK(echo_payload(kCookie, 0).size() == kCookieSize);  // never shorter than the cookie
  CHECK(echo_payload(kCookie, 56) != echo_payload(kCookie + 1, 56));
}

TEST_CASE("icmp: echo requests for IPv4 (with checksum) and ICMPv6", "[icmp]") {
  const std::string payload = echo_payload(kCookie, 8);
  std::string v4 = echo_request(AF_INET, 0xbeef, 0x0102, payload);
  REQUIRE(v4.size() == 16);
  CHECK(v4[0] == 8);
  CHECK(v4[1] == 0);
  CHECK(static_cast<unsigned char>(v4[4]) == 0xbe);
  CHECK(static_cast<unsigned char>(v4[5]) == 0xef);
  CHECK(v4[6] == 1);
  CHECK(v4[7] == 2);
  CHECK(v4.substr(8) == payload);
  CHECK(internet_checksum(v4) == 0);  // a valid checksum sums to zero

  std::string v6 = echo_request(AF_INET6, 0xbeef, 0x0102, payload);
  CHECK(static_cast<unsigned char>(v6[0]) == 128);
  CHECK(v6[2] == 0);  // the kernel computes ICMPv6 checksums
  CHECK(v6[3] == 0);
  CHECK(v6.substr(4) == v4.substr(4));
}

// ---- Parsing -------------------------------------------------------------------------------

TEST_CASE("icmp: echo replies as raw IPv4, ping IPv4 and ICMPv6 sockets return them", "[icmp]") {
  const std::string payload = echo_payload(kCookie, 56);
  const std::string reply = retyped(echo_request(AF_INET, 4242, 7, payload), kEchoReplyV4);

  const std::string datagram = ipv4(57, 1, "192.0.2.1", "192.0.2.2", reply);
  Packet raw = parse_packet(Framing::Ipv4Raw, datagram);  // points into `datagram`
  CHECK(raw.kind == Packet::Kind::EchoReply);
  CHECK(raw.id == 4242);
  CHECK(raw.seq == 7);
  CHECK(raw.payload == payload);
  CHECK(raw.ttl == 57);

  Packet dgram = parse_packet(Framing::Ipv4Dgram, reply);
  CHECK(dgram.kind == Packet::Kind::EchoReply);
  CHECK(dgram.id == 4242);
  CHECK(dgram.seq == 7);
  CHECK(dgram.payload == payload);
  CHECK_FALSE(dgram.ttl);  // no IP header: the TTL comes as a control message

  const std::string reply6 =
      retyped(echo_request(AF_INET6, 4242, 65535, payload), kEchoReplyV6, false);
  Packet v6 = parse_packet(Framing::Ipv6, reply6);
  CHECK(v6.kind == Packet::Kind::EchoReply);
  CHECK(v6.id == 4242);
  CHECK(v6.seq == 65535);
  CHECK(v6.payload == payload);
}

TEST_CASE("icmp: requests, other types and broken packets are not replies", "[icmp]") {
  const std::string request = echo_request(AF_INET, 1, 2, echo_payload(kCookie, 8));
  // A raw socket sees our own requests to a local address.
  CHECK(parse_packet(Framing::Ipv4Raw, ipv4(64, 1, "127.0.0.1", "127.0.0.1", request)).kind ==
        Packet::Kind::Other);
  CHECK(parse_packet(Framing::Ipv4Dgram, retyped(request, 13)).kind == Packet::Kind::Other);

  std::string reply = retyped(request, kEchoReplyV4);
  std::string corrupt = reply;
  corrupt[10] ^= 1;
  CHECK(parse_packet(Framing::Ipv4Dgram, corrupt).kind == Packet::Kind::Malformed);
  CHECK(parse_packet(Framing::Ipv4Dgram, reply.substr(0, 7)).kind == Packet::Kind::Malformed);
  CHECK(parse_packet(Framing::Ipv4Raw, ipv4(64, 17, "192.0.2.1", "192.0.2.2", reply)).kind ==
        Packet::Kind::Malformed);                                                // not ICMP
  CHECK(parse_packet(Framing::Ipv4Raw, reply).kind == Packet::Kind::Malformed);  // no IP header
  CHECK(parse_packet(Framing::Ipv4Raw, "").kind == Packet::Kind::Malformed);
  std::string options = ipv4(64, 1, "192.0.2.1", "192.0.2.2", reply);
  options[0] = 0x4f;  // an IHL of 60 bytes: longer than what is there
  CHECK(parse_packet(Framing::Ipv4Raw, options.substr(0, 40)).kind == Packet::Kind::Malformed);
  CHECK(parse_packet(Framing::Ipv6, std::string(4, '\x81')).kind == Packet::Kind::Malformed);
}

TEST_CASE("icmp: ICMP errors quoting our request, IPv4 (raw) and ICMPv6", "[icmp]") {
  const std::string request = echo_request(AF_INET, 4242, 9, echo_payload(kCookie, 56));
  // Routers quote the IP header and at least the first 8 bytes of the datagram.
  const std::string quoted = ipv4(1, 1, "10.200.0.1", "198.51.100.1", request).substr(0, 28);
  Packet e = parse_packet(Framing::Ipv4Raw,
                          ipv4(64, 1, "10.200.0.2", "10.200.0.1", icmp_error(3, 1, quoted)));
  CHECK(e.kind == Packet::Kind::Error);
  CHECK(e.type == 3);
  CHECK(e.code == 1);
  CHECK(e.id == 4242);
  CHECK(e.seq == 9);
  REQUIRE(e.quoted_destination);
  CHECK(e.quoted_destination->ip() == "198.51.100.1");
  CHECK_FALSE(e.ttl);

  Packet ttl = parse_packet(Framing::Ipv4Raw,
                            ipv4(64, 1, "10.200.0.2", "10.200.0.1", icmp_error(11, 0, quoted)));
  CHECK(ttl.kind == Packet::Kind::Error);
  CHECK(ttl.type == 11);

  // An error about a UDP datagram, or one quoting too little, is not about our requests.
  std::string udp = ipv4(64, 17, "10.200.0.1", "198.51.100.1", std::string(8, '\0'));
  CHECK(
      parse_packet(Framing::Ipv4Raw, ipv4(64, 1, "10.200.0.2", "10.200.0.1", icmp_error(3, 3, udp)))
          .kind == Packet::Kind::Other);
  CHECK(parse_packet(Framing::Ipv4Raw, ipv4(64, 1, "10.200.0.2", "10.200.0.1",
                                            icmp_error(3, 1, quoted.substr(0, 24))))
            .kind == Packet::Kind::Other);

  const std::string request6 = echo_request(AF_INET6, 4242, 9, echo_payload(kCookie, 56));
  const std::string quoted6 = ipv6(58, "fd00:200::1", "2001:db8:51::1", request6);
  Packet e6 = parse_packet(Framing::Ipv6, icmp_error(1, 0, quoted6, false));
  CHECK(e6.kind == Packet::Kind::Error);
  CHECK(e6.type == 1);
  CHECK(e6.id == 4242);
  CHECK(e6.seq == 9);
  REQUIRE(e6.quoted_destination);
  CHECK(e6.quoted_destination->ip() == "2001:db8:51::1");
  CHECK(parse_packet(Framing::Ipv6, icmp_error(3, 0, quoted6, false)).kind == Packet::Kind::Error);
  // An extension header (or anything but ICMPv6) after the quoted IPv6 header.
  CHECK(parse_packet(Framing::Ipv6,
                     icmp_error(1, 0, ipv6(0, "fd00:200::1", "2001:db8:51::1", request6), false))
            .kind == Packet::Kind::Other);
}

TEST_CASE("icmp: the request header an error-queue entry returns", "[icmp]") {
  const std::string payload = echo_payload(kCookie, 8);
  auto h = parse_request_header(AF_INET, echo_request(AF_INET, 300, 301, payload));
  REQUIRE(h);
  CHECK(h->id == 300);
  CHECK(h->seq == 301);
  auto h6 = parse_request_header(AF_INET6, echo_request(AF_INET6, 300, 301, payload));
  REQUIRE(h6);
  CHECK(h6->seq == 301);
  CHECK_FALSE(parse_request_header(AF_INET, echo_request(AF_INET6, 300, 301, payload)));
  CHECK_FALSE(parse_request_header(AF_INET, "\x08\x00"));
}

TEST_CASE("icmp: ICMP errors in words", "[icmp]") {
  CHECK(error_text(icmp4(3, 0)) == "network unreachable");
  CHECK(error_text(icmp4(3, 1)) == "host unreachable");
  CHECK(error_text(icmp4(3, 13)) == "administratively prohibited");
  CHECK(error_text(icmp4(11, 0)) == "time to live exceeded");
  CHECK(error_text(icmp4(11, 1)) == "fragment reassembly time exceeded");
  CHECK(error_text(icmp4(12, 0)) == "parameter problem");
  CHECK(error_text(icmp4(5, 1)) == "ICMP type 5 code 1");
  CHECK(error_text(icmp6(1, 0)) == "no route to destination");
  CHECK(error_text(icmp6(1, 3)) == "address unreachable");
  CHECK(error_text(icmp6(2, 0)) == "packet too big");
  CHECK(error_text(icmp6(3, 0)) == "hop limit exceeded");
  CHECK(error_text(icmp6(4, 1)) == "parameter problem");
  CHECK(error_text(icmp6(137, 0)) == "ICMPv6 type 137 code 0");
}

// ---- Times ---------------------------------------------------------------------------------

TEST_CASE("icmp: RTT from the kernel's receive stamp, else the monotonic clock", "[icmp]") {
  const SendTime sent{1'000'000s, 5s};
  // The reply was stamped 300us after the send but read 20ms later (a busy loop).
  CHECK(round_trip(sent, {1'000'000s + 300us, 5s + 20ms}) == 300us);
  CHECK(round_trip(sent, {std::nullopt, 5s + 20ms}) == 20ms);
  // The wall clock stepped back, or forward, in between: the stamp means nothing.
  CHECK(round_trip(sent, {1'000'000s - 1s, 5s + 20ms}) == 20ms);
  CHECK(round_trip(sent, {1'000'000s + 1h, 5s + 20ms}) == 20ms);
  CHECK(round_trip(sent, {std::nullopt, 5s - 1ms}) == 0ns);  // never negative
}

// ---- Matching ------------------------------------------------------------------------------

namespace {

struct Run {
  Tracker t;
  const std::string payload = echo_payload(kCookie, 16);
  const SockAddr target = ip("192.0.2.7");
  SendTime at0{100s, 10s};

  explicit Run(std::uint16_t first_seq = 100, unsigned count = 3) {
    t.begin(target, 4242, payload);
    for (unsigned i = 0; i < count; ++i)
      t.on_sent(static_cast<std::uint16_t>(first_seq + i),
                {at0.realtime + i * 10ms, at0.monotonic + i * 10ms});
  }
  Packet reply(std::uint16_t seq, std::string body = "", std::uint16_t id = 4242) const {
    Packet p;
    p.kind = Packet::Kind::EchoReply;
    p.id = id;
    p.seq = seq;
    bodies.push_back(body.empty() ? payload : body);
    p.payload = bodies.back();
    return p;
  }
  Tracker::Match reply_at(std::uint16_t seq, std::chrono::nanoseconds rtt,
                          std::optional<int> ttl = 64) {
    const auto i = static_cast<std::uint16_t>(seq - 100);
    const auto sent = at0.realtime + i * 10ms;
    return t.on_reply(target, reply(seq), {sent + rtt, at0.monotonic + i * 10ms + rtt + 1ms}, ttl);
  }
  mutable std::deque<std::string> bodies;  // stable: packets point into them
};

}  // namespace

TEST_CASE("icmp: replies to a run's requests count once each, in any order", "[icmp]") {
  Run run;
  CHECK_FALSE(run.t.settled());
  CHECK(run.reply_at(101, 2ms) == Tracker::Match::Reply);
  CHECK(run.reply_at(100, 4ms) == Tracker::Match::Reply);  // after a later one's: reordered
  CHECK(run.reply_at(101, 3ms) == Tracker::Match::Duplicate);
  CHECK_FALSE(run.t.settled());
  CHECK(run.reply_at(102, 6ms, 55) == Tracker::Match::Reply);
  CHECK(run.t.settled());
  const Stats& s = run.t.stats();
  CHECK(s.sent == 3);
  CHECK(s.received == 3);
  CHECK(s.lost() == 0);
  CHECK(s.loss_percent() == 0);
  CHECK(s.duplicates == 1);
  CHECK(s.reordered == 1);
  CHECK(s.ignored == 0);
  CHECK(s.rtt.min_ms() == Approx(2));
  CHECK(s.rtt.max_ms() == Approx(6));
  CHECK(s.rtt.avg_ms() == Approx(4));
  CHECK(s.rtt.jitter_ms() == Approx(2));  // |4-2|, |6-4|
  CHECK(s.reply_ttl == 55);
}

TEST_CASE("icmp: replies that are not this run's are ignored", "[icmp]") {
  Run run;
  const ReceiveTime at{100s + 1ms, 10s + 1ms};
  SECTION("another identifier") {
    CHECK(run.t.on_reply(run.target, run.reply(100, "", 4243), at, {}) == Tracker::Match::Ignored);
  }
  SECTION("another run's cookie") {
    CHECK(run.t.on_reply(run.target, run.reply(100, echo_payload(kCookie + 1, 16)), at, {}) ==
          Tracker::Match::Ignored);
  }
  SECTION("a corrupted or truncated payload") {
    std::string bad = run.payload;
    bad[12] ^= 0x40;
    CHECK(run.t.on_reply(run.target, run.reply(100, bad), at, {}) == Tracker::Match::Ignored);
    CHECK(run.t.on_reply(run.target, run.reply(100, run.payload.substr(0, 8)), at, {}) ==
          Tracker::Match::Ignored);
  }
  SECTION("another host") {
    CHECK(run.t.on_reply(ip("192.0.2.8"), run.reply(100), at, {}) == Tracker::Match::Ignored);
    CHECK(run.t.on_reply(ip("::ffff:192.0.2.7"), run.reply(100), at, {}) ==
          Tracker::Match::Ignored);
  }
  SECTION("a sequence number this run never sent") {
    CHECK(run.t.on_reply(run.target, run.reply(99), at, {}) == Tracker::Match::Ignored);
    CHECK(run.t.on_reply(run.target, run.reply(103), at, {}) == Tracker::Match::Ignored);
  }
  CHECK(run.t.stats().ignored >= 1);
  CHECK(run.t.stats().received == 0);
  CHECK_FALSE(run.t.settled());
}

TEST_CASE("icmp: sequence numbers wrap around within a run", "[icmp]") {
  Run run(65535, 2);
  CHECK(run.t.on_reply(run.target, run.reply(0), {100s + 11ms, 10s + 12ms}, {}) ==
        Tracker::Match::Reply);
  CHECK(run.t.on_reply(run.target, run.reply(65535), {100s + 1ms, 10s + 13ms}, {}) ==
        Tracker::Match::Reply);
  CHECK(run.t.settled());
  CHECK(run.t.stats().reordered == 1);
  CHECK(run.t.on_reply(run.target, run.reply(1), {100s, 10s}, {}) == Tracker::Match::Ignored);
}

TEST_CASE("icmp: ICMP errors settle the request they quote", "[icmp]") {
  Run run(100, 2);
  const SocketError e = icmp4(3, 1, "10.200.0.2");
  CHECK(run.t.on_error(4243, 100, std::nullopt, e) == Tracker::Match::Ignored);     // not our id
  CHECK(run.t.on_error(4242, 100, ip("192.0.2.9"), e) == Tracker::Match::Ignored);  // elsewhere
  CHECK(run.t.on_error(4242, 100, run.target, e) == Tracker::Match::Error);
  CHECK(run.t.on_error(4242, 100, run.target, e) == Tracker::Match::Ignored);  // settled
  CHECK(run.reply_at(100, 1ms) == Tracker::Match::Ignored);  // a reply after its error
  CHECK_FALSE(run.t.settled());
  CHECK(run.reply_at(101, 1ms) == Tracker::Match::Reply);
  CHECK(run.t.on_error(4242, 101, std::nullopt, e) == Tracker::Match::Ignored);  // replied
  CHECK(run.t.settled());
  const Stats& s = run.t.stats();
  CHECK(s.errors == 1);
  CHECK(s.received == 1);
  CHECK(s.lost() == 1);
  REQUIRE(s.error);
  CHECK(s.error->offender->ip() == "10.200.0.2");
}

// ---- Verdict -------------------------------------------------------------------------------

namespace {
Stats stats(unsigned sent, std::vector<std::chrono::microseconds> rtts) {
  Stats s;
  s.sent = sent;
  s.received = static_cast<unsigned>(rtts.size());
  for (auto r : rtts) s.rtt.add(r);
  return s;
}
}  // namespace

TEST_CASE("icmp: the verdict and its message", "[icmp]") {
  const Limits defaults;
  CHECK(verdict(stats(3, {31us, 37us, 52us}), defaults) ==
        std::pair{Status::Ok, std::string("3/3 replies, rtt min/avg/max 0.031/0.040/0.052 ms")});
  CHECK(verdict(stats(1, {143us}), defaults) ==
        std::pair{Status::Ok, std::string("1/1 replies, rtt 0.143 ms")});
  // By default only total loss fails.
  CHECK(verdict(stats(3, {1ms}), defaults) ==
        std::pair{Status::Ok, std::string("1/3 replies (67% loss), rtt 1.00 ms")});
  CHECK(verdict(stats(3, {}), defaults) ==
        std::pair{Status::Timeout, std::string("0/3 replies (100% loss)")});

  Stats dup = stats(2, {1ms, 3ms});
  dup.duplicates = 2;
  CHECK(verdict(dup, defaults).second ==
        "2/2 replies, rtt min/avg/max 1.000/2.000/3.000 ms, 2 duplicates");

  Limits strict{25, 2ms};
  CHECK(verdict(stats(4, {1ms, 1ms, 1ms}), strict) ==
        std::pair{Status::Ok, std::string("3/4 replies (25% loss), rtt min/avg/max "
                                          "1.000/1.000/1.000 ms")});
  CHECK(verdict(stats(4, {1ms, 1ms}), strict) ==
        std::pair{Status::Unexpected, std::string("2/4 replies (50% loss, above max_loss 25%), "
                                                  "rtt min/avg/max 1.000/1.000/1.000 ms")});
  CHECK(verdict(stats(2, {1ms, 4ms}), strict) ==
        std::pair{Status::Unexpected, std::string("2/2 replies, rtt min/avg/max "
                                                  "1.000/2.500/4.000 ms; average above max_rtt "
                                                  "2ms")});
  Limits none{0, {}};
  CHECK(verdict(stats(2, {1ms, 1ms}), none).first == Status::Ok);
  CHECK(verdict(stats(2, {1ms}), none).first == Status::Unexpected);
}

TEST_CASE("icmp: the verdict when ICMP errors came back", "[icmp]") {
  Stats one = stats(1, {});
  one.errors = 1;
  one.error = icmp4(3, 1, "10.200.0.2");
  CHECK(verdict(one, {}) ==
        std::pair{Status::Unreachable, std::string("host unreachable from 10.200.0.2")});

  Stats three = stats(3, {});
  three.errors = 3;
  three.error = icmp4(11, 0, "10.200.0.2");
  CHECK(verdict(three, {}) ==
        std::pair{Status::Unreachable, std::string("time to live exceeded from 10.200.0.2 "
                                                   "(0/3 replies, 3 ICMP errors)")});
  // Some errors, no replies, and others lost in silence: still the error that explains it.
  three.errors = 1;
  CHECK(verdict(three, {}).first == Status::Unreachable);

  Stats mixed = stats(3, {1ms});
  mixed.errors = 2;
  mixed.error = icmp6(1, 3, "fd00:200::2");
  CHECK(verdict(mixed, {}).first == Status::Ok);
  CHECK(verdict(mixed, Limits{50, {}}) ==
        std::pair{Status::Unexpected,
                  std::string("1/3 replies (67% loss, above max_loss 50%), rtt 1.00 ms; 2 ICMP "
                              "errors (address unreachable from fd00:200::2)")});
}
