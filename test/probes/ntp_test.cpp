// The ntp probe against a real NTP server, chronyd on a loopback high port serving this
// host's clock at stratum 8 (support/chronyd.h), and against a fake NTP server on the
// test's loop (support/ntp_fakes.h) for the answers a real server will not give on demand
// (kisses, spoofed origins, unsynchronised or malformed replies, a clock 5 s off,
// per-request delays). Loopback only.
#include "ntp.h"

#include "support/chronyd.h"
#include "support/loop.h"
#include "support/ntp_fakes.h"
#include "support/peers.h"
#include "support/probe_harness.h"
#include "support/process.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <string>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::Chronyd;
using netmond::test::FakeNtpOptions;
using netmond::test::FakeNtpServer;
using netmond::test::LoopFixture;
using netmond::test::NtpFault;
using netmond::test::ProbeHarness;

namespace {

// The defaults, aimed at a test's server (a FakeNtpServer or Chronyd) on 127.0.0.1.
template <typename Server>
NtpSpec spec_for(const Server& server) {
  NtpSpec s;
  s.port = server.port();
  return s;
}

FakeNtpOptions kiss(std::string code) {
  FakeNtpOptions o(NtpFault::Kiss);
  o.kiss = std::move(code);
  return o;
}

std::unique_ptr<Probe> ntp_probe(ProbeHarness& h, const NtpSpec& spec,
                                 const std::string& host = "127.0.0.1") {
  return make_probe(h.ctx, test::endpoint(host), spec);
}

Result run(LoopFixture& fixture, Probe& probe, std::chrono::milliseconds deadline = 1s) {
  return test::run_with_expiry(fixture, probe, deadline);
}

std::string from(const FakeNtpServer& fake) { return "127.0.0.1:" + std::to_string(fake.port()); }

}  // namespace

// ---- chronyd ----------------------------------------------------------------------------

TEST_CASE("ntp chronyd: up, stratum 8, offset near zero", "[ntp]") {
  Chronyd chronyd;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(chronyd));
    bool expired = true;
    Result r = test::run_with_expiry(fixture, *probe, 2s, &expired);
    INFO(r.message << "\n" << r.details.dump(2) << "\nchronyd:\n" << chronyd.log());
    CHECK_FALSE(expired);
    CHECK(r.status == Status::Ok);
    CHECK_THAT(r.message, Catch::Matches(R"(offset [+-]0\.\d{6} s, delay 0\.\d{6} s, stratum 8, )"
                                         R"(ref 127\.127\.1\.1)"));
    // The same clock on both ends: the offset is scheduling noise.
    CHECK(std::fabs(r.details["offset_s"].get<double>()) < 0.1);
    CHECK(r.details["delay_s"].get<double>() < 0.1);
    CHECK(r.details["stratum"] == Chronyd::kStratum);
    CHECK(r.details["reference_id"] == "127.127.1.1");
    CHECK(r.details["leap"] == 0);
    CHECK(r.details["root_dispersion_s"].get<double>() < 1.0);

    // The probe runs again with fresh sockets, and a stricter max_stratum fails.
    CHECK(test::run_with_expiry(fixture, *probe, 2s).status == Status::Ok);
    NtpSpec strict = spec_for(chronyd);
    strict.max_stratum = 7;
    auto picky = ntp_probe(h, strict);
    Result u = test::run_with_expiry(fixture, *picky, 2s);
    CHECK(u.status == Status::Unexpected);
    CHECK_THAT(u.message, Catch::StartsWith("stratum 8 exceeds max_stratum 7 (offset "));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp chronyd: several samples, the lowest delay reported", "[ntp]") {
  Chronyd chronyd;
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    NtpSpec spec = spec_for(chronyd);
    spec.samples = 4;
    spec.spacing = 100ms;
    auto probe = ntp_probe(h, spec);
    bool expired = true;
    Result r = test::run_with_expiry(fixture, *probe, 3s, &expired);
    INFO(r.message << "\n" << r.details.dump(2) << "\nchronyd:\n" << chronyd.log());
    CHECK_FALSE(expired);
    CHECK(r.status == Status::Ok);
    CHECK_THAT(r.message, Catch::EndsWith(", best of 4/4 samples"));
    CHECK(r.details["answered"] == 4);
    CHECK(std::fabs(r.details["offset_s"].get<double>()) < 0.1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp chronyd: netmond --once checks it from a configuration file", "[ntp]") {
  Chronyd chronyd;
  const std::string cfg = test::write_file(test::temp_dir(), "ntp.yaml",
                                           "servers:\n"
                                           "  - address: 127.0.0.1\n"
                                           "    services:\n"
                                           "      - {type: ntp, name: local-ntp, port: " +
                                               std::to_string(chronyd.port()) +
                                               ", max_offset: 100ms, max_stratum: 8}\n");
  auto r = test::run({test::netmond_bin(), "--once", "--log-format", "json", "-c", cfg}, 20s);
  INFO(r.out << r.err << "\nchronyd:\n" << chronyd.log());
  CHECK(r.code == 0);
  const auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  CHECK(j["check"] == "local-ntp");
  CHECK(j["type"] == "ntp");
  CHECK(j["target"] == "127.0.0.1:" + std::to_string(chronyd.port()));
  CHECK(j["ok"] == true);
  CHECK(j["details"]["stratum"] == Chronyd::kStratum);
}

