// The DNS test peers themselves: dnsmasq serves what support/dnsmasq.h promises (checked
// with dig, the presentation form the dns probe mimics), and the fake DNS server answers
// as support/dns_fakes.h says. Loopback only.
#include "base/address.h"
#include "base/fd.h"
#include "support/dns_fakes.h"
#include "support/dnsmasq.h"
#include "support/loop.h"
#include "support/process.h"

#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::DnsFault;
using netmond::test::Dnsmasq;
using netmond::test::FakeDnsOptions;
using netmond::test::FakeDnsServer;
using netmond::test::LoopFixture;

namespace {

constexpr const char* kDig = "/usr/bin/dig";

struct Header {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  int rcode = 0;
  int qd = 0, an = 0;
  bool qr() const { return (flags & 0x8000) != 0; }
  bool aa() const { return (flags & 0x0400) != 0; }
  bool tc() const { return (flags & 0x0200) != 0; }
  bool rd() const { return (flags & 0x0100) != 0; }
  bool ra() const { return (flags & 0x0080) != 0; }
  bool ad() const { return (flags & 0x0020) != 0; }
};

std::uint16_t u16(std::string_view s, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(s[at]) << 8) |
                                    static_cast<unsigned char>(s[at + 1]));
}

Header header(std::string_view m) {
  REQUIRE(m.size() >= 12);
  Header h;
  h.id = u16(m, 0);
  h.flags = u16(m, 2);
  h.rcode = h.flags & 0x0f;
  h.qd = u16(m, 4);
  h.an = u16(m, 6);
  return h;
}

// The first question's name, read without compression ("" when it is not plain labels).
std::string question_name(std::string_view m) {
  std::string name;
  for (std::size_t pos = 12; pos < m.size();) {
    auto len = static_cast<unsigned char>(m[pos]);
    if (len == 0) return name;
    if (len > 63 || pos + 1 + len > m.size()) return "";
    if (!name.empty()) name += '.';
    name.append(m.substr(pos + 1, len));
    pos += 1 + len;
  }
  return "";
}

struct DigRecord {
  std::uint32_t ttl = 0;
  std::string data;
};

// dig's answer section for name/type, records of that owner and type only.
std::vector<DigRecord> dig(const Dnsmasq& d, const std::string& name, const std::string& type) {
  auto r = test::run({kDig, "@127.0.0.1", "-p", std::to_string(d.port()), "+noall", "+answer",
                      "+nosearch", "+time=2", "+tries=1", name, type},
                     10s);
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::vector<DigRecord> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string owner, klass, rtype;
    DigRecord rec;
    fields >> owner >> rec.ttl >> klass >> rtype;
    std::getline(fields, rec.data);
    rec.data.erase(0, rec.data.find_first_not_of(" \t"));
    if (owner == name && rtype == type) out.push_back(rec);
  }
  return out;
}

}  // namespace

TEST_CASE("dns fixture: dnsmasq serves every record it lists, as dig prints them",
          "[dns-fixture]") {
  if (::access(kDig, X_OK) != 0) {
    WARN("no " << kDig << " (package bind9-dnsutils): cannot compare with dig");
    return;
  }
  Dnsmasq d;
  std::map<std::pair<std::string, std::string>, std::vector<const test::ZoneRecord*>> groups;
  for (const auto& r : d.records()) groups[{r.name, r.type}].push_back(&r);
  CHECK(groups.size() >= 15);
  for (const auto& [key, records] : groups) {
    INFO(key.first << " " << key.second);
    auto got = dig(d, key.first, key.second);
    std::multiset<std::string> want_data, got_data;
    for (const auto* r : records) want_data.insert(r->data);
    for (const auto& g : got) {
      got_data.insert(g.data);
      CHECK(g.ttl == records.front()->ttl);
    }
    CHECK(got_data == want_data);
  }
  // data() finds them by name and type, as configured.
  CHECK(d.data("MAIL.test.", "mx") == std::vector<std::string>{"10 mx1.test.", "20 mx2.test."});
  CHECK(d.data(Dnsmasq::kHost, "A") == std::vector<std::string>{"192.0.2.1"});
  CHECK(d.data(Dnsmasq::kAlias, "A").empty());
  // www.test A: the CNAME and the target's address.
  CHECK(dig(d, "www.test.", "A").empty());
  CHECK(dig(d, "host.test.", "A").size() == 1);
}

