// The udp probe against peers the test opens on loopback, and against networks the test
// builds in its own network namespaces. No packet leaves this host.
#include "udp.h"

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

std::unique_ptr<Probe> udp_probe(ProbeHarness& h, const Endpoint& e, std::uint16_t port,
                                 std::string payload = "ping") {
  UdpSpec spec;
  spec.port = port;
  spec.payload = std::move(payload);
  return make_probe(h.ctx, e, spec);
}

std::optional<std::string> pong(std::string_view) { return std::string("pong!"); }

}  // namespace

TEST_CASE("udp: a port that replies is open", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      test::UdpPeer peer(fixture.loop(), ip, pong);
      auto probe = udp_probe(h, test::endpoint(ip), peer.port());
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      CHECK(r->message == "open (reply received, 5 bytes)");
      CHECK(r->latency > 0ns);
      CHECK(r->details["address"] == ip);
      CHECK(r->details["port"] == peer.port());
      CHECK(r->details["bytes_sent"] == 4);
      CHECK(r->details["reply_bytes"] == 5);
      CHECK_FALSE(r->details.contains("icmp_type"));
      CHECK(peer.received() == 1);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: a check keeps its socket after a run that succeeded, and only then", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    bool answer = true;
    std::optional<test::UdpPeer> peer;
    peer.emplace(fixture.loop(), "127.0.0.1", [&answer](std::string_view) {
      return answer ? std::optional<std::string>("pong!") : std::nullopt;
    });
    auto probe = udp_probe(h, test::endpoint("127.0.0.1"), peer->port());
    const std::size_t fds = test::open_fd_count();

    auto r1 = test::run_probe(fixture, *probe);
    REQUIRE(r1);
    CHECK(r1->message == "open (reply received, 5 bytes)");
    CHECK(test::open_fd_count() == fds + 1);  // kept
    const SockAddr first = *peer->last_sender();

    // Between runs, what reaches the kept socket is read and dropped: the loop sleeps.
    peer->send("late", first);
    CHECK(fixture.run_for(100ms) < 50);
    // A reply queued the moment before a run starts is dropped unread: with a silent peer
    // this run sees nothing, as it would on a fresh socket.
    answer = false;
    peer->send("late", first);
    Result r2 = test::run_with_expiry(fixture, *probe, 100ms);
    CHECK(r2.status == Status::Ok);
    CHECK(r2.message == "open|filtered (no response)");
    CHECK(peer->last_sender()->same_endpoint(first));  // the same socket
    CHECK(test::open_fd_count() == fds + 1);           // Ok: still kept

    // A run that fails closes it, and each run after it starts from a fresh socket.
    peer.reset();  // the port closes
    for (int run = 0; run < 2; ++run) {
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      CHECK(r->status == Status::Refused);
      CHECK(test::open_fd_count() == fds - 1);  // neither the peer's socket nor the probe's
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: a closed port is Refused through ICMP port unreachable", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto port = test::closed_udp_port("127.0.0.1");
    auto probe = udp_probe(h, test::endpoint("127.0.0.1"), port);
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::Refused);
    CHECK(r->message == "port closed (ICMP port unreachable)");
    CHECK(r->details["icmp_type"] == 3);
    CHECK(r->details["icmp_code"] == 3);
    CHECK(r->details["icmp_from"] == "127.0.0.1");
    CHECK(r->details["bytes_sent"] == 4);
    CHECK_FALSE(r->details.contains("reply_bytes"));

    // A fresh socket per run: the next run sees its own ICMP error, not a stale one.
    auto again = test::run_probe(fixture, *probe);
    REQUIRE(again);
    CHECK(again->status == Status::Refused);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: a closed port on ::1 is Refused through ICMPv6", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto port = test::closed_udp_port("::1");
    auto probe = udp_probe(h, test::endpoint("::1"), port);
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::Refused);
    CHECK(r->message == "port closed (ICMP port unreachable)");
    CHECK(r->details["icmp_type"] == 1);
    CHECK(r->details["icmp_code"] == 4);
    CHECK(r->details["address"] == "::1");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: a silent port is open|filtered when the deadline passes", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::UdpPeer peer(fixture.loop(), "127.0.0.1");  // bound, never answers
    auto probe = udp_probe(h, test::endpoint("127.0.0.1"), peer.port(), "");
    int calls = 0;
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(300ms);
    REQUIRE(calls == 0);
    CHECK(peer.received() == 1);  // an empty datagram is still a datagram
    Result r = probe->expire();
    CHECK(r.status == Status::Ok);
    CHECK(r.message == "open|filtered (no response)");
    CHECK(r.latency >= 290ms);
    CHECK(r.details["bytes_sent"] == 0);
    CHECK_FALSE(r.details.contains("reply_bytes"));
    fixture.run_for(50ms);
    CHECK(calls == 0);
    probe.reset();
  }
  REQUIRE(fixture.finish() == 0);  // expire() closed the socket and its watcher
}

