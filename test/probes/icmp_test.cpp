// The icmp probe on real sockets: loopback, and networks the test builds in network
// namespaces of its own (no packet leaves this host). Each namespace sets
// net.ipv4.ping_group_range (per namespace) to choose the socket: the default "1 0" leaves
// raw sockets (root has CAP_NET_RAW), a widened range gives ping sockets. Tests that need
// namespaces WARN and return when they cannot be made (not root).
#include "icmp.h"

#include "icmp_packet.h"
#include "support/loop.h"
#include "support/netns.h"
#include "support/peers.h"
#include "support/probe_harness.h"
#include "support/process.h"

#include <catch2/catch.hpp>

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

bool sysctl(const test::Netns& ns, const std::string& setting) {
  return test::run(ns.wrap({"/usr/sbin/sysctl", "-qw", setting}), 10s).code == 0;
}

// A namespace with lo up where ping sockets are allowed for every group, or not (the
// default: raw sockets), and where the kernel may ignore echo requests (a silent host).
struct PingNet {
  test::Netns ns;
  bool ok = false;
  explicit PingNet(bool ping_sockets, bool silent = false) {
    ok = ns.ok() && ns.up_loopback() &&
         (!ping_sockets || sysctl(ns, "net.ipv4.ping_group_range=0 2147483647")) &&
         (!silent || (sysctl(ns, "net.ipv4.icmp_echo_ignore_all=1") &&
                      sysctl(ns, "net.ipv6.icmp.echo_ignore_all=1")));
  }
};

// A test inside a PingNet of its own: the namespace, this thread inside it, and probe
// services on the fixture's loop (their sockets in the namespace too). ready() WARNs when
// namespaces cannot be made here (not root).
class Inside {
 public:
  Inside(LoopFixture& fixture, bool ping_sockets, bool silent = false)
      : net_(ping_sockets, silent), inside_(net_.ns) {
    if (net_.ok && inside_.ok()) harness_.emplace(fixture.loop());
  }
  bool ready() const {
    if (!harness_) WARN("cannot create a network namespace here (not root?)");
    return harness_.has_value();
  }
  ProbeHarness& harness() { return *harness_; }
  const test::Netns& ns() const { return net_.ns; }

 private:
  PingNet net_;
  test::EnterNetns inside_;
  std::optional<ProbeHarness> harness_;
};

std::string socket_kind(bool ping_sockets) { return ping_sockets ? "dgram" : "raw"; }

std::unique_ptr<Probe> icmp_probe(ProbeHarness& h, const Endpoint& e, unsigned count = 1,
                                  std::chrono::milliseconds spacing = 10ms,
                                  IcmpSpec spec = IcmpSpec{}) {
  spec.count = count;
  spec.spacing = spacing;
  return make_probe(h.ctx, e, spec);
}

std::unique_ptr<Probe> icmp_probe(ProbeHarness& h, const std::string& ip, unsigned count = 1,
                                  std::chrono::milliseconds spacing = 10ms,
                                  IcmpSpec spec = IcmpSpec{}) {
  return icmp_probe(h, test::endpoint(ip), count, spacing, spec);
}

// Starts `probe`, runs the loop for `wait` (the run must not end meanwhile), then lets the
// deadline pass: the result expire() gives.
Result run_to_deadline(LoopFixture& fixture, Probe& probe, std::chrono::milliseconds wait) {
  int calls = 0;
  probe.start(2s, [&](Result) { ++calls; });
  fixture.run_for(wait);
  CHECK(calls == 0);  // nothing ended the run early
  Result r = probe.expire();
  fixture.run_for(20ms);
  CHECK(calls == 0);  // and nothing is delivered after expire()
  return r;
}

// One echo request as a raw IPv4 socket sees it.
struct SeenRequest {
  std::string source;
  std::uint16_t id = 0;
  std::uint16_t seq = 0;
  std::string payload;
};