TEST_CASE("dns fixture: dnsmasq's rcodes, flags and truncation", "[dns-fixture]") {
  Dnsmasq d;
  auto ask = [&](std::string_view name, std::uint16_t type) {
    auto reply =
        test::udp_exchange("127.0.0.1", d.port(), test::dns_query_bytes(7, name, type), 2s);
    REQUIRE(reply);
    return *reply;
  };
  Header h = header(ask(Dnsmasq::kHost, 1));
  CHECK(h.id == 7);
  CHECK(h.qr());
  CHECK(h.aa());
  CHECK(h.rd());
  CHECK(h.ra());
  CHECK_FALSE(h.ad());
  CHECK(h.rcode == 0);
  CHECK(h.an == 1);

  h = header(ask(Dnsmasq::kNotAuthoritative, 1));
  CHECK(h.rcode == 0);
  CHECK(h.an == 1);
  CHECK_FALSE(h.aa());

  h = header(ask(Dnsmasq::kMissing, 1));
  CHECK(h.rcode == 3);  // NXDOMAIN
  CHECK(h.an == 0);

  h = header(ask(Dnsmasq::kOutside, 1));
  CHECK(h.rcode == 5);  // REFUSED

  h = header(ask(Dnsmasq::kHost, 15));  // MX of a name with only addresses
  CHECK(h.rcode == 0);
  CHECK(h.an == 0);

  for (auto [name, type] : {std::pair{Dnsmasq::kZone, 6},
                            {Dnsmasq::kZone, 2},
                            {Dnsmasq::kCaa, 257},
                            {Dnsmasq::kService, 33},
                            {Dnsmasq::kHostReverse, 12},
                            {Dnsmasq::kText, 16}}) {
    INFO(name << " type " << type);
    h = header(ask(name, static_cast<std::uint16_t>(type)));
    CHECK(h.rcode == 0);
    CHECK(h.an >= 1);
  }

  // big.test: too big for UDP (512 bytes without EDNS), whole over TCP.
  h = header(ask(Dnsmasq::kBig, 16));
  CHECK(h.tc());
  CHECK(h.an < Dnsmasq::kBigRecords);
  auto full =
      test::tcp_exchange("127.0.0.1", d.port(), test::dns_query_bytes(8, Dnsmasq::kBig, 16), 2s);
  REQUIRE(full);
  CHECK(full->size() > 4096);
  h = header(*full);
  CHECK_FALSE(h.tc());
  CHECK(h.an == Dnsmasq::kBigRecords);

  if (d.has_ipv6()) {
    auto v6 = test::udp_exchange("::1", d.port(), test::dns_query_bytes(9, Dnsmasq::kHost, 28), 2s);
    REQUIRE(v6);
    CHECK(header(*v6).an == 1);
    auto v6tcp =
        test::tcp_exchange("::1", d.port(), test::dns_query_bytes(10, Dnsmasq::kHost, 28), 2s);
    REQUIRE(v6tcp);
    CHECK(header(*v6tcp).an == 1);
  } else {
    WARN("no ::1 here: dnsmasq listens on 127.0.0.1 only");
  }
  CHECK(d.server() == "127.0.0.1:" + std::to_string(d.port()));
}

TEST_CASE("dns fixture: two dnsmasq at once, and none left behind", "[dns-fixture]") {
  pid_t first_pid = 0;
  {
    Dnsmasq a;
    Dnsmasq b;
    CHECK(a.port() != b.port());
    first_pid = a.pid();
    CHECK(first_pid > 0);
    CHECK(test::udp_exchange("127.0.0.1", b.port(), test::dns_query_bytes(1, "host.test", 1), 2s));
  }
  // Stopped and reaped: the pid is gone (or, rarely, reused by something else).
  errno = 0;
  if (::kill(first_pid, 0) == 0) {
    std::string comm;
    std::ifstream in("/proc/" + std::to_string(first_pid) + "/comm");
    in >> comm;
    CHECK(comm != "dnsmasq");
  } else {
    CHECK(errno == ESRCH);
  }
}