TEST_CASE("udp: expire() and cancel() while resolving", "[udp]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1");  // silent DNS: resolution hangs
    ProbeHarness h(fixture.loop(), dns.port(), 5s);
    auto probe = udp_probe(h, test::endpoint("slow.invalid"), 53);
    int calls = 0;
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(100ms);
    Result r = probe->expire();
    CHECK(r.status == Status::Timeout);
    CHECK_THAT(r.message, Catch::EndsWith(" while resolving 'slow.invalid'"));
    CHECK(r.details["phase"] == "resolve");

    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(50ms);
    probe->cancel();
    fixture.run_for(100ms);
    CHECK(calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: a name resolves before sending", "[udp]") {
  LoopFixture fixture;
  {
    test::UdpPeer dns(fixture.loop(), "127.0.0.1", test::nxdomain_reply);
    ProbeHarness h(fixture.loop(), dns.port());
    test::UdpPeer peer(fixture.loop(), "127.0.0.1", pong);
    Endpoint e = test::endpoint("localhost");
    e.ip_version = IpVersion::V4;
    auto r = test::run_probe(fixture, *udp_probe(h, e, peer.port()));
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    CHECK(r->details["address"] == "127.0.0.1");

    r = test::run_probe(fixture, *udp_probe(h, test::endpoint("gone.invalid"), peer.port()));
    REQUIRE(r);
    CHECK(r->status == Status::ResolveFailed);
    CHECK(r->message == "cannot resolve 'gone.invalid': Domain name not found");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: source_address and interface", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::UdpPeer peer(fixture.loop(), "127.0.0.1", pong);
    Endpoint e = test::endpoint("127.0.0.1");

    SECTION("bound to 127.0.0.2") {
      e.source_address = "127.0.0.2";
      auto r = test::run_probe(fixture, *udp_probe(h, e, peer.port()));
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      REQUIRE(peer.last_sender());
      CHECK(peer.last_sender()->ip() == "127.0.0.2");
    }
    SECTION("bound to lo") {
      e.interface = "lo";
      auto r = test::run_probe(fixture, *udp_probe(h, e, peer.port()));
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
    }
    SECTION("bad source address") {
      e.source_address = "127.0.0.300";
      auto r = test::run_probe(fixture, *udp_probe(h, e, peer.port()));
      REQUIRE(r);
      CHECK(r->status == Status::LocalError);
      CHECK(r->message == "invalid source address '127.0.0.300' (not an IP address)");
      CHECK(peer.received() == 0);
    }
    SECTION("no such interface") {
      e.interface = "nosuchdev0";
      auto r = test::run_probe(fixture, *udp_probe(h, e, peer.port()));
      REQUIRE(r);
      CHECK(r->status == Status::LocalError);
      CHECK(r->message == "cannot bind to interface 'nosuchdev0': no such device");
      CHECK(peer.received() == 0);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: no route is Unreachable at once (namespace with only lo up)", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::Netns ns;
    test::EnterNetns inside(ns);
    if (!inside.ok() || !ns.up_loopback()) {
      WARN("cannot create a network namespace here");
      return;
    }
    auto r = test::run_probe(fixture, *udp_probe(h, test::endpoint("198.51.100.1"), 53), 2s);
    REQUIRE(r);
    CHECK(r->status == Status::Unreachable);
    CHECK(r->message == "network unreachable (198.51.100.1:53)");
    CHECK_FALSE(r->details.contains("bytes_sent"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp: ICMP host unreachable from a router is Unreachable", "[udp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    test::RoutedNetwork net;
    test::EnterNetns inside(net.client);
    if (!net.ok || !inside.ok()) {
      WARN("cannot build the two-namespace network here");
      return;
    }
    auto r = test::run_probe(fixture, *udp_probe(h, test::endpoint("198.51.100.1"), 53), 3s);
    REQUIRE(r);
    CHECK(r->status == Status::Unreachable);
    CHECK(r->message == "host unreachable (ICMP type 3 code 1 from 10.200.0.2)");
    CHECK(r->details["icmp_type"] == 3);
    CHECK(r->details["icmp_code"] == 1);
    CHECK(r->details["icmp_from"] == "10.200.0.2");
  }
  REQUIRE(fixture.finish() == 0);
}