// A raw ICMPv4 socket of the test's own, to watch the probe's requests and to send replies
// of its choosing, from a source address of its choosing.
class RawIcmp {
 public:
  explicit RawIcmp(const std::string& bind_ip = "") {
    fd_.reset(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP));
    if (!fd_) throw std::runtime_error("raw socket");
    if (!bind_ip.empty()) {
      SockAddr a = *parse_ip(bind_ip);
      if (::bind(fd_.get(), a.get(), a.length) != 0) throw std::runtime_error("bind");
    }
  }
  // Every echo request seen so far (reads what arrived since the last call).
  const std::vector<SeenRequest>& requests() {
    char buf[70000];
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) return seen_;
      std::string_view b(buf, static_cast<std::size_t>(n));
      const std::size_t ihl = (static_cast<unsigned char>(b[0]) & 0x0f) * 4u;
      auto h = icmp::parse_request_header(AF_INET, b.substr(std::min(ihl, b.size())));
      if (!h) continue;
      SockAddr src;
      src.storage.ss_family = AF_INET;
      src.length = sizeof(sockaddr_in);
      std::memcpy(&reinterpret_cast<sockaddr_in*>(&src.storage)->sin_addr, b.data() + 12, 4);
      seen_.push_back({src.ip(), h->id, h->seq, std::string(b.substr(ihl + icmp::kHeaderSize))});
    }
  }
  // Waits (running the loop) until `n` requests have been seen in all.
  bool wait_for(LoopFixture& fixture, std::size_t n) {
    return fixture.run_until([&] { return requests().size() >= n; }, 1s);
  }
  // Sends an echo reply to `to` (from the bound address, else the kernel's choice).
  void reply(const std::string& to, std::uint16_t id, std::uint16_t seq,
             const std::string& payload) {
    std::string m = icmp::echo_request(AF_INET, id, seq, payload);
    m[0] = static_cast<char>(icmp::kEchoReplyV4);
    m[2] = m[3] = 0;
    const std::uint16_t sum = icmp::internet_checksum(m);
    m[2] = static_cast<char>(sum >> 8);
    m[3] = static_cast<char>(sum & 0xff);
    SockAddr a = *parse_ip(to);
    if (::sendto(fd_.get(), m.data(), m.size(), 0, a.get(), a.length) !=
        static_cast<ssize_t>(m.size()))
      throw std::runtime_error("sendto");
  }

 private:
  Fd fd_;
  std::vector<SeenRequest> seen_;
};

// Takes CAP_NET_RAW out of this thread's effective capabilities (they are per thread), and
// puts it back on destruction.
class WithoutNetRaw {
 public:
  WithoutNetRaw() {
    if (syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct reduced[2] = {saved_[0], saved_[1]};
    reduced[0].effective &= ~(1u << CAP_NET_RAW);
    ok_ = syscall(SYS_capset, &header_, reduced) == 0;
  }
  ~WithoutNetRaw() {
    if (ok_) syscall(SYS_capset, &header_, saved_);
  }
  bool ok() const { return ok_; }

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved_[2]{};
  bool ok_ = false;
};

// RoutedNetwork (test/support/netns.h) with IPv6 too: the client fd00:200::1/64, the router
// fd00:200::2/64. The router answers 198.51.100.0/24 and 2001:db8:51::/48 with ICMP
// unreachables, and forwards 203.0.113.0/24 and 2001:db8:52::/48 back to the client (so a
// TTL of 1 makes it send time exceeded). It never rate-limits its ICMP errors.
struct IcmpRoutedNetwork {
  test::RoutedNetwork net;
  bool ok = false;
  IcmpRoutedNetwork() {
    if (!net.ok) return;
    const std::string& c = net.client.name();
    const std::string& r = net.router.name();
    ok = test::ip({"-n", c, "addr", "add", "fd00:200::1/64", "dev", "vc", "nodad"}) &&
         test::ip({"-n", r, "addr", "add", "fd00:200::2/64", "dev", "vr", "nodad"}) &&
         test::ip({"-n", c, "-6", "route", "add", "default", "via", "fd00:200::2"}) &&
         sysctl(net.router, "net.ipv6.conf.all.forwarding=1") &&
         sysctl(net.router, "net.ipv4.icmp_ratelimit=0") &&
         sysctl(net.router, "net.ipv6.icmp.ratelimit=0") &&
         test::ip({"-n", r, "-6", "route", "add", "unreachable", "2001:db8:51::/48"}) &&
         test::ip({"-n", r, "route", "add", "203.0.113.0/24", "via", "10.200.0.1"}) &&
         test::ip({"-n", r, "-6", "route", "add", "2001:db8:52::/48", "via", "fd00:200::1"});
  }
};

}  // namespace

// ---- Replies -----------------------------------------------------------------------------

