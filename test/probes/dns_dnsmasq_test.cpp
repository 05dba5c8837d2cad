// The dns probe against a real DNS server: dnsmasq started by the test on a loopback high
// port with static records for every supported type (support/dnsmasq.h). No packet leaves
// this host, and the system's resolvers are never asked.
#include "dns.h"

#include "dns_message.h"
#include "support/dns_spec.h"
#include "support/dnsmasq.h"
#include "support/loop.h"
#include "support/probe_harness.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::Dnsmasq;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

DnsSpec dns_spec(const Dnsmasq& d, std::string_view query, RrType type) {
  return test::loopback_dns_spec(d.port(), query, type);
}

std::unique_ptr<Probe> dns_probe(ProbeHarness& h, const DnsSpec& spec) {
  return make_probe(h.ctx, test::endpoint("127.0.0.1"), spec);
}

Result run(LoopFixture& fixture, Probe& probe) {
  auto r = test::run_probe(fixture, probe);
  REQUIRE(r);
  INFO(r->message << "\n" << r->details.dump(2));
  return *r;
}

std::vector<std::string> flags_of(const Result& r) {
  std::vector<std::string> out;
  if (r.details.contains("flags"))
    for (const auto& f : r.details["flags"]) out.push_back(f.get<std::string>());
  return out;
}