// ---- The fake -----------------------------------------------------------------------------

TEST_CASE("ntp fake: a good answer is Ok, with the offset, delay, stratum and ref", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpServer fake(fixture.loop(), NtpFault::Answer);
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(fake));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK_THAT(r.message, Catch::Matches(R"(offset [+-]0\.\d{6} s, delay 0\.\d{6} s, stratum 2, )"
                                         R"(ref 192\.0\.2\.1)"));
    CHECK(std::fabs(r.details["offset_s"].get<double>()) < 0.1);
    CHECK(r.details["delay_s"].get<double>() < 0.1);
    CHECK(r.details["stratum"] == 2);
    CHECK(r.details["reference_id"] == "192.0.2.1");
    CHECK(r.details["leap"] == 0);
    CHECK(r.details["root_delay_s"] == 0.0625);
    CHECK(r.details["root_dispersion_s"] == 0.03125);
    CHECK(r.details["poll"] == 6);
    CHECK(r.details["precision"] == -20);
    CHECK(r.details["address"] == "127.0.0.1");
    CHECK(r.details["port"] == fake.port());
    CHECK(r.details["sent"] == 1);
    CHECK(r.details["answered"] == 1);

    // The request: 48 bytes, version 4 client mode, nothing but precision 32 and the
    // random transmit timestamp, which differs from run to run.
    REQUIRE(fake.requests().size() == 1);
    const std::string q = fake.requests()[0].bytes;
    REQUIRE(q.size() == 48);
    CHECK(q[0] == 0x23);
    CHECK(q[3] == 32);
    CHECK(q.substr(4, 36) == std::string(36, '\0'));
    CHECK(q.substr(40, 8) != std::string(8, '\0'));
    r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    REQUIRE(fake.requests().size() == 2);
    CHECK(fake.requests()[1].bytes.substr(40) != q.substr(40));
    // After a run that succeeded the socket is kept, so the source port is the same: the
    // nonce, not the port, ties an answer to its request.
    CHECK(fake.requests()[1].from.same_endpoint(fake.requests()[0].from));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: a stratum 1 server's reference is its ASCII name", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpOptions o;
    o.stratum = 1;
    o.reference_id = 0x47505300;  // "GPS"
    FakeNtpServer fake(fixture.loop(), o);
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(fake));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK_THAT(r.message, Catch::EndsWith("stratum 1, ref GPS"));
    CHECK(r.details["reference_id"] == "GPS");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: an offset beyond max_offset is Unexpected, either way", "[ntp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (double offset : {5.0, -5.0}) {
      INFO("offset " << offset);
      FakeNtpOptions o;
      o.offset = offset;
      FakeNtpServer fake(fixture.loop(), o);
      auto probe = ntp_probe(h, spec_for(fake));
      Result r = run(fixture, *probe);
      CHECK(r.status == Status::Unexpected);
      CHECK_THAT(r.message, Catch::StartsWith(offset > 0 ? "offset +" : "offset -") &&
                                Catch::Contains(" s exceeds max_offset 1s (delay ") &&
                                Catch::EndsWith(", stratum 2, ref 192.0.2.1)"));
      CHECK(r.details["offset_s"].get<double>() == Approx(offset).margin(0.1));

      NtpSpec lax = spec_for(fake);
      lax.max_offset = 10s;
      auto tolerant = ntp_probe(h, lax);
      CHECK(run(fixture, *tolerant).status == Status::Ok);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: RATE fails the run and holds off the following runs", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpServer fake(fixture.loop(), kiss("RATE"));
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(fake));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::KissOfDeath);
    CHECK(r.message == "kiss code RATE (rate exceeded) from " + from(fake) + ": no query for 64s");
    CHECK(r.details["kiss_code"] == "RATE");
    CHECK(r.details["stratum"] == 0);
    CHECK(r.details["leap"] == 3);
    CHECK(fake.requests().size() == 1);

    // The next runs fail at once, without a packet, until the back-off has passed.
    fake.set_options(FakeNtpOptions(NtpFault::Answer));
    for (int i = 0; i < 2; ++i) {
      bool expired = true;
      r = test::run_with_expiry(fixture, *probe, 1s, &expired);
      CHECK_FALSE(expired);
      CHECK(r.status == Status::KissOfDeath);
      CHECK_THAT(r.message, Catch::StartsWith("not queried: backing off after kiss code RATE "
                                              "(rate exceeded) from " +
                                              from(fake) + " (1 in a row); next query in 6"));
      CHECK(r.details["kiss_code"] == "RATE");
      CHECK(r.latency < 500ms);
    }
    CHECK(fake.requests().size() == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: DENY and RSTR stop querying the server until the next reload", "[ntp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (const char* code : {"DENY", "RSTR"}) {
      INFO(code);
      FakeNtpServer fake(fixture.loop(), kiss(code));
      auto probe = ntp_probe(h, spec_for(fake));
      Result r = run(fixture, *probe);
      CHECK(r.status == Status::KissOfDeath);
      CHECK_THAT(r.message,
                 Catch::StartsWith(std::string("kiss code ") + code + " (access denied") &&
                     Catch::EndsWith("from " + from(fake) +
                                     ": no query until the next reload or restart"));
      CHECK(r.details["kiss_code"] == code);

      fake.set_options(FakeNtpOptions(NtpFault::Answer));
      r = run(fixture, *probe);
      CHECK(r.status == Status::KissOfDeath);
      CHECK_THAT(r.message, Catch::StartsWith(std::string("not queried: kiss code ") + code) &&
                                Catch::EndsWith("; no query until the next reload or restart"));
      CHECK(r.details["kiss_code"] == code);
      CHECK(fake.requests().size() == 1);

      // A reload that keeps the check asks again (Probe::reloaded)...
      probe->reloaded();
      CHECK(run(fixture, *probe).status == Status::Ok);
      CHECK(fake.requests().size() == 2);
      // ... and so does a new probe (a changed check after a reload, or a restart).
      fake.set_options(kiss(code));
      auto fresh = ntp_probe(h, spec_for(fake));
      CHECK(run(fixture, *fresh).status == Status::KissOfDeath);
      fresh = ntp_probe(h, spec_for(fake));
      fake.set_options(FakeNtpOptions(NtpFault::Answer));
      CHECK(run(fixture, *fresh).status == Status::Ok);
      CHECK(fake.requests().size() == 4);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: other kiss codes fail the run only", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpServer fake(fixture.loop(), kiss("INIT"));
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(fake));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::KissOfDeath);
    CHECK(r.message ==
          "kiss code INIT (the association has not yet synchronized for the first "
          "time) from " +
              from(fake));
    fake.set_options(FakeNtpOptions(NtpFault::Answer));
    CHECK(run(fixture, *probe).status == Status::Ok);
    CHECK(fake.requests().size() == 2);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: a reply with a spoofed origin is ignored, then the deadline passes", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpOptions spoofed;
    spoofed.wrong_origin = true;
    FakeNtpServer fake(fixture.loop(), spoofed);
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(fake));
    bool expired = false;
    Result r = test::run_with_expiry(fixture, *probe, 500ms, &expired);
    CHECK(expired);
    CHECK(r.status == Status::Timeout);
    CHECK(r.message == "no response from " + from(fake) +
                           " within 500ms (1 reply with a wrong origin timestamp ignored)");
    CHECK(r.details["stale"] == 1);
    CHECK_FALSE(r.details.contains("offset_s"));

    // A spoofed kiss-o'-death is ignored as well: it neither fails the run nor stops the
    // probe from asking again.
    FakeNtpOptions deny = kiss("DENY");
    deny.wrong_origin = true;
    fake.set_options(deny);
    r = test::run_with_expiry(fixture, *probe, 300ms);
    CHECK(r.status == Status::Timeout);
    CHECK_FALSE(r.details.contains("kiss_code"));
    fake.set_options(FakeNtpOptions(NtpFault::Answer));
    CHECK(run(fixture, *probe).status == Status::Ok);
    CHECK(fake.requests().size() == 3);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: an unsynchronised server fails with that reason", "[ntp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeNtpOptions leap;
    leap.leap = 3;
    FakeNtpOptions stratum;
    stratum.stratum = 16;
    FakeNtpOptions distance;
    distance.root_dispersion = 20;
    for (auto [o, message] : {std::pair{leap, "server unsynchronised (leap indicator 3)"},
                              {stratum, "server unsynchronised (stratum 16)"},
                              {distance,
                               "root distance 20.031250 s (root delay 0.062500 s / 2 + "
                               "root dispersion 20.000000 s) is not below 16 s"}}) {
      INFO(message);
      FakeNtpServer fake(fixture.loop(), o);
      auto probe = ntp_probe(h, spec_for(fake));
      bool expired = true;
      Result r = test::run_with_expiry(fixture, *probe, 1s, &expired);
      CHECK_FALSE(expired);  // an answer that settles the run ends it at once
      CHECK(r.status == Status::Unexpected);
      CHECK(r.message == message);
      CHECK(r.details.contains("stratum"));
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: bogus datagrams are ignored, only bogus ones are BadResponse", "[ntp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (auto [fault, reason] :
         {std::pair{NtpFault::Short, "short packet (20 bytes, an NTP header has 48)"},
          {NtpFault::Garbage, "version 6 (expected 3 or 4)"},
          {NtpFault::WrongMode, "mode 3 (expected 4, server)"},
          {NtpFault::BadVersion, "version 2 (expected 3 or 4)"},
          {NtpFault::ZeroTransmit, "transmit timestamp is zero"}}) {
      INFO(reason);
      FakeNtpServer fake(fixture.loop(), fault);
      auto probe = ntp_probe(h, spec_for(fake));
      bool expired = false;
      Result r = test::run_with_expiry(fixture, *probe, 300ms, &expired);
      CHECK(expired);  // the run waited for a valid answer until the deadline
      CHECK(r.status == Status::BadResponse);
      CHECK(r.message == "no valid response from " + from(fake) +
                             " within 300ms: 1 bogus datagram, the last: " + reason);
      CHECK(r.details["bogus"] == 1);
    }
    // Garbage first, then the answer: the answer counts.
    FakeNtpServer noisy(fixture.loop(), NtpFault::NoiseFirst);
    auto probe = ntp_probe(h, spec_for(noisy));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK(r.details["bogus"] == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: silence and a reply from another port are timeouts", "[ntp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (NtpFault fault : {NtpFault::Silent, NtpFault::OtherPort}) {
      FakeNtpServer fake(fixture.loop(), fault);
      auto probe = ntp_probe(h, spec_for(fake));
      bool expired = false;
      Result r = test::run_with_expiry(fixture, *probe, 300ms, &expired);
      CHECK(expired);
      CHECK(r.status == Status::Timeout);
      CHECK(r.message == "no response from " + from(fake) + " within 300ms");
      CHECK(fake.requests().size() == 1);  // it was asked; the reply never reached the probe
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: a closed port is Refused", "[ntp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    NtpSpec spec;
    spec.port = test::closed_udp_port("127.0.0.1");
    auto probe = ntp_probe(h, spec);
    bool expired = true;
    Result r = test::run_with_expiry(fixture, *probe, 1s, &expired);
    CHECK_FALSE(expired);
    CHECK(r.status == Status::Refused);
    CHECK(r.message == "port unreachable (127.0.0.1:" + std::to_string(spec.port) + ")");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: with samples, the answer with the lowest delay is reported", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpOptions o;
    o.delays = {300ms, 20ms, 150ms};
    FakeNtpServer fake(fixture.loop(), o);
    ProbeHarness h(fixture.loop());
    NtpSpec spec = spec_for(fake);
    spec.samples = 3;
    spec.spacing = 50ms;
    auto probe = ntp_probe(h, spec);
    bool expired = true;
    Result r = test::run_with_expiry(fixture, *probe, 2s, &expired);
    CHECK_FALSE(expired);  // done as soon as all three are answered
    CHECK(r.status == Status::Ok);
    CHECK_THAT(r.message, Catch::EndsWith(", best of 3/3 samples"));
    // The second request's reply was held 20 ms: its delay wins, and its offset (half the
    // hold, as the fake claims no processing time) comes with it.
    const double delay = r.details["delay_s"].get<double>();
    CHECK(delay >= 0.019);
    CHECK(delay < 0.1);
    CHECK(r.details["offset_s"].get<double>() == Approx(-delay / 2).margin(0.005));
    CHECK(r.details["sent"] == 3);
    CHECK(r.details["answered"] == 3);
    // Three requests from one socket, each with its own nonce (transmit timestamp).
    REQUIRE(fake.requests().size() == 3);
    std::set<std::uint16_t> ports;
    std::set<std::string> nonces;
    for (const auto& q : fake.requests()) {
      ports.insert(q.from.port());
      nonces.insert(q.bytes.substr(40, 8));
    }
    CHECK(ports.size() == 1);
    CHECK(nonces.size() == 3);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: a check keeps its socket after a run that succeeded, and only then", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpOptions o;
    // Run 1: the first answer at once, the second one after run 1's deadline, during run 2;
    // run 2's own answers a little later still.
    o.delays = {0ms, 400ms, 300ms, 300ms};
    FakeNtpServer fake(fixture.loop(), o);
    ProbeHarness h(fixture.loop());
    NtpSpec spec = spec_for(fake);
    spec.samples = 2;
    spec.spacing = 0ms;
    auto probe = ntp_probe(h, spec);
    const std::size_t fds = test::open_fd_count();

    bool expired = false;
    Result r1 = test::run_with_expiry(fixture, *probe, 200ms, &expired);
    CHECK(expired);
    CHECK(r1.status == Status::Ok);
    CHECK_THAT(r1.message, Catch::EndsWith(", best of 1/2 samples"));
    CHECK(test::open_fd_count() == fds + 1);  // kept

    // The late answer to run 1's second request reaches run 2's socket, the same one: it
    // answers none of run 2's requests, so it is stale.
    Result r2 = test::run_with_expiry(fixture, *probe, 1s, &expired);
    INFO(r2.message << "\n" << r2.details.dump(2));
    CHECK_FALSE(expired);
    CHECK(r2.status == Status::Ok);
    CHECK_THAT(r2.message, Catch::EndsWith(", best of 2/2 samples"));
    CHECK(r2.details["stale"] == 1);
    CHECK(r2.details["delay_s"].get<double>() >= 0.29);  // its own answers, not run 1's
    REQUIRE(fake.requests().size() == 4);
    CHECK(fake.requests()[2].from.same_endpoint(fake.requests()[0].from));

    // A run that fails closes it; the next run opens a fresh one.
    fake.set_options(FakeNtpOptions(NtpFault::Silent));
    CHECK(run(fixture, *probe, 100ms).status == Status::Timeout);
    CHECK(test::open_fd_count() == fds);
    fake.set_options(FakeNtpOptions());
    CHECK(run(fixture, *probe).status == Status::Ok);
    CHECK(test::open_fd_count() == fds + 1);
    probe.reset();
    CHECK(test::open_fd_count() == fds);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: on a kept socket, an ICMP error that quotes another run's request is ignored",
          "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpServer fake(fixture.loop(), NtpFault::Answer);
    ProbeHarness h(fixture.loop());
    auto probe = ntp_probe(h, spec_for(fake));
    REQUIRE(run(fixture, *probe).status == Status::Ok);

    fake.set_options(FakeNtpOptions(NtpFault::Silent));
    std::optional<Result> r2;
    probe->start(2s, [&](Result r) { r2 = std::move(r); });
    REQUIRE(fixture.run_until([&] { return fake.requests().size() == 2; }, 1s));
    const auto& q = fake.requests();
    REQUIRE(q[1].from.same_endpoint(q[0].from));  // the kept socket
    const SockAddr server = *parse_ip("127.0.0.1", fake.port());
    // A port unreachable for run 1's request, arriving late, during run 2: not run 2's.
    test::send_icmp_port_unreachable(q[1].from, server, q[0].bytes);
    fixture.run_for(100ms);
    CHECK_FALSE(r2);
    // One for run 2's own request ends it.
    test::send_icmp_port_unreachable(q[1].from, server, q[1].bytes);
    REQUIRE(fixture.run_until([&] { return r2.has_value(); }, 1s));
    CHECK(r2->status == Status::Refused);
    CHECK(r2->message == "port unreachable (" + from(fake) + ")");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: at the deadline, the best of the samples answered is reported", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpOptions o;
    o.delays = {10ms, 5s};  // the second reply comes far too late
    FakeNtpServer fake(fixture.loop(), o);
    ProbeHarness h(fixture.loop());
    NtpSpec spec = spec_for(fake);
    spec.samples = 2;
    spec.spacing = 20ms;
    auto probe = ntp_probe(h, spec);
    bool expired = false;
    Result r = test::run_with_expiry(fixture, *probe, 400ms, &expired);
    CHECK(expired);
    CHECK(r.status == Status::Ok);
    CHECK_THAT(r.message, Catch::EndsWith(", best of 1/2 samples"));
    CHECK(r.details["answered"] == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: the server key overrides the address", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpServer fake(fixture.loop(), NtpFault::Answer);
    ProbeHarness h(fixture.loop());
    NtpSpec spec = spec_for(fake);
    spec.server = "127.0.0.1";
    // The address is another loopback address nobody listens on.
    auto probe = ntp_probe(h, spec, "127.0.0.2");
    CHECK(describe_target(test::endpoint("127.0.0.2"), spec) == from(fake));
    Result r = run(fixture, *probe);
    CHECK(r.status == Status::Ok);
    CHECK(r.details["address"] == "127.0.0.1");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: over IPv6", "[ntp]") {
  LoopFixture fixture;
  {
    std::optional<FakeNtpServer> fake;
    try {
      fake.emplace(fixture.loop(), FakeNtpOptions(), "::1");
    } catch (const std::exception& e) {
      WARN("no IPv6 loopback here: " << e.what());
    }
    if (fake) {
      ProbeHarness h(fixture.loop());
      auto probe = ntp_probe(h, spec_for(*fake), "::1");
      Result r = run(fixture, *probe);
      CHECK(r.status == Status::Ok);
      CHECK(r.details["address"] == "::1");
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("ntp fake: cancel() and expire() mid-run leave nothing open", "[ntp]") {
  LoopFixture fixture;
  {
    FakeNtpServer fake(fixture.loop(), NtpFault::Silent);
    ProbeHarness h(fixture.loop());
    NtpSpec spec = spec_for(fake);
    spec.samples = 3;
    spec.spacing = 20ms;
    auto probe = ntp_probe(h, spec);
    int calls = 0;
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(50ms);
    probe->cancel();
    fixture.run_for(50ms);
    CHECK(calls == 0);
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(30ms);
    Result r = probe->expire();
    CHECK(r.status == Status::Timeout);
    fixture.run_for(100ms);
    CHECK(calls == 0);
    probe.reset();
  }
  REQUIRE(fixture.finish() == 0);
}
