// The dns probe against a fake DNS server on the test's loop (support/dns_fakes.h): the
// faults a real server will not produce on demand. Loopback only.
#include "dns.h"

#include "base/uv.h"
#include "dns_message.h"
#include "support/dns_fakes.h"
#include "support/dns_spec.h"
#include "support/loop.h"
#include "support/peers.h"
#include "support/probe_harness.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <string>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::DnsFault;
using netmond::test::FakeDnsOptions;
using netmond::test::FakeDnsServer;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

constexpr std::string_view kName = "fake.test";

DnsSpec dns_spec(const FakeDnsServer& fake, RrType type = RrType::A) {
  return test::loopback_dns_spec(fake.port(), kName, type);
}

std::unique_ptr<Probe> dns_probe(ProbeHarness& h, const DnsSpec& spec) {
  return make_probe(h.ctx, test::endpoint("127.0.0.1"), spec);
}

Result run(LoopFixture& fixture, Probe& probe) {
  auto r = test::run_probe(fixture, probe);
  REQUIRE(r);
  return *r;
}

bool has_flag(const Result& r, std::string_view flag) {
  if (!r.details.contains("flags")) return false;
  const auto& f = r.details["flags"];
  return std::find(f.begin(), f.end(), std::string(flag)) != f.end();
}

}  // namespace

TEST_CASE("dns fake: a plain answer is Ok, and the query is as configured", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Answer);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = run(fixture, *probe);
    INFO(r.message << "\n" << r.details.dump(2));
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A fake.test: 192.0.2.1");
    CHECK(r.details["server"] == fake.server());
    CHECK(r.details["transport"] == "udp");
    CHECK(r.details["rcode"] == "NOERROR");
    CHECK(r.details["answers"][0]["ttl"] == 60);
    CHECK(has_flag(r, "QR"));
    CHECK_FALSE(has_flag(r, "AA"));
    CHECK(fake.udp_queries() == 1);
    CHECK(fake.tcp_queries() == 0);
    REQUIRE(fake.queries().size() == 1);
    CHECK(fake.queries()[0].name == kName);
    CHECK(fake.queries()[0].type == 1);
    CHECK(fake.queries()[0].rd);

    DnsSpec no_rd = dns_spec(fake);
    no_rd.recursion = false;
    auto iterative = dns_probe(h, no_rd);
    r = run(fixture, *iterative);
    CHECK(r.status == Status::Ok);
    REQUIRE(fake.queries().size() == 2);
    CHECK_FALSE(fake.queries()[1].rd);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: rcodes SERVFAIL, NXDOMAIN, REFUSED are Unexpected", "[dns]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (auto [fault, name] : {std::pair{DnsFault::ServFail, "SERVFAIL"},
                               {DnsFault::NxDomain, "NXDOMAIN"},
                               {DnsFault::Refused, "REFUSED"}}) {
      INFO(name);
      FakeDnsServer fake(fixture.loop(), fault);
      auto probe = dns_probe(h, dns_spec(fake));
      Result r = run(fixture, *probe);
      CHECK(r.status == Status::Unexpected);
      CHECK(r.message == name);
      CHECK(r.details["rcode"] == name);
      // Asked once: an rcode is an answer, not a reason to try again.
      CHECK(fake.udp_queries() == 1);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: an empty answer is Unexpected unless min_answers is 0", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Empty);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Unexpected);
    CHECK(r.message == "no answer for fake.test IN A");
    CHECK(r.details["answer_count"] == 0);

    DnsSpec any = dns_spec(fake);
    any.min_answers = 0;
    auto allowed = dns_probe(h, any);
    r = run(fixture, *allowed);
    CHECK(r.status == Status::Ok);

    // The seed's CNAME check: an answer with records of another type only.
    FakeDnsServer answers(fixture.loop(), DnsFault::Answer);
    auto cname = dns_probe(h, dns_spec(answers, RrType::CNAME));
    r = run(fixture, *cname);
    CHECK(r.status == Status::Unexpected);
    CHECK(r.message == "no answer for fake.test IN CNAME");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: garbage and a compression loop are BadResponse", "[dns]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeDnsServer garbage(fixture.loop(), DnsFault::Garbage);
    auto probe = dns_probe(h, dns_spec(garbage));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::BadResponse);
    CHECK_THAT(r.message, Catch::StartsWith("malformed response"));

    FakeDnsServer loop(fixture.loop(), DnsFault::CompressionLoop);
    auto looped = dns_probe(h, dns_spec(loop));
    r = run(fixture, *looped);
    CHECK(r.status == Status::BadResponse);
    CHECK_THAT(r.message, Catch::StartsWith("malformed response") && Catch::Contains("loop"));
    // The probe lives on: the next run against a sane server is Ok.
    loop.set_options(FakeDnsOptions(DnsFault::Answer));
    r = run(fixture, *looped);
    CHECK(r.status == Status::Ok);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: a reply with a wrong id is ignored, then the deadline passes", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::WrongId);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = test::run_with_expiry(fixture, *probe, 500ms);
    CHECK(r.status == Status::Timeout);
    CHECK_THAT(r.message, Catch::StartsWith("timeout after"));
    CHECK(fake.udp_queries() >= 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: bytes that are no DNS message are ignored, then the deadline passes",
          "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Noise);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = test::run_with_expiry(fixture, *probe, 500ms);
    CHECK(r.status == Status::Timeout);
    CHECK_THAT(r.message, Catch::StartsWith("timeout after"));
  }
  REQUIRE(fixture.finish() == 0);
}