bool has(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The data of the answers of `type`, in the order of details["answers"].
std::vector<std::string> answer_data(const Result& r, std::string_view type) {
  std::vector<std::string> out;
  if (r.details.contains("answers"))
    for (const auto& a : r.details["answers"])
      if (a["type"] == type) out.push_back(a["data"].get<std::string>());
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

TEST_CASE("dns: an A record from dnsmasq is Ok with the answer, flags and details", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(d, Dnsmasq::kHost, RrType::A));
    Result r = run(fixture, *probe);
    INFO(r.message << "\n" << r.details.dump(2));
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A host.test: 192.0.2.1");
    CHECK(r.latency > 0ns);
    CHECK(r.latency < 1s);
    CHECK(r.details["rcode"] == "NOERROR");
    CHECK(r.details["server"] == d.server());
    CHECK(r.details["transport"] == "udp");
    CHECK(r.details["answer_count"] == 1);
    REQUIRE(r.details["answers"].size() == 1);
    const auto& a = r.details["answers"][0];
    CHECK(a["name"] == "host.test.");
    CHECK(a["type"] == "A");
    CHECK(a["ttl"] == Dnsmasq::kTtl);
    CHECK(a["data"] == "192.0.2.1");
    auto flags = flags_of(r);
    CHECK(has(flags, "QR"));
    CHECK(has(flags, "AA"));  // dnsmasq's own records
    CHECK(has(flags, "RD"));
    CHECK(has(flags, "RA"));
    CHECK_FALSE(has(flags, "TC"));
    CHECK_FALSE(has(flags, "AD"));

    // The probe lives across runs: a second run works the same.
    Result again = run(fixture, *probe);
    CHECK(again.status == Status::Ok);
    CHECK(again.message == r.message);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: every supported record type from dnsmasq, in dig's presentation form", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    struct Case {
      std::string_view name;
      RrType type;
    };
    const Case cases[] = {
        {Dnsmasq::kHost, RrType::A},      {Dnsmasq::kMulti, RrType::A},
        {Dnsmasq::kHost, RrType::AAAA},   {Dnsmasq::kMail, RrType::MX},
        {Dnsmasq::kAlias, RrType::CNAME}, {Dnsmasq::kText, RrType::TXT},
        {Dnsmasq::kService, RrType::SRV}, {Dnsmasq::kPtr, RrType::PTR},
        {Dnsmasq::kCaa, RrType::CAA},     {Dnsmasq::kZone, RrType::NS},
        {Dnsmasq::kZone, RrType::SOA},
    };
    for (const auto& c : cases) {
      const std::string type = rr_type_name(static_cast<std::uint16_t>(c.type));
      INFO(type << " " << c.name);
      auto probe = dns_probe(h, dns_spec(d, c.name, c.type));
      Result r = run(fixture, *probe);
      INFO(r.message << "\n" << r.details.dump(2));
      CHECK(r.status == Status::Ok);
      auto want = d.data(c.name, type);
      REQUIRE_FALSE(want.empty());
      auto got = answer_data(r, type);
      CHECK(std::multiset<std::string>(got.begin(), got.end()) ==
            std::multiset<std::string>(want.begin(), want.end()));
      // The message lists the answers in the order they came.
      CHECK(r.message == type + " " + std::string(c.name) + ": " + joined(got));
      for (const auto& a : r.details["answers"]) {
        CHECK(a["name"] == std::string(c.name) + ".");
        CHECK(a["ttl"] == Dnsmasq::kTtl);
      }
      CHECK(r.details["answer_count"] == want.size());
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: messages of single records, exactly", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto message = [&](std::string_view name, RrType type) {
      auto probe = dns_probe(h, dns_spec(d, name, type));
      Result r = run(fixture, *probe);
      CHECK(r.status == Status::Ok);
      return r.message;
    };
    CHECK(message(Dnsmasq::kHost, RrType::AAAA) == "AAAA host.test: 2001:db8::1");
    CHECK(message(Dnsmasq::kAlias, RrType::CNAME) == "CNAME www.test: host.test.");
    CHECK(message(Dnsmasq::kService, RrType::SRV) == "SRV _sip._tcp.test: 10 60 5060 sip.test.");
    CHECK(message(Dnsmasq::kCaa, RrType::CAA) == "CAA caa.test: 0 issue \"letsencrypt.org\"");
    CHECK(message(Dnsmasq::kZone, RrType::SOA) ==
          "SOA test: ns1.test. hostmaster.test. 2024010101 3600 600 86400 300");
    CHECK(message(Dnsmasq::kPtr, RrType::PTR) == "PTR ptr.test: host.test.");
    // Several character-strings in one TXT record, each quoted.
    std::string txt = message(Dnsmasq::kText, RrType::TXT);
    CHECK_THAT(txt, Catch::StartsWith("TXT txt.test: ") && Catch::Contains("\"v=spf1 -all\"") &&
                        Catch::Contains("\"hello\" \"world\""));
    std::string mx = message(Dnsmasq::kMail, RrType::MX);
    CHECK_THAT(mx, Catch::StartsWith("MX mail.test: ") && Catch::Contains("10 mx1.test.") &&
                       Catch::Contains("20 mx2.test."));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: an A query for a CNAME counts only the A records", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(d, Dnsmasq::kAlias, RrType::A));
    Result r = run(fixture, *probe);
    INFO(r.message << "\n" << r.details.dump(2));
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A www.test: 192.0.2.1");
    CHECK(r.details["answer_count"] == 2);  // the CNAME and the A
    REQUIRE(r.details["answers"].size() == 2);
    CHECK(r.details["answers"][0]["type"] == "CNAME");
    CHECK(r.details["answers"][0]["data"] == "host.test.");
    CHECK(r.details["answers"][1]["name"] == "host.test.");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: PTR with an IP address as query asks for its reverse name", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(d, Dnsmasq::kHostIp, RrType::PTR));
    Result r = run(fixture, *probe);
    INFO(r.message << "\n" << r.details.dump(2));
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "PTR 1.2.0.192.in-addr.arpa: host.test.");
    REQUIRE(r.details["answers"].size() == 1);
    CHECK(r.details["answers"][0]["name"] == "1.2.0.192.in-addr.arpa.");

    auto v6 = dns_probe(h, dns_spec(d, Dnsmasq::kHostIp6, RrType::PTR));
    r = run(fixture, *v6);
    CHECK(r.status == Status::Ok);
    CHECK(
        r.message ==
        "PTR 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa: host.test.");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: NXDOMAIN, REFUSED and an empty answer are Unexpected", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto nx = dns_probe(h, dns_spec(d, Dnsmasq::kMissing, RrType::A));
    Result r = run(fixture, *nx);
    CHECK(r.status == Status::Unexpected);
    CHECK(r.message == "NXDOMAIN");
    CHECK(r.details["rcode"] == "NXDOMAIN");
    CHECK(r.details["answer_count"] == 0);

    // NXDOMAIN as the expected rcode, with no answers required: Ok.
    DnsSpec expect_nx = dns_spec(d, Dnsmasq::kMissing, RrType::A);
    expect_nx.expect_rcode = 3;
    expect_nx.min_answers = 0;
    auto nx_ok = dns_probe(h, expect_nx);
    r = run(fixture, *nx_ok);
    CHECK(r.status == Status::Ok);

    // dnsmasq has no upstream for names outside test.
    auto refused = dns_probe(h, dns_spec(d, Dnsmasq::kOutside, RrType::A));
    r = run(fixture, *refused);
    CHECK(r.status == Status::Unexpected);
    CHECK(r.message == "REFUSED");
    CHECK(r.details["rcode"] == "REFUSED");

    // host.test has addresses but no MX: NOERROR without answers.
    auto empty = dns_probe(h, dns_spec(d, Dnsmasq::kHost, RrType::MX));
    r = run(fixture, *empty);
    CHECK(r.status == Status::Unexpected);
    CHECK(r.message == "no answer for host.test IN MX");
    CHECK(r.details["rcode"] == "NOERROR");

    DnsSpec allow_empty = dns_spec(d, Dnsmasq::kHost, RrType::MX);
    allow_empty.min_answers = 0;
    auto empty_ok = dns_probe(h, allow_empty);
    r = run(fixture, *empty_ok);
    CHECK(r.status == Status::Ok);
    CHECK(r.details["answer_count"] == 0);

    DnsSpec three = dns_spec(d, Dnsmasq::kMulti, RrType::A);
    three.min_answers = 3;
    auto too_few = dns_probe(h, three);
    r = run(fixture, *too_few);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::Contains("2 answers"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: expect patterns match an answer's presentation form", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    DnsSpec mx = dns_spec(d, Dnsmasq::kMail, RrType::MX);
    mx.expect = {"^10 mx1\\.test\\.$", "^20 "};
    auto ok = dns_probe(h, mx);
    Result r = run(fixture, *ok);
    CHECK(r.status == Status::Ok);

    DnsSpec a = dns_spec(d, Dnsmasq::kHost, RrType::A);
    a.expect = {"^198\\."};
    auto mismatch = dns_probe(h, a);
    r = run(fixture, *mismatch);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::StartsWith("answer 192.0.2.1 did not match expect"));

    // Each pattern must match: the second one matches nothing.
    DnsSpec both = dns_spec(d, Dnsmasq::kMulti, RrType::A);
    both.expect = {"^192\\.0\\.2\\.10$", "^192\\.0\\.2\\.99$"};
    auto one_of_two = dns_probe(h, both);
    r = run(fixture, *one_of_two);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::Contains("did not match expect"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: expect_flags and the RD bit", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    DnsSpec aa = dns_spec(d, Dnsmasq::kHost, RrType::A);
    aa.expect_flags = {"AA"};
    auto authoritative = dns_probe(h, aa);
    Result r = run(fixture, *authoritative);
    CHECK(r.status == Status::Ok);

    // dnsmasq answers host.plain.test (an auth zone, asked on its recursive port) without AA.
    DnsSpec not_aa = dns_spec(d, Dnsmasq::kNotAuthoritative, RrType::A);
    not_aa.expect_flags = {"AA"};
    auto plain = dns_probe(h, not_aa);
    r = run(fixture, *plain);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::Contains("AA"));
    CHECK_FALSE(has(flags_of(r), "AA"));

    // dnsmasq does not validate: never AD.
    DnsSpec ad = dns_spec(d, Dnsmasq::kHost, RrType::A);
    ad.expect_flags = {"AD"};
    auto validated = dns_probe(h, ad);
    r = run(fixture, *validated);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::Contains("AD"));

    // recursion: false sends RD clear, and dnsmasq echoes the bit.
    DnsSpec no_rd = dns_spec(d, Dnsmasq::kHost, RrType::A);
    no_rd.recursion = false;
    auto iterative = dns_probe(h, no_rd);
    r = run(fixture, *iterative);
    CHECK(r.status == Status::Ok);
    CHECK_FALSE(has(flags_of(r), "RD"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: a UDP answer with TC set is asked again over TCP", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(d, Dnsmasq::kBig, RrType::TXT));
    Result r = run(fixture, *probe);
    INFO(r.message.substr(0, 200));
    CHECK(r.status == Status::Ok);
    CHECK(r.details["transport"] == "tcp");
    CHECK(r.details["answer_count"] == Dnsmasq::kBigRecords);
    CHECK_FALSE(has(flags_of(r), "TC"));
    CHECK_THAT(r.message, Catch::StartsWith("TXT big.test: \"record "));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: protocol tcp asks over TCP, also on ::1", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    DnsSpec tcp = dns_spec(d, Dnsmasq::kHost, RrType::A);
    tcp.tcp = true;
    auto probe = dns_probe(h, tcp);
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A host.test: 192.0.2.1");
    CHECK(r.details["transport"] == "tcp");

    if (!d.has_ipv6()) {
      WARN("no ::1 here");
    } else {
      for (bool over_tcp : {false, true}) {
        DnsSpec v6 = dns_spec(d, Dnsmasq::kHost, RrType::AAAA);
        v6.server = "::1";
        v6.tcp = over_tcp;
        auto p6 = make_probe(h.ctx, test::endpoint("::1"), v6);
        r = run(fixture, *p6);
        CHECK(r.status == Status::Ok);
        CHECK(r.message == "AAAA host.test: 2001:db8::1");
        CHECK(r.details["server"] == "[::1]:" + std::to_string(d.port()));
        CHECK(r.details["transport"] == (over_tcp ? "tcp" : "udp"));
      }
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: 500 concurrent probes on one channel all get their own answer", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    struct Ask {
      std::string_view name;
      RrType type;
      std::string message;  // "" = only a prefix is known (several records)
    };
    const Ask asks[] = {
        {Dnsmasq::kHost, RrType::A, "A host.test: 192.0.2.1"},
        {Dnsmasq::kHost, RrType::AAAA, "AAAA host.test: 2001:db8::1"},
        {Dnsmasq::kAlias, RrType::CNAME, "CNAME www.test: host.test."},
        {Dnsmasq::kService, RrType::SRV, "SRV _sip._tcp.test: 10 60 5060 sip.test."},
        {Dnsmasq::kMail, RrType::MX, ""},
    };
    constexpr int kProbes = 500;
    std::vector<std::unique_ptr<Probe>> probes;
    std::vector<std::optional<Result>> results(kProbes);
    int done = 0;
    for (int i = 0; i < kProbes; ++i) {
      const Ask& a = asks[i % std::size(asks)];
      probes.push_back(dns_probe(h, dns_spec(d, a.name, a.type)));
    }
    uv_update_time(fixture.loop());
    for (int i = 0; i < kProbes; ++i)
      probes[i]->start(5s, [&, i](Result r) {
        results[i] = std::move(r);
        ++done;
      });
    fixture.run_until([&] { return done == kProbes; }, 10s);
    CHECK(done == kProbes);
    CHECK(h.dns.size() <= 1);  // one channel for all (released once they finished)
    int ok = 0, wrong = 0;
    for (int i = 0; i < kProbes; ++i) {
      if (!results[i]) continue;
      const Ask& a = asks[i % std::size(asks)];
      const std::string prefix =
          rr_type_name(static_cast<std::uint16_t>(a.type)) + " " + std::string(a.name) + ": ";
      bool right = results[i]->status == Status::Ok &&
                   (a.message.empty() ? results[i]->message.starts_with(prefix)
                                      : results[i]->message == a.message);
      if (right) {
        ++ok;
      } else if (++wrong <= 5) {
        UNSCOPED_INFO("probe " << i << ": " << results[i]->message);
      }
    }
    CHECK(ok == kProbes);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: 500 probes share one channel while they run", "[dns]") {
  Dnsmasq d;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    std::vector<std::unique_ptr<Probe>> probes;
    int done = 0;
    for (int i = 0; i < 500; ++i)
      probes.push_back(dns_probe(h, dns_spec(d, Dnsmasq::kHost, RrType::A)));
    uv_update_time(fixture.loop());
    for (auto& p : probes) p->start(5s, [&](Result) { ++done; });
    // The channel comes once the server address is resolved (a later turn).
    std::size_t most = 0;
    fixture.run_until(
        [&] {
          most = std::max(most, h.dns.size());
          return done == 500;
        },
        10s);
    CHECK(most == 1);
    CHECK(done == 500);
    probes.clear();
    fixture.run_for(10ms);
    CHECK(h.dns.size() == 0);  // destroyed on a later turn once nobody holds it
  }
  REQUIRE(fixture.finish() == 0);
}
