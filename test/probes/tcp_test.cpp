// The tcp probe against listeners the test opens on loopback, and against networks the test
// builds in its own network namespaces. No packet leaves this host.
#include "tcp.h"

#include "support/loop.h"
#include "support/netns.h"
#include "support/peers.h"
#include "support/probe_harness.h"

#include <catch2/catch.hpp>

#include <optional>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

std::unique_ptr<Probe> tcp_probe(ProbeHarness& h, const Endpoint& e, std::uint16_t port) {
  TcpSpec spec;
  spec.port = port;
  return make_probe(h.ctx, e, spec);
}

}  // namespace

TEST_CASE("tcp: an open port on 127.0.0.1 is Ok", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    auto probe = tcp_probe(h, test::endpoint("127.0.0.1"), listener.port());
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    CHECK(r->message == "connected to 127.0.0.1:" + std::to_string(listener.port()));
    CHECK(r->latency > 0ns);
    CHECK(r->latency < 1s);
    CHECK(r->details["address"] == "127.0.0.1");
    CHECK(r->details["port"] == listener.port());
    CHECK(r->details["resolve_ms"].get<double>() >= 0);
    CHECK(r->details["connect_ms"].get<double>() > 0);
    CHECK(listener.accept_peer());  // it really connected

    // The probe lives across runs: a second run works the same.
    auto again = test::run_probe(fixture, *probe);
    REQUIRE(again);
    CHECK(again->status == Status::Ok);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: a closed port is Refused", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto port = test::closed_tcp_port("127.0.0.1");
    auto probe = tcp_probe(h, test::endpoint("127.0.0.1"), port);
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::Refused);
    CHECK(r->message == "connection refused by 127.0.0.1:" + std::to_string(port));
    CHECK(r->details["port"] == port);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: IPv6 ::1, open and closed", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("::1");
    auto open = tcp_probe(h, test::endpoint("::1"), listener.port());
    auto r = test::run_probe(fixture, *open);
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    CHECK(r->message == "connected to [::1]:" + std::to_string(listener.port()));
    CHECK(r->details["address"] == "::1");

    auto port = test::closed_tcp_port("::1");
    auto closed = tcp_probe(h, test::endpoint("::1"), port);
    r = test::run_probe(fixture, *closed);
    REQUIRE(r);
    CHECK(r->status == Status::Refused);
    CHECK(r->message == "connection refused by [::1]:" + std::to_string(port));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: localhost resolves and connects", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    Endpoint e = test::endpoint("localhost");
    e.ip_version = IpVersion::V4;
    auto probe = tcp_probe(h, e, listener.port());
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    INFO(r->message);
    CHECK(r->status == Status::Ok);
    CHECK(r->details["address"] == "127.0.0.1");
    CHECK(r->details.contains("resolve_ms"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: a name that does not resolve is ResolveFailed", "[tcp]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1", test::nxdomain_reply);
    ProbeHarness h(fixture.loop(), dns.port());
    auto probe = tcp_probe(h, test::endpoint("no-such-host.invalid"), 80);
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::ResolveFailed);
    CHECK(r->message == "cannot resolve 'no-such-host.invalid': Domain name not found");
    CHECK_FALSE(r->details.contains("address"));

    Endpoint e = test::endpoint("::1");
    e.ip_version = IpVersion::V4;
    auto mismatch = tcp_probe(h, e, 80);
    r = test::run_probe(fixture, *mismatch);
    REQUIRE(r);
    CHECK(r->status == Status::ResolveFailed);
    CHECK_THAT(r->message, Catch::Contains("address family mismatch"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: a full accept queue stalls the connect until expire()", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    // backlog 0: Linux completes one handshake into the queue, then drops further SYNs
    // (the client retransmits after 1 s, 3 s, ...), so the probe's connect hangs.
    test::TcpListener listener("127.0.0.1", 0);
    auto fillers = test::fill_accept_queue(listener, "127.0.0.1");
    if (fillers.empty()) {
      WARN("the accept queue never filled: cannot provoke a connect timeout here");
      return;
    }
    auto probe = tcp_probe(h, test::endpoint("127.0.0.1"), listener.port());
    int calls = 0;
    uv_update_time(fixture.loop());  // filling the queue blocked for a while
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(400ms);
    REQUIRE(calls == 0);  // still connecting
    Result r = probe->expire();
    CHECK(r.status == Status::Timeout);
    CHECK(r.message ==
          "no answer from 127.0.0.1:" + std::to_string(listener.port()) + " (connect timed out)");
    CHECK(r.latency >= 390ms);
    CHECK(r.details["phase"] == "connect");
    CHECK(r.details["address"] == "127.0.0.1");
    CHECK(r.details["connect_ms"].get<double>() >= 390);
    fixture.run_for(100ms);
    CHECK(calls == 0);  // expire() ends the run: done never fires
    probe.reset();
  }
  REQUIRE(fixture.finish() == 0);  // expire() left nothing open
}

TEST_CASE("tcp: expire() and cancel() while resolving", "[tcp]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1");  // silent: resolution hangs
    ProbeHarness h(fixture.loop(), dns.port(), 5s);
    auto probe = tcp_probe(h, test::endpoint("slow.invalid"), 80);
    int calls = 0;

    SECTION("expire") {
      probe->start(1s, [&](Result) { ++calls; });
      fixture.run_for(150ms);
      REQUIRE(calls == 0);
      Result r = probe->expire();
      CHECK(r.status == Status::Timeout);
      CHECK_THAT(r.message, Catch::StartsWith("timeout after ") &&
                                Catch::EndsWith(" while resolving 'slow.invalid'"));
      CHECK(r.details["phase"] == "resolve");
      CHECK_FALSE(r.details.contains("address"));
    }
    SECTION("cancel") {
      probe->start(1s, [&](Result) { ++calls; });
      fixture.run_for(50ms);
      probe->cancel();
      probe->cancel();  // idempotent
    }
    SECTION("destroy") {
      probe->start(1s, [&](Result) { ++calls; });
      fixture.run_for(50ms);
      probe.reset();
    }
    fixture.run_for(100ms);
    CHECK(calls == 0);
    CHECK(dns.received() >= 1);
    probe.reset();
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: cancel() right after start() delivers nothing", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    auto probe = tcp_probe(h, test::endpoint("127.0.0.1"), listener.port());
    int calls = 0;
    probe->start(1s, [&](Result) { ++calls; });
    probe->cancel();
    fixture.run_for(50ms);
    CHECK(calls == 0);
    CHECK(listener.accept_peer().has_value() == false);  // the connect never started
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: done may destroy the probe", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    auto probe = tcp_probe(h, test::endpoint("127.0.0.1"), listener.port());
    std::optional<Result> result;
    probe->start(1s, [&](Result r) {
      result = std::move(r);
      probe.reset();
      uv_stop(fixture.loop());
    });
    REQUIRE(fixture.run_until([&] { return result.has_value(); }));
    CHECK(result->status == Status::Ok);
    CHECK_FALSE(probe);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: source_address binds the probe's socket", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    Endpoint e = test::endpoint("127.0.0.1");
    e.source_address = "127.0.0.2";
    auto probe = tcp_probe(h, e, listener.port());
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    auto peer = listener.accept_peer();
    REQUIRE(peer);
    CHECK(peer->ip() == "127.0.0.2");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: a bad source address or interface is LocalError", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::TcpListener listener("127.0.0.1");
    Endpoint e = test::endpoint("127.0.0.1");

    SECTION("not an IP address") {
      e.source_address = "not-an-ip";
      auto r = test::run_probe(fixture, *tcp_probe(h, e, listener.port()));
      REQUIRE(r);
      CHECK(r->status == Status::LocalError);
      CHECK(r->message == "invalid source address 'not-an-ip' (not an IP address)");
    }
    SECTION("the other address family") {
      e.source_address = "::1";
      auto r = test::run_probe(fixture, *tcp_probe(h, e, listener.port()));
      REQUIRE(r);
      CHECK(r->status == Status::LocalError);
      CHECK(r->message == "source address ::1 is IPv6 but '127.0.0.1' has no such address");
    }
    SECTION("no such interface") {
      e.interface = "nosuchdev0";
      auto r = test::run_probe(fixture, *tcp_probe(h, e, listener.port()));
      REQUIRE(r);
      CHECK(r->status == Status::LocalError);
      CHECK_THAT(r->message, Catch::StartsWith("cannot bind to interface 'nosuchdev0': "));
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: binding to an address the host does not have is LocalError", "[tcp]") {
  LoopFixture fixture;
  {
    // In a namespace of our own with lo down, ::1 is not a local address yet. (IPv4 is no
    // use here: with no local addresses at all, Linux lets a socket bind to any of them.)
    ProbeHarness h(fixture.loop());  // before entering: its DNS port is on our loopback
    test::Netns ns;
    test::EnterNetns inside(ns);
    if (!inside.ok()) {
      WARN("cannot create a network namespace here");
      return;
    }
    Endpoint e = test::endpoint("::1");
    e.source_address = "::1";
    auto r = test::run_probe(fixture, *tcp_probe(h, e, 80));
    REQUIRE(r);
    CHECK(r->status == Status::LocalError);
    CHECK(r->message == "cannot bind to source address ::1: address not available");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: no route is Unreachable at once (namespace with only lo up)", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::Netns ns;
    test::EnterNetns inside(ns);
    if (!inside.ok() || !ns.up_loopback()) {
      WARN("cannot create a network namespace here");
      return;
    }
    auto r = test::run_probe(fixture, *tcp_probe(h, test::endpoint("198.51.100.1"), 80), 2s);
    REQUIRE(r);
    CHECK(r->status == Status::Unreachable);
    CHECK(r->message == "network unreachable (198.51.100.1:80)");

    r = test::run_probe(fixture, *tcp_probe(h, test::endpoint("2001:db8::1"), 80), 2s);
    REQUIRE(r);
    CHECK(r->status == Status::Unreachable);
    CHECK_THAT(r->message, Catch::StartsWith("network unreachable ([2001:db8::1]:80"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("tcp: ICMP host unreachable from a router is Unreachable", "[tcp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::RoutedNetwork net;
    test::EnterNetns inside(net.client);
    if (!net.ok || !inside.ok()) {
      WARN("cannot build the two-namespace network here");
      return;
    }
    auto r = test::run_probe(fixture, *tcp_probe(h, test::endpoint("198.51.100.1"), 80), 3s);
    REQUIRE(r);
    CHECK(r->status == Status::Unreachable);
    CHECK(r->message == "host unreachable (198.51.100.1:80)");
  }
  REQUIRE(fixture.finish() == 0);
}