TEST_CASE("icmp: 127.0.0.1 and ::1 answer, through raw sockets and ping sockets", "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      auto probe = icmp_probe(h, ip, 3);
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      CHECK_THAT(r->message,
                 Catch::Matches("3/3 replies, rtt min/avg/max [0-9.]+/[0-9.]+/[0-9.]+ ms"));
      CHECK(r->details["socket"] == socket_kind(ping_sockets));
      CHECK(r->details["address"] == ip);
      CHECK_FALSE(r->details.contains("port"));
      CHECK(r->details["bytes"] == 56);
      CHECK(r->details["sent"] == 3);
      CHECK(r->details["received"] == 3);
      CHECK(r->details["loss"] == 0.0);
      CHECK(r->details["duplicates"] == 0);
      CHECK(r->details["errors"] == 0);
      CHECK(r->details["ignored"] == 0);
      CHECK(r->details["reply_ttl"] == 64);
      CHECK(r->details["rtt_ms"].get<double>() > 0);
      CHECK(r->details["rtt_min_ms"].get<double>() <= r->details["rtt_max_ms"].get<double>());
      CHECK(r->details.contains("rtt_mdev_ms"));
      CHECK(r->details.contains("jitter_ms"));
      CHECK_FALSE(r->details.contains("icmp_type"));

      // A fresh socket per run, the check's identifier every time.
      auto again = test::run_probe(fixture, *probe);
      REQUIRE(again);
      CHECK(again->status == Status::Ok);
      CHECK(again->details["icmp_id"] == r->details["icmp_id"]);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: in this host's own namespace, with whatever socket it allows", "[icmp]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      IcmpSpec spec;
      spec.size = 1400;
      spec.ttl = 9;
      auto r = test::run_probe(fixture, *icmp_probe(h, ip, 1, 10ms, spec));
      REQUIRE(r);
      if (r->status == Status::LocalError) {
        WARN("no ICMP socket here: " + r->message);
        continue;
      }
      CHECK(r->status == Status::Ok);
      CHECK_THAT(r->message, Catch::Matches("1/1 replies, rtt [0-9.]+ ms"));
      CHECK(r->details["bytes"] == 1400);
      CHECK(r->details["reply_ttl"] == 64);           // the kernel's own TTL, whatever ours
      CHECK_FALSE(r->details.contains("jitter_ms"));  // one RTT has no jitter
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: the RTT is the kernel's receive time, not when the loop read the reply",
          "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    auto probe = icmp_probe(h, "127.0.0.1");
    // The probe holds the kernel's stamping on from now, but the kernel switches it on in a
    // work item of its own: give that a moment (hold_receive_timestamps).
    fixture.run_for(50ms);
    std::optional<Result> r;
    probe->start(2s, [&](Result result) { r = std::move(result); });
    // Due at the same time as the resolver's delivery, and started after it: the request
    // goes out, then the loop is stuck for 100ms before it can read the reply.
    uv::Timer busy(fixture.loop());
    busy.start(0ns, [] { std::this_thread::sleep_for(100ms); });
    REQUIRE(fixture.run_until([&] { return r.has_value(); }, 2s));
    CHECK(r->status == Status::Ok);
    CHECK(r->latency >= 100ms);
    CHECK(r->details["rtt_ms"].get<double>() < 20);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: 100 concurrent checks of 127.0.0.1-100 each get their own replies", "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    constexpr int kChecks = 100;
    std::vector<std::unique_ptr<Probe>> probes;
    std::vector<std::optional<Result>> results(kChecks);
    int done = 0;
    for (int i = 0; i < kChecks; ++i) {
      probes.push_back(icmp_probe(h, "127.0.0." + std::to_string(i + 1), 3, 20ms));
      probes.back()->start(5s, [&, i](Result r) {
        results[i] = std::move(r);
        ++done;
      });
    }
    REQUIRE(fixture.run_until([&] { return done == kChecks; }, 5s));
    std::set<int> ids;
    for (int i = 0; i < kChecks; ++i) {
      INFO("check " << i);
      const Result& r = *results[i];
      CHECK(r.status == Status::Ok);
      CHECK(r.details["address"] == "127.0.0." + std::to_string(i + 1));
      CHECK(r.details["sent"] == 3);
      CHECK(r.details["received"] == 3);
      CHECK(r.details["duplicates"] == 0);
      // Not even another check's reply reached this check's socket.
      CHECK(r.details["ignored"] == 0);
      CHECK(r.details["socket"] == socket_kind(ping_sockets));
      ids.insert(r.details["icmp_id"].get<int>());
    }
    CHECK(ids.size() == kChecks);
    // Raw: one socket for all of them, and the refused ping socket was tried once, not
    // by every run. Ping sockets are each run's own.
    CHECK(h.icmp.open_sockets() == (ping_sockets ? 0 : 1));
    CHECK((h.icmp.ping_refusal(AF_INET) != 0) == !ping_sockets);
    // The shared socket stays open while a check that used it lives (between its runs
    // too), and closes with the last; the refusal is remembered.
    probes.resize(1);
    CHECK(h.icmp.open_sockets() == (ping_sockets ? 0 : 1));
    probes.clear();
    CHECK(h.icmp.open_sockets() == 0);
    CHECK((h.icmp.ping_refusal(AF_INET) != 0) == !ping_sockets);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: raw sockets are shared per family and options, not across them", "[icmp]") {
  LoopFixture fixture;
  {
    Inside net(fixture, /*ping_sockets=*/false);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    IcmpSpec ttl64;
    ttl64.ttl = 64;
    std::vector<std::unique_ptr<Probe>> probes;
    probes.push_back(icmp_probe(h, "127.0.0.1"));
    probes.push_back(icmp_probe(h, "127.0.0.2"));
    probes.push_back(icmp_probe(h, "::1"));
    probes.push_back(icmp_probe(h, "127.0.0.3", 1, 10ms, ttl64));
    int done = 0;
    std::vector<Result> results;
    for (auto& p : probes)
      p->start(5s, [&](Result r) {
        results.push_back(std::move(r));
        ++done;
      });
    REQUIRE(fixture.run_until([&] { return done == 4; }, 5s));
    for (const Result& r : results) {
      INFO(r.message);
      CHECK(r.status == Status::Ok);
      CHECK(r.details["socket"] == "raw");
    }
    // IPv4 with the default TTL, IPv4 with TTL 64, IPv6.
    CHECK(h.icmp.open_sockets() == 3);
    // A second round of runs reuses them.
    done = 0;
    results.clear();
    for (auto& p : probes)
      p->start(5s, [&](Result r) {
        results.push_back(std::move(r));
        ++done;
      });
    REQUIRE(fixture.run_until([&] { return done == 4; }, 5s));
    for (const Result& r : results) CHECK(r.status == Status::Ok);
    CHECK(h.icmp.open_sockets() == 3);
    // The TTL 64 check goes (a reload changed it, say): its socket closes with it.
    probes.pop_back();
    CHECK(h.icmp.open_sockets() == 2);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: replies with a foreign identifier, a wrong cookie or source are ignored",
          "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets, /*silent=*/true);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    RawIcmp sniffer;
    RawIcmp elsewhere("127.0.0.2");  // replies from another address than the target
    auto probe = icmp_probe(h, "127.0.0.1");
    std::optional<Result> r;
    probe->start(2s, [&](Result result) { r = std::move(result); });
    REQUIRE(sniffer.wait_for(fixture, 1));
    REQUIRE(sniffer.requests().size() == 1);
    const SeenRequest first = sniffer.requests()[0];
    std::string wrong_cookie = first.payload;
    wrong_cookie[0] ^= 0x5a;
    // All of these are queued before the probe reads any of them.
    sniffer.reply("127.0.0.1", first.id + 1, first.seq, first.payload);  // foreign identifier
    sniffer.reply("127.0.0.1", first.id, first.seq, wrong_cookie);
    elsewhere.reply("127.0.0.1", first.id, first.seq, first.payload);
    sniffer.reply("127.0.0.1", first.id, first.seq, first.payload);
    sniffer.reply("127.0.0.1", first.id, first.seq, first.payload);  // a duplicate
    REQUIRE(fixture.run_until([&] { return r.has_value(); }, 1s));
    CHECK(r->status == Status::Ok);
    CHECK_THAT(r->message, Catch::Matches("1/1 replies, rtt [0-9.]+ ms, 1 duplicate"));
    CHECK(r->details["received"] == 1);
    CHECK(r->details["duplicates"] == 1);
    // The wrong cookie and the wrong source; the foreign identifier never got this far (the
    // raw socket's BPF filter, or the ping socket's binding, kept it out).
    CHECK(r->details["ignored"] == 2);
    CHECK(r->details["icmp_id"] == first.id);

    // The next run: a late copy of the first run's reply is stale.
    r.reset();
    probe->start(2s, [&](Result result) { r = std::move(result); });
    REQUIRE(sniffer.wait_for(fixture, 2));
    REQUIRE(sniffer.requests().size() == 2);
    const SeenRequest second = sniffer.requests()[1];
    CHECK(second.id == first.id);
    CHECK(second.seq == static_cast<std::uint16_t>(first.seq + 1));
    CHECK(second.payload != first.payload);  // a new cookie
    sniffer.reply("127.0.0.1", first.id, first.seq, first.payload);
    sniffer.reply("127.0.0.1", first.id, second.seq, first.payload);  // old cookie, new seq
    sniffer.reply("127.0.0.1", second.id, second.seq, second.payload);
    REQUIRE(fixture.run_until([&] { return r.has_value(); }, 1s));
    CHECK(r->status == Status::Ok);
    CHECK(r->details["ignored"] == 2);
    CHECK(r->details["received"] == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- Loss ---------------------------------------------------------------------------------

TEST_CASE("icmp: a silent host is a timeout with 100% loss", "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets, /*silent=*/true);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      auto probe = icmp_probe(h, ip, 3);
      Result r = run_to_deadline(fixture, *probe, 200ms);
      CHECK(r.status == Status::Timeout);
      CHECK(r.message == "0/3 replies (100% loss)");
      CHECK(r.details["sent"] == 3);
      CHECK(r.details["received"] == 0);
      CHECK(r.details["loss"] == 100.0);
      CHECK_FALSE(r.details.contains("rtt_ms"));
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: loss is counted when every other reply is dropped (nftables numgen)", "[icmp]") {
  if (::access("/usr/sbin/nft", X_OK) != 0) {
    WARN("nft (package nftables) is not installed: cannot drop every other reply");
    return;
  }
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets);
    if (!net.ready()) return;
    // Every other echo reply is dropped on its way in, per family.
    auto nft =
        test::run(net.ns().wrap({"/usr/sbin/nft",
                                 "add table inet t; "
                                 "add chain inet t in { type filter hook input priority 0; }; "
                                 "add rule inet t in icmp type echo-reply numgen inc mod 2 "
                                 "== 1 drop; "
                                 "add rule inet t in icmpv6 type echo-reply numgen inc mod "
                                 "2 == 1 drop"}));
    REQUIRE(nft.code == 0);
    ProbeHarness& h = net.harness();
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      auto probe = icmp_probe(h, ip, 4);
      Result r = run_to_deadline(fixture, *probe, 300ms);
      CHECK(r.status == Status::Ok);  // by default only total loss fails
      CHECK_THAT(r.message, Catch::Matches("2/4 replies \\(50% loss\\), rtt min/avg/max "
                                           "[0-9.]+/[0-9.]+/[0-9.]+ ms"));
      CHECK(r.details["sent"] == 4);
      CHECK(r.details["received"] == 2);
      CHECK(r.details["loss"] == 50.0);
    }
    IcmpSpec strict;
    strict.max_loss = 25;
    Result r = run_to_deadline(fixture, *icmp_probe(h, "127.0.0.1", 4, 10ms, strict), 300ms);
    CHECK(r.status == Status::Unexpected);
    CHECK_THAT(r.message, Catch::StartsWith("2/4 replies (50% loss, above max_loss 25%), rtt "));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: max_rtt fails a run whose average is above it", "[icmp]") {
  LoopFixture fixture;
  {
    Inside net(fixture, false, /*silent=*/true);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    RawIcmp sniffer;
    IcmpSpec spec;
    spec.max_rtt = 1ms;
    auto probe = icmp_probe(h, "127.0.0.1", 1, 10ms, spec);
    std::optional<Result> r;
    probe->start(2s, [&](Result result) { r = std::move(result); });
    REQUIRE(sniffer.wait_for(fixture, 1));
    // The host is silent: the test answers, 30ms late.
    fixture.run_for(30ms);
    const SeenRequest& req = sniffer.requests()[0];
    sniffer.reply("127.0.0.1", req.id, req.seq, req.payload);
    REQUIRE(fixture.run_until([&] { return r.has_value(); }, 1s));
    CHECK(r->status == Status::Unexpected);
    CHECK_THAT(r->message,
               Catch::Matches("1/1 replies, rtt [0-9.]+ ms; average above max_rtt 1ms"));
    CHECK(r->details["rtt_ms"].get<double>() >= 30);
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- Errors -------------------------------------------------------------------------------

TEST_CASE("icmp: ICMP errors from a router are Unreachable, with who sent them", "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    IcmpRoutedNetwork routed;
    test::EnterNetns inside(routed.net.client);
    if (!routed.ok || !inside.ok() ||
        (ping_sockets && !sysctl(routed.net.client, "net.ipv4.ping_group_range=0 2147483647"))) {
      WARN("cannot build the two-namespace network here (not root?)");
      return;
    }
    ProbeHarness h(fixture.loop());
    SECTION("host unreachable, IPv4") {
      auto r = test::run_probe(fixture, *icmp_probe(h, "198.51.100.1"), 3s);
      REQUIRE(r);
      CHECK(r->status == Status::Unreachable);
      CHECK(r->message == "host unreachable from 10.200.0.2");
      CHECK(r->details["icmp_type"] == 3);
      CHECK(r->details["icmp_code"] == 1);
      CHECK(r->details["icmp_from"] == "10.200.0.2");
      CHECK(r->details["errors"] == 1);
      CHECK(r->details["socket"] == socket_kind(ping_sockets));

      auto three = test::run_probe(fixture, *icmp_probe(h, "198.51.100.1", 3), 3s);
      REQUIRE(three);
      CHECK(three->status == Status::Unreachable);
      CHECK(three->message == "host unreachable from 10.200.0.2 (0/3 replies, 3 ICMP errors)");
    }
    SECTION("no route, IPv6") {
      auto r = test::run_probe(fixture, *icmp_probe(h, "2001:db8:51::1"), 3s);
      REQUIRE(r);
      CHECK(r->status == Status::Unreachable);
      CHECK(r->message == "no route to destination from fd00:200::2");
      CHECK(r->details["icmp_type"] == 1);
      CHECK(r->details["icmp_code"] == 0);
    }
    SECTION("ttl 1: time exceeded at the router") {
      IcmpSpec spec;
      spec.ttl = 1;
      auto r = test::run_probe(fixture, *icmp_probe(h, "203.0.113.1", 1, 10ms, spec), 3s);
      REQUIRE(r);
      CHECK(r->status == Status::Unreachable);
      CHECK(r->message == "time to live exceeded from 10.200.0.2");
      CHECK(r->details["icmp_type"] == 11);
      auto r6 = test::run_probe(fixture, *icmp_probe(h, "2001:db8:52::1", 1, 10ms, spec), 3s);
      REQUIRE(r6);
      CHECK(r6->status == Status::Unreachable);
      CHECK(r6->message == "hop limit exceeded from fd00:200::2");
      CHECK(r6->details["icmp_type"] == 3);
    }
    SECTION("the router itself answers") {
      auto r = test::run_probe(fixture, *icmp_probe(h, "10.200.0.2", 2), 3s);
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      auto r6 = test::run_probe(fixture, *icmp_probe(h, "fd00:200::2", 2), 3s);
      REQUIRE(r6);
      CHECK(r6->status == Status::Ok);
      CHECK(r6->details["reply_ttl"] == 64);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: the local routing table's unreachable and prohibit routes", "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets);
    if (!net.ready()) return;
    const std::string& ns = net.ns().name();
    REQUIRE(test::ip({"-n", ns, "route", "add", "unreachable", "10.99.0.0/16"}));
    REQUIRE(test::ip({"-n", ns, "route", "add", "prohibit", "10.98.0.0/16"}));
    REQUIRE(test::ip({"-n", ns, "-6", "route", "add", "unreachable", "2001:db8:99::/48"}));
    ProbeHarness& h = net.harness();
    auto run = [&](const std::string& ip) {
      auto r = test::run_probe(fixture, *icmp_probe(h, ip), 2s);
      REQUIRE(r);
      CHECK(r->status == Status::Unreachable);
      return r->message;
    };
    CHECK(run("10.99.0.1") == "host unreachable (no route to 10.99.0.1)");
    CHECK(run("10.98.0.1") ==
          "administratively prohibited (sending to 10.98.0.1: permission denied)");
    CHECK(run("10.97.0.1") == "network unreachable (no route to 10.97.0.1)");
    CHECK(run("2001:db8:99::1") == "host unreachable (no route to 2001:db8:99::1)");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: neither a ping socket nor a raw socket allowed: one message saying why",
          "[icmp]") {
  LoopFixture fixture;
  {
    Inside net(fixture, false);  // a fresh namespace's ping_group_range is "1 0"
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    auto probe = icmp_probe(h, "127.0.0.1");
    {
      WithoutNetRaw unprivileged;
      REQUIRE(unprivileged.ok());
      for (std::string ip : {"127.0.0.1", "::1"}) {
        auto r = test::run_probe(fixture, *icmp_probe(h, ip));
        REQUIRE(r);
        CHECK(r->status == Status::LocalError);
        CHECK(r->message ==
              "cannot open an ICMP socket: ping sockets not allowed for gid " +
                  std::to_string(getegid()) +
                  " (net.ipv4.ping_group_range = 1 0) and no CAP_NET_RAW for raw sockets; grant "
                  "CAP_NET_RAW or widen ping_group_range");
      }
    }
    // Back with CAP_NET_RAW, the same check works.
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- Run control --------------------------------------------------------------------------

TEST_CASE("icmp: cancel() and expire() mid-run stop sending", "[icmp]") {
  LoopFixture fixture;
  {
    Inside net(fixture, false, /*silent=*/true);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    RawIcmp sniffer;
    auto probe = icmp_probe(h, "127.0.0.1", 5, 30ms);
    int calls = 0;
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(50ms);
    probe->cancel();
    std::size_t sent = sniffer.requests().size();
    CHECK(sent >= 1);
    CHECK(sent < 5);
    fixture.run_for(100ms);
    CHECK(sniffer.requests().size() == sent);  // nothing after cancel()
    CHECK(calls == 0);

    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(50ms);
    Result r = probe->expire();
    CHECK(r.status == Status::Timeout);
    CHECK(r.details["sent"].get<unsigned>() >= 1);
    CHECK_THAT(r.message, Catch::EndsWith("replies (100% loss)"));
    sent = sniffer.requests().size();
    fixture.run_for(100ms);
    CHECK(sniffer.requests().size() == sent);
    CHECK(calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: a shared raw socket whose interface was recreated is replaced", "[icmp]") {
  LoopFixture fixture;
  {
    Inside net(fixture, /*ping_sockets=*/false);
    if (!net.ready()) return;
    const std::string ns = net.ns().name();
    auto make_link = [&] {
      return test::ip({"-n", ns, "link", "add", "nm0", "type", "veth", "peer", "name", "nm1"}) &&
             test::ip({"-n", ns, "link", "set", "nm1", "up"}) &&
             test::ip({"-n", ns, "addr", "add", "10.77.0.1/24", "dev", "nm0"}) &&
             test::ip({"-n", ns, "link", "set", "nm0", "up"});
    };
    REQUIRE(make_link());
    ProbeHarness& h = net.harness();
    Endpoint e = test::endpoint("10.77.0.2");  // nobody on the link answers
    e.interface = "nm0";
    auto probe = icmp_probe(h, e);
    Result r = test::run_with_expiry(fixture, *probe, 200ms);
    CHECK(r.status == Status::Timeout);
    // The interface goes and comes back with a new index: the socket bound to the old one
    // can no longer send. At most one run says so; the next opens a new socket.
    REQUIRE(test::ip({"-n", ns, "link", "del", "nm0"}));
    REQUIRE(make_link());
    r = test::run_with_expiry(fixture, *probe, 200ms);
    INFO(r.message);
    CHECK((r.status == Status::Timeout || r.message.find("no such device") != std::string::npos));
    r = test::run_with_expiry(fixture, *probe, 200ms);
    INFO(r.message);
    CHECK(r.status == Status::Timeout);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("icmp: source_address and interface bind the socket", "[icmp]") {
  const bool ping_sockets = GENERATE(false, true);
  INFO(socket_kind(ping_sockets) + " sockets");
  LoopFixture fixture;
  {
    Inside net(fixture, ping_sockets);
    if (!net.ready()) return;
    ProbeHarness& h = net.harness();
    RawIcmp sniffer;
    Endpoint e = test::endpoint("127.0.0.1");
    e.source_address = "127.0.0.2";
    auto r = test::run_probe(fixture, *icmp_probe(h, e));
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    REQUIRE(sniffer.requests().size() == 1);
    CHECK(sniffer.requests()[0].source == "127.0.0.2");

    e.source_address = "192.0.2.1";  // not an address of this host
    r = test::run_probe(fixture, *icmp_probe(h, e));
    REQUIRE(r);
    CHECK(r->status == Status::LocalError);
    CHECK_THAT(r->message, Catch::StartsWith("cannot bind to source address 192.0.2.1: "));

    e = test::endpoint("127.0.0.1");
    e.interface = "nosuchdev0";
    r = test::run_probe(fixture, *icmp_probe(h, e));
    REQUIRE(r);
    CHECK(r->status == Status::LocalError);
    CHECK(r->message == "cannot bind to interface 'nosuchdev0': no such device");
    e.interface = "lo";
    r = test::run_probe(fixture, *icmp_probe(h, e));
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- The daemon ---------------------------------------------------------------------------

TEST_CASE("icmp: netmond pings, without any ICMP socket it says why and runs the rest", "[icmp]") {
  PingNet net(false);
  if (!net.ok || !net.ns.isolate_resolver()) {
    WARN("cannot create a network namespace here (not root?)");
    return;
  }
  std::optional<test::TcpListener> listener;
  {
    test::EnterNetns inside(net.ns);
    REQUIRE(inside.ok());
    listener.emplace("127.0.0.1");
  }
  const std::string port = std::to_string(listener->port());
  auto cfg = test::write_file(test::temp_dir(), "icmp.yaml",
                              "servers:\n"
                              "  - address: 127.0.0.1\n"
                              "    services: [ping, {type: tcp, port: " +
                                  port + "}]\n");
  auto up = test::run(net.ns.wrap({test::netmond_bin(), "--once", "-c", cfg}), 20s);
  INFO(up.out << up.err);
  CHECK(up.code == 0);
  CHECK(up.out.find("127.0.0.1/icmp UP ") != std::string::npos);
  CHECK(up.out.find("1/1 replies, rtt ") != std::string::npos);

  // The same without CAP_NET_RAW (dropped from the bounding set, so the exec'd netmond
  // never has it), where ping_group_range is "1 0".
  auto down = test::run(net.ns.wrap({"/usr/bin/setpriv", "--bounding-set", "-net_raw",
                                     test::netmond_bin(), "--once", "-c", cfg}),
                        20s);
  INFO(down.out << down.err);
  CHECK(down.code == 1);
  CHECK(down.out.find("127.0.0.1/icmp DOWN ") != std::string::npos);
  CHECK(down.out.find("no CAP_NET_RAW for raw sockets; grant CAP_NET_RAW or widen "
                      "ping_group_range") != std::string::npos);
  CHECK(down.out.find("127.0.0.1/tcp:" + port + " UP ") != std::string::npos);
}

// ---- Cost ---------------------------------------------------------------------------------

// Not a test: prints the CPU time (user + system, this thread) that concurrent checks take,
// raw (shared) and ping sockets (docs/probes.md#icmp). Run it with
// `netmond_tests '[.icmp-cost]' -s`.
TEST_CASE("icmp: CPU time of concurrent checks", "[.icmp-cost]") {
  auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_THREAD, &u);
    return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  for (bool ping_sockets : {false, true}) {
    for (auto [checks, count] :
         {std::pair{1, 100}, std::pair{10, 100}, std::pair{100, 100}, std::pair{100, 3}}) {
      LoopFixture fixture;
      {
        Inside net(fixture, ping_sockets);
        if (!net.ready()) return;
        ProbeHarness& h = net.harness();
        std::vector<std::unique_ptr<Probe>> probes;
        for (int i = 0; i < checks; ++i)
          probes.push_back(
              icmp_probe(h, "127.0.0." + std::to_string(i + 1), static_cast<unsigned>(count), 5ms));
        int done = 0, ok = 0;
        const auto before = cpu();
        for (auto& p : probes)
          p->start(5s, [&](Result r) {
            ++done;
            ok += r.ok();
          });
        REQUIRE(fixture.run_until([&] { return done == checks; }, 10s));
        const auto used = cpu() - before;
        CHECK(ok == checks);
        WARN(socket_kind(ping_sockets)
             << ": " << checks << " checks x " << count << " requests: " << used.count() / 1000.0
             << " ms CPU, "
             << static_cast<double>(used.count()) / static_cast<double>(checks * count)
             << " us per reply");
      }
      REQUIRE(fixture.finish() == 0);
    }
  }
}