// c-ares 1.18 matches every reply to its query on id and question (same_questions() in
// ares_process.c) and drops the rest: a reply about another name never ends a run.
TEST_CASE("dns fake: a response for a different question is ignored, then a timeout", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::OtherQuestion);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = test::run_with_expiry(fixture, *probe, 500ms);
    INFO(r.message);
    CHECK(r.status == Status::Timeout);
    CHECK_THAT(r.message, Catch::StartsWith("timeout after"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: silence is a Timeout", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Silent);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = test::run_with_expiry(fixture, *probe, 500ms);
    CHECK(r.status == Status::Timeout);
    CHECK_THAT(r.message, Catch::StartsWith("timeout after"));
    CHECK(r.details["server"] == fake.server());
    CHECK(fake.udp_queries() >= 1);

    fake.set_options(FakeDnsOptions(DnsFault::Answer));
    r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: an answer after expire() never reaches the run", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Silent);
    ProbeHarness h(fixture.loop());
    // Two probes on one channel (same server, same options): `other` keeps the channel,
    // and so c-ares's retries, alive after `cut`'s deadline.
    auto cut = dns_probe(h, dns_spec(fake));
    auto other = dns_probe(h, dns_spec(fake));
    // 5 s runs (c-ares asks again after ~714 ms); `cut`'s deadline comes at 300 ms, then
    // the fake answers the retries, including the one of the query nobody waits for.
    int cut_calls = 0;
    std::optional<Result> expired, other_result;
    uv::Timer deadline(fixture.loop());
    uv_update_time(fixture.loop());
    cut->start(5s, [&](Result) { ++cut_calls; });
    other->start(5s, [&](Result r) { other_result = std::move(r); });
    deadline.start(300ms, [&] {
      expired = cut->expire();
      fake.set_options(FakeDnsOptions(DnsFault::Answer));
    });
    REQUIRE(fixture.run_until([&] { return expired.has_value(); }, 2s));
    CHECK(expired->status == Status::Timeout);
    CHECK_THAT(expired->message, Catch::StartsWith("timeout after"));
    const int asked = fake.udp_queries();
    CHECK(fixture.run_until([&] { return other_result.has_value(); }, 3s));
    fixture.run_for(200ms);
    CHECK(cut_calls == 0);
    REQUIRE(other_result);
    CHECK(other_result->status == Status::Ok);
    // Both queries were asked again and answered.
    CHECK(fake.udp_queries() >= asked + 2);

    // The cut probe runs again as new.
    Result r = run(fixture, *cut);
    CHECK(r.status == Status::Ok);
    CHECK(cut_calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: no EDNS: a UDP answer up to 512 bytes is whole, a longer one is not",
          "[dns]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto addresses = [](int n) {
      FakeDnsOptions o;
      o.a.clear();
      for (int i = 1; i <= n; ++i) o.a.push_back("192.0.2." + std::to_string(i));
      return o;
    };
    // 30 A records: 12 + 14 + 30 * 16 = 506 bytes.
    FakeDnsServer fits(fixture.loop(), addresses(30));
    auto probe = dns_probe(h, dns_spec(fits));
    Result r = run(fixture, *probe);
    INFO(r.message.substr(0, 200));
    CHECK(r.status == Status::Ok);
    CHECK(r.details["transport"] == "udp");
    CHECK(r.details["answer_count"] == 30);
    REQUIRE(fits.queries().size() == 1);
    CHECK_FALSE(fits.queries()[0].edns);  // the probe offers no EDNS(0)

    // 60 records (986 bytes) without TC from a server asked without EDNS: a protocol
    // violation, which c-ares 1.18 cuts at 512 bytes.
    FakeDnsServer too_long(fixture.loop(), addresses(60));
    auto longer = dns_probe(h, dns_spec(too_long));
    r = run(fixture, *longer);
    CHECK(r.status == Status::BadResponse);
    CHECK_THAT(r.message, Catch::StartsWith("malformed response"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: TC over UDP is asked again over TCP", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Truncated);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = run(fixture, *probe);
    INFO(r.message << "\n" << r.details.dump(2));
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A fake.test: 192.0.2.1");
    CHECK(r.details["transport"] == "tcp");
    CHECK_FALSE(has_flag(r, "TC"));
    CHECK(fake.udp_queries() == 1);
    CHECK(fake.tcp_queries() == 1);
    CHECK(fake.tcp_connections() == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: TC over UDP with a partial record is asked again over TCP", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::TruncatedPartial);
    ProbeHarness h(fixture.loop());
    auto probe = dns_probe(h, dns_spec(fake));
    Result r = run(fixture, *probe);
    INFO(r.message << "\n" << r.details.dump(2));
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A fake.test: 192.0.2.1");
    CHECK(r.details["transport"] == "tcp");
    CHECK(fake.udp_queries() == 1);
    CHECK(fake.tcp_queries() == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: protocol tcp asks over TCP only", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsServer fake(fixture.loop(), DnsFault::Answer);
    ProbeHarness h(fixture.loop());
    DnsSpec spec = dns_spec(fake);
    spec.tcp = true;
    auto probe = dns_probe(h, spec);
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK(r.details["transport"] == "tcp");
    CHECK(fake.udp_queries() == 0);
    CHECK(fake.tcp_queries() == 1);
    REQUIRE(fake.queries().size() == 1);
    CHECK(fake.queries()[0].tcp);

    // A server that says nothing over TCP either: the deadline ends it.
    FakeDnsServer silent(fixture.loop(), DnsFault::Silent);
    DnsSpec quiet = dns_spec(silent);
    quiet.tcp = true;
    auto waiting = dns_probe(h, quiet);
    r = test::run_with_expiry(fixture, *waiting, 500ms);
    CHECK(r.status == Status::Timeout);
    CHECK(silent.udp_queries() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: expect_flags against the header bits", "[dns]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeDnsServer plain(fixture.loop(), DnsFault::Answer);
    DnsSpec want_aa = dns_spec(plain);
    want_aa.expect_flags = {"AA"};
    auto probe = dns_probe(h, want_aa);
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::Contains("AA"));

    FakeDnsOptions flags;
    flags.aa = true;
    flags.ad = true;
    FakeDnsServer validating(fixture.loop(), flags);
    DnsSpec both = dns_spec(validating);
    both.expect_flags = {"AA", "AD"};
    auto ok = dns_probe(h, both);
    r = run(fixture, *ok);
    CHECK(r.status == Status::Ok);
    CHECK(has_flag(r, "AA"));
    CHECK(has_flag(r, "AD"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns fake: several records and an expect pattern", "[dns]") {
  LoopFixture fixture;
  {
    FakeDnsOptions o;
    o.a = {"192.0.2.7", "192.0.2.8"};
    FakeDnsServer fake(fixture.loop(), o);
    ProbeHarness h(fixture.loop());
    DnsSpec spec = dns_spec(fake);
    spec.expect = {"\\.8$"};
    auto probe = dns_probe(h, spec);
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "A fake.test: 192.0.2.7, 192.0.2.8");
    CHECK(r.details["answer_count"] == 2);

    spec.expect = {"^10\\."};
    auto mismatch = dns_probe(h, spec);
    r = run(fixture, *mismatch);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::StartsWith("answer 192.0.2.7 did not match expect"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: source_address and interface bind the query's socket", "[dns]") {
  LoopFixture fixture;
  {
    // A bare UDP peer that answers NXDOMAIN and remembers who asked.
    test::UdpPeer peer(fixture.loop(), "127.0.0.1",
                       [](std::string_view query) { return test::nxdomain_reply(query); });
    ProbeHarness h(fixture.loop());
    Endpoint e = test::endpoint("127.0.0.1");
    e.source_address = "127.0.0.2";
    e.interface = "lo";
    auto probe = make_probe(h.ctx, e, test::loopback_dns_spec(peer.port(), kName, RrType::A));
    Result r = run(fixture, *probe);
    INFO(r.message);
    CHECK(r.status == Status::Unexpected);
    CHECK(r.message == "NXDOMAIN");
    REQUIRE(peer.last_sender());
    CHECK(peer.last_sender()->ip() == "127.0.0.2");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("dns: an interface or source address that cannot be bound is a local error", "[dns]") {
  LoopFixture fixture;
  {
    test::UdpPeer peer(fixture.loop(), "127.0.0.1",
                       [](std::string_view query) { return test::nxdomain_reply(query); });
    ProbeHarness h(fixture.loop());
    Endpoint bad_device = test::endpoint("127.0.0.1");
    bad_device.interface = "nosuchdev0";
    Endpoint bad_source = test::endpoint("127.0.0.1");
    bad_source.source_address = "192.0.2.1";  // not this host's: bind() says so, nothing is sent
    struct Case {
      Endpoint endpoint;
      std::string message;
    };
    for (const Case& c :
         {Case{bad_device, "cannot bind to interface 'nosuchdev0': no such device"},
          Case{bad_source, "cannot bind to source address 192.0.2.1: address not available"}}) {
      auto probe =
          make_probe(h.ctx, c.endpoint, test::loopback_dns_spec(peer.port(), kName, RrType::A));
      Result r = run(fixture, *probe);
      CHECK(r.status == Status::LocalError);
      CHECK(r.message == c.message);
    }
    CHECK(peer.received() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}