TEST_CASE("dns fixture: the fake's replies, fault by fault", "[dns-fixture]") {
  const std::string query = test::dns_query_bytes(0x1234, "host.test", 1);
  auto reply = [&](DnsFault fault, bool tcp = false) {
    return FakeDnsServer::reply(FakeDnsOptions(fault), query, tcp, nullptr);
  };

  test::FakeDnsQuery q;
  auto r = FakeDnsServer::reply(FakeDnsOptions(), query, false, &q);
  REQUIRE(r);
  CHECK(q.id == 0x1234);
  CHECK(q.name == "host.test");
  CHECK(q.type == 1);
  CHECK(q.rd);
  Header h = header(*r);
  CHECK(h.id == 0x1234);
  CHECK(h.qr());
  CHECK(h.rd());
  CHECK(h.ra());
  CHECK_FALSE(h.aa());
  CHECK(h.an == 1);
  CHECK(question_name(*r) == "host.test");
  CHECK(r->ends_with(
      std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01", 16)));

  CHECK(header(*reply(DnsFault::ServFail)).rcode == 2);
  CHECK(header(*reply(DnsFault::NxDomain)).rcode == 3);
  CHECK(header(*reply(DnsFault::Refused)).rcode == 5);
  h = header(*reply(DnsFault::Empty));
  CHECK(h.rcode == 0);
  CHECK(h.an == 0);
  CHECK(header(*reply(DnsFault::WrongId)).id == (0x1234 ^ 0x5555));
  h = header(*reply(DnsFault::Truncated));
  CHECK(h.tc());
  CHECK(h.an == 0);
  h = header(*reply(DnsFault::Truncated, true));
  CHECK_FALSE(h.tc());
  CHECK(h.an == 1);
  h = header(*reply(DnsFault::TruncatedPartial));
  CHECK(h.tc());
  CHECK(h.an == 1);
  CHECK(reply(DnsFault::TruncatedPartial)->size() == query.size() + 12 + 2);
  CHECK(*reply(DnsFault::TruncatedPartial, true) == *reply(DnsFault::Answer, true));
  CHECK(question_name(*reply(DnsFault::OtherQuestion)) == test::kFakeOtherName);
  CHECK_FALSE(reply(DnsFault::Silent));
  CHECK(reply(DnsFault::Noise)->starts_with("this is not"));

  // Garbage: a header and question that match, then a record cut short.
  r = reply(DnsFault::Garbage);
  CHECK(header(*r).id == 0x1234);
  CHECK(header(*r).an == 1);
  CHECK(r->size() == query.size() + 10);

  // CompressionLoop: the answer's owner is "a" + a pointer to that very "a".
  r = reply(DnsFault::CompressionLoop);
  std::size_t at = query.size();
  CHECK(r->substr(at, 2) ==
        "\x01"
        "a");
  CHECK(u16(*r, at + 2) == (0xc000 | at));

  FakeDnsOptions many;
  many.a = {"192.0.2.7", "192.0.2.8"};
  many.aa = true;
  many.ad = true;
  h = header(*FakeDnsServer::reply(many, query, false, nullptr));
  CHECK(h.an == 2);
  CHECK(h.aa());
  CHECK(h.ad());
  // Types it has no records for: NOERROR, empty.
  h = header(*FakeDnsServer::reply(many, test::dns_query_bytes(1, "x.test", 15), false, nullptr));
  CHECK(h.rcode == 0);
  CHECK(h.an == 0);
  // Not a query: no reply.
  CHECK_FALSE(FakeDnsServer::reply(many, "short", false, nullptr));
}

namespace {

// Sends `query` to the fake over UDP or TCP from a plain socket and runs the loop (where
// the fake lives) until a whole reply is there.
std::optional<std::string> exchange(LoopFixture& fixture, std::uint16_t port,
                                    const std::string& query, bool tcp,
                                    std::chrono::milliseconds limit = 2s) {
  auto to = parse_ip("127.0.0.1", port);
  Fd fd(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  // A TCP connect completes in the kernel's backlog without the loop running.
  if (!fd || ::connect(fd.get(), to->get(), to->length) != 0) return std::nullopt;
  std::string out = query;
  if (tcp)
    out.insert(0, std::string{static_cast<char>(query.size() >> 8),
                              static_cast<char>(query.size() & 0xff)});
  if (::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
    return std::nullopt;
  std::string in;
  auto complete = [&] {  // called more than once after the reply is in
    char buf[4096];
    for (pollfd p{fd.get(), POLLIN, 0}; ::poll(&p, 1, 0) == 1;) {
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      if (!tcp) break;
    }
    return tcp ? in.size() >= 2 && in.size() >= 2u + u16(in, 0) : !in.empty();
  };
  if (!fixture.run_until(complete, limit)) return std::nullopt;
  return tcp ? in.substr(2) : in;
}

}  // namespace

TEST_CASE("dns fixture: the fake answers over UDP and TCP on one port and counts",
          "[dns-fixture]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Truncated);
    CHECK(fake.server() == "127.0.0.1:" + std::to_string(fake.port()));
    auto udp = exchange(fixture, fake.port(), test::dns_query_bytes(1, "a.test", 1), false);
    REQUIRE(udp);
    CHECK(header(*udp).tc());
    auto tcp = exchange(fixture, fake.port(), test::dns_query_bytes(2, "b.test", 28), true);
    REQUIRE(tcp);
    CHECK_FALSE(header(*tcp).tc());
    CHECK(header(*tcp).an == 1);
    CHECK(fake.udp_queries() == 1);
    CHECK(fake.tcp_queries() == 1);
    CHECK(fake.tcp_connections() == 1);
    REQUIRE(fake.queries().size() == 2);
    CHECK(fake.queries()[0].name == "a.test");
    CHECK_FALSE(fake.queries()[0].tcp);
    CHECK(fake.queries()[1].name == "b.test");
    CHECK(fake.queries()[1].type == 28);
    CHECK(fake.queries()[1].tcp);

    FakeDnsServer silent(fixture.loop(), DnsFault::Silent);
    CHECK_FALSE(
        exchange(fixture, silent.port(), test::dns_query_bytes(3, "c.test", 1), false, 300ms));
    CHECK(silent.udp_queries() == 1);
  }
  REQUIRE(fixture.finish() == 0);
}
