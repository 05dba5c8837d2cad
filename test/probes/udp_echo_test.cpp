// The udp_echo probe and its engine: the payload trailer and the statistics as pure
// functions; the probe against the real echo server (in process) and against fakes on
// loopback that answer wrongly, late, twice, out of order or not at all.
#include "udp_echo.h"

#include "echo_server.h"
#include "support/loop.h"
#include "support/netmond_echo.h"
#include "support/peers.h"
#include "support/probe_harness.h"
#include "support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

// A UDP peer on loopback that hands every datagram to `handler`, which may answer at once
// or later (send() from a timer), always from the peer's own address and port.
class EchoFake {
 public:
  using Handler = std::function<void(EchoFake&, const std::string& request, const SockAddr& from)>;
  EchoFake(uv_loop_t* loop, const std::string& ip, Handler handler) : handler_(std::move(handler)) {
    auto a = parse_ip(ip);
    if (!a) throw std::invalid_argument(ip);
    fd_.reset(::socket(a->family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd_ || ::bind(fd_.get(), a->get(), a->length) != 0) throw std::runtime_error("bind");
    SockAddr local;
    local.length = sizeof local.storage;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
    port_ = local.port();
    poll_.init(loop, fd_.get());
    poll_.start(UV_READABLE, [this](int status, int) {
      if (status == 0) on_readable();
    });
  }
  std::uint16_t port() const { return port_; }
  void send(std::string_view payload, const SockAddr& to) {
    ::sendto(fd_.get(), payload.data(), payload.size(), 0, to.get(), to.length);
  }
  std::vector<std::string> requests;
  std::vector<SockAddr> senders;

 private:
  void on_readable() {
    for (;;) {
      char buf[70000];
      SockAddr from;
      from.length = sizeof from.storage;
      ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from.storage), &from.length);
      if (n < 0) return;
      requests.emplace_back(buf, static_cast<size_t>(n));
      senders.push_back(from);
      if (handler_) handler_(*this, requests.back(), from);
    }
  }

  Fd fd_;  // before poll_: the poll is closed first
  uv::Poll poll_;
  Handler handler_;
  std::uint16_t port_ = 0;
};

void echo(EchoFake& f, const std::string& req, const SockAddr& from) { f.send(req, from); }

// Echoes while `answer` is true, and is silent while it is false.
EchoFake::Handler echo_while(const bool& answer) {
  return [&answer](EchoFake& f, const std::string& req, const SockAddr& from) {
    if (answer) f.send(req, from);
  };
}

std::unique_ptr<Probe> echo_probe(ProbeHarness& h, const std::string& ip, std::uint16_t port,
                                  unsigned count = 1, std::chrono::milliseconds spacing = 200ms) {
  UdpEchoSpec spec;
  spec.port = port;
  spec.count = count;
  spec.spacing = spacing;
  return make_probe(h.ctx, test::endpoint(ip), spec);
}

// Starts `probe`, runs the loop for `wait` (the run must not end meanwhile), then lets the
// deadline pass: the result expire() gives.
Result run_to_deadline(LoopFixture& fixture, Probe& probe, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds wait) {
  int calls = 0;
  probe.start(timeout, [&](Result) { ++calls; });
  fixture.run_for(wait);
  CHECK(calls == 0);  // nothing ended the run early
  Result r = probe.expire();
  fixture.run_for(20ms);
  CHECK(calls == 0);  // and nothing is delivered after expire()
  return r;
}

constexpr std::size_t kDefaultRequest = 18 + kEchoTrailerSize;  // "netmond echo check"

}  // namespace

// ---- Pure: the payload -----------------------------------------------------------------

TEST_CASE("udp_echo: a request is the message, padding, then a fixed-size trailer", "[udp_echo]") {
  EchoStamp s{0x0123456789abcdefULL, 42, 0xfedcba9876543210ULL};
  std::string r = encode_echo_request("hello", s);
  CHECK(r == "hello #netmond 0123456789abcdef 0000002a fedcba9876543210");
  CHECK(r.size() == 5 + kEchoTrailerSize);
  CHECK(echo_request_size("hello", 0) == r.size());
  REQUIRE(parse_echo_stamp(r));
  CHECK(*parse_echo_stamp(r) == s);

  std::string padded = encode_echo_request("hello", s, 100);
  CHECK(padded.size() == 100);
  CHECK(padded.starts_with("helloabcdefghijklmnopqrstuvwxyzab"));
  CHECK(padded.ends_with(r.substr(5)));
  CHECK(*parse_echo_stamp(padded) == s);

  // An empty message, and a message that looks like a trailer itself: the last one counts.
  CHECK(*parse_echo_stamp(encode_echo_request("", s)) == s);
  EchoStamp other{1, 2, 3};
  CHECK(*parse_echo_stamp(encode_echo_request(encode_echo_request("x", other), s)) == s);
  CHECK(encode_echo_request("", {}).size() == kEchoTrailerSize);
}

TEST_CASE("udp_echo: anything but a well-formed trailer does not parse", "[udp_echo]") {
  std::string good = encode_echo_request("m", {1, 2, 3});
  CHECK(parse_echo_stamp(good));
  CHECK_FALSE(parse_echo_stamp(""));
  CHECK_FALSE(parse_echo_stamp("garbage"));
  CHECK_FALSE(parse_echo_stamp(good.substr(0, good.size() - 1)));  // truncated
  CHECK_FALSE(parse_echo_stamp(good + "\n"));                      // something after it
  std::string upper = good;
  upper[upper.size() - 1] = 'A';  // the trailer is lower-case hex only
  CHECK_FALSE(parse_echo_stamp(upper));
  std::string bad_tag = good;
  bad_tag[good.size() - kEchoTrailerSize + 3] = 'N';  // " #Netmond "
  CHECK_FALSE(parse_echo_stamp(bad_tag));
  std::string no_space = good;
  no_space[good.size() - 26] = '0';  // the space between seq and time
  CHECK_FALSE(parse_echo_stamp(no_space));
  std::string sign = good;
  sign[good.size() - 16] = '-';
  CHECK_FALSE(parse_echo_stamp(sign));
}

TEST_CASE("udp_echo: sizes that cannot be sent are explained", "[udp_echo]") {
  CHECK(echo_size_problem("hello", 0).empty());
  CHECK(echo_size_problem("hello", 57).empty());
  CHECK(echo_size_problem("hello", kEchoMaxSize).empty());
  CHECK(echo_size_problem("hello", 56) ==
        "size 56 is too small: the message and netmond's 52-byte trailer need 57 bytes");
  CHECK(echo_size_problem("hello", kEchoMaxSize + 1) ==
        "size 65508 is more than the 65507 bytes a UDP datagram can carry");
  CHECK_THAT(echo_size_problem(std::string(kEchoMaxSize, 'x'), 0),
             Catch::StartsWith("the message is too long"));
}

// ---- Pure: the statistics --------------------------------------------------------------

TEST_CASE("udp_echo: rtt min/avg/max/mdev and jitter", "[udp_echo]") {
  RttStats none;
  CHECK(none.count() == 0);
  CHECK(none.avg_ms() == 0);
  CHECK(none.mdev_ms() == 0);
  CHECK(none.jitter_ms() == 0);

  RttStats one;
  one.add(1500us);
  CHECK(one.min_ms() == Approx(1.5));
  CHECK(one.max_ms() == Approx(1.5));
  CHECK(one.avg_ms() == Approx(1.5));
  CHECK(one.mdev_ms() == Approx(0).margin(1e-12));
  CHECK(one.jitter_ms() == 0);  // needs two RTTs

  RttStats s;
  for (auto ms : {1ms, 2ms, 3ms, 4ms}) s.add(ms);
  CHECK(s.count() == 4);
  CHECK(s.min_ms() == Approx(1));
  CHECK(s.max_ms() == Approx(4));
  CHECK(s.avg_ms() == Approx(2.5));
  CHECK(s.mdev_ms() == Approx(std::sqrt(1.25)));  // population standard deviation, as ping
  CHECK(s.jitter_ms() == Approx(1));              // |2-1|, |3-2|, |4-3|

  // Jitter follows arrival order: the same RTTs in another order jitter differently.
  RttStats zigzag;
  for (auto ms : {1ms, 4ms, 2ms, 3ms}) zigzag.add(ms);
  CHECK(zigzag.avg_ms() == Approx(2.5));
  CHECK(zigzag.mdev_ms() == Approx(std::sqrt(1.25)));
  CHECK(zigzag.jitter_ms() == Approx((3.0 + 2.0 + 1.0) / 3));

  RttStats steady;
  for (int i = 0; i < 5; ++i) steady.add(250us);
  CHECK(steady.mdev_ms() == Approx(0).margin(1e-9));
  CHECK(steady.jitter_ms() == Approx(0).margin(1e-12));
}

TEST_CASE("udp_echo: RTTs are written with three significant digits, as ping does", "[udp_echo]") {
  CHECK(format_rtt(143us) == "0.143 ms");
  CHECK(format_rtt(1680us) == "1.68 ms");
  CHECK(format_rtt(12340us) == "12.3 ms");
  CHECK(format_rtt(2301ms) == "2301 ms");
  CHECK(format_rtt(0.18) == "0.180 ms");
}

TEST_CASE("udp_echo: spec defaults and name", "[udp_echo]") {
  UdpEchoSpec s;
  CHECK(UdpEchoSpec::kType == "udp_echo");
  CHECK(s.port == 10100);
  CHECK(s.message == "netmond echo check");
  CHECK(s.count == 1);
  CHECK(s.spacing == 200ms);
  CHECK(s.size == 0);
  CHECK(s.max_loss == 0);
  CHECK(s.name_suffix() == "udp_echo:10100");
}

// ---- The probe against echo servers ----------------------------------------------------

TEST_CASE("udp_echo: a peer that echoes is up, over IPv4 and IPv6", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      EchoFake fake(fixture.loop(), ip, echo);
      auto probe = echo_probe(h, ip, fake.port());
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      CHECK_THAT(r->message, Catch::Matches("echoed 70 bytes in [0-9.]+ ms"));
      CHECK(r->details["address"] == ip);
      CHECK(r->details["port"] == fake.port());
      CHECK(r->details["bytes"] == kDefaultRequest);
      CHECK(r->details["rtt_ms"].get<double>() > 0);
      CHECK(r->details["sent"] == 1);
      CHECK(r->details["echoed"] == 1);
      CHECK(r->details["lost"] == 0);
      CHECK(r->details["mismatched"] == 0);
      CHECK(r->details["duplicates"] == 0);
      CHECK_FALSE(r->details.contains("jitter_ms"));  // one RTT has no jitter
      REQUIRE(fake.requests.size() == 1);
      CHECK(fake.requests[0].starts_with("netmond echo check #netmond "));
      REQUIRE(parse_echo_stamp(fake.requests[0]));
      CHECK(parse_echo_stamp(fake.requests[0])->seq == 1);

      // Every run has its own nonce: a request never repeats.
      auto again = test::run_probe(fixture, *probe);
      REQUIRE(again);
      CHECK(again->status == Status::Ok);
      REQUIRE(fake.requests.size() == 2);
      CHECK(parse_echo_stamp(fake.requests[0])->nonce != parse_echo_stamp(fake.requests[1])->nonce);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: up against the real echo server, IPv4 and IPv6", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoServer server(fixture.loop(), EchoConfig{});
    std::string err;
    REQUIRE(server.listen(*parse_ip("127.0.0.1"), &err));
    REQUIRE(server.listen(*parse_ip("::1"), &err));
    REQUIRE(server.listeners().size() == 2);
    for (const auto& l : server.listeners()) {
      INFO(l.describe());
      UdpEchoSpec spec;
      spec.port = l.address.port();
      spec.count = 3;
      spec.spacing = 10ms;
      spec.message = "seed echo check";
      auto probe = make_probe(h.ctx, test::endpoint(l.address.ip()), spec);
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      CHECK_THAT(r->message, Catch::Matches("echoed 3 of 3 requests of 67 bytes, rtt min/avg/max "
                                            "[0-9.]+/[0-9.]+/[0-9.]+ ms"));
      CHECK(r->details["echoed"] == 3);
      CHECK(r->details["lost"] == 0);
      CHECK(r->details.contains("jitter_ms"));
      CHECK(r->details["rtt_min_ms"].get<double>() <= r->details["rtt_max_ms"].get<double>());
    }
    CHECK(server.counters().echoed == 6);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: down against the real server after it stopped", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    std::uint16_t port = 0;
    {
      EchoServer server(fixture.loop(), EchoConfig{});
      std::string err;
      REQUIRE(server.listen(*parse_ip("127.0.0.1"), &err));
      port = server.listeners()[0].address.port();
      auto r = test::run_probe(fixture, *echo_probe(h, "127.0.0.1", port));
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
    }
    fixture.run_for(10ms);  // the server's sockets close
    auto r = test::run_probe(fixture, *echo_probe(h, "127.0.0.1", port));
    REQUIRE(r);
    CHECK(r->status == Status::Refused);
    CHECK(r->message == "port unreachable");
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- The probe against fakes -----------------------------------------------------------

TEST_CASE("udp_echo: a wrong payload is a mismatch at the deadline, never an early end",
          "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    SECTION("garbage") {
      EchoFake fake(
          fixture.loop(), "127.0.0.1",
          [](EchoFake& f, const std::string&, const SockAddr& from) { f.send("garbage", from); });
      auto probe = echo_probe(h, "127.0.0.1", fake.port());
      Result r = run_to_deadline(fixture, *probe, 300ms, 200ms);
      CHECK(r.status == Status::BadResponse);
      CHECK(r.message == "payload mismatch (got 7 bytes, expected 70)");
      CHECK(r.details["mismatched"] == 1);
      CHECK(r.details["echoed"] == 0);
      CHECK(r.details["lost"] == 1);
      CHECK(fake.requests.size() == 1);
    }
    SECTION("a truncated echo") {
      EchoFake fake(fixture.loop(), "127.0.0.1",
                    [](EchoFake& f, const std::string& req, const SockAddr& from) {
                      f.send(req.substr(0, 12), from);
                    });
      auto probe = echo_probe(h, "127.0.0.1", fake.port());
      Result r = run_to_deadline(fixture, *probe, 300ms, 200ms);
      CHECK(r.status == Status::BadResponse);
      CHECK(r.message == "payload mismatch (got 12 bytes, expected 70)");
    }
    SECTION("one byte changed") {
      EchoFake fake(fixture.loop(), "127.0.0.1",
                    [](EchoFake& f, const std::string& req, const SockAddr& from) {
                      std::string bad = req;
                      bad[3] = 'X';  // "netXond echo check ..."
                      f.send(bad, from);
                    });
      auto probe = echo_probe(h, "127.0.0.1", fake.port());
      Result r = run_to_deadline(fixture, *probe, 300ms, 200ms);
      CHECK(r.status == Status::BadResponse);
      CHECK(r.message ==
            "payload mismatch (got 70 bytes, expected 70, first difference at byte 3)");
    }
    SECTION("the send time in the trailer changed") {
      // A well-formed trailer of this run and request, but another send time: the trailer
      // is compared too, not only the message before it.
      EchoFake fake(fixture.loop(), "127.0.0.1",
                    [](EchoFake& f, const std::string& req, const SockAddr& from) {
                      std::string bad = req;
                      bad.back() = bad.back() == '0' ? '1' : '0';
                      REQUIRE(parse_echo_stamp(bad));
                      f.send(bad, from);
                    });
      auto probe = echo_probe(h, "127.0.0.1", fake.port());
      Result r = run_to_deadline(fixture, *probe, 300ms, 200ms);
      CHECK(r.status == Status::BadResponse);
      CHECK(r.message ==
            "payload mismatch (got 70 bytes, expected 70, first difference at byte 69)");
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: a stray wrong datagram before the right echo does no harm", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoFake fake(fixture.loop(), "127.0.0.1",
                  [](EchoFake& f, const std::string& req, const SockAddr& from) {
                    f.send("stray", from);
                    f.send(req, from);
                  });
    auto r = test::run_probe(fixture, *echo_probe(h, "127.0.0.1", fake.port()));
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    CHECK(r->details["mismatched"] == 1);
    CHECK(r->details["echoed"] == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: silence is a timeout with the check's timeout in the message", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoFake fake(fixture.loop(), "127.0.0.1", nullptr);
    auto probe = echo_probe(h, "127.0.0.1", fake.port());
    Result r = run_to_deadline(fixture, *probe, 250ms, 250ms);
    CHECK(r.status == Status::Timeout);
    CHECK(r.message == "no echo within 250ms");
    CHECK(r.details["sent"] == 1);
    CHECK(r.details["lost"] == 1);
    CHECK_FALSE(r.details.contains("rtt_ms"));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: a late echo never counts, in its own run or in a later one", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    // Answers nothing at once; the test sends the echoes when it wants, from the fake.
    EchoFake fake(fixture.loop(), "127.0.0.1", nullptr);
    auto probe = echo_probe(h, "127.0.0.1", fake.port());

    // Run 1: the echo comes after the deadline.
    Result r1 = run_to_deadline(fixture, *probe, 200ms, 200ms);
    CHECK(r1.status == Status::Timeout);
    CHECK(r1.message == "no echo within 200ms");
    REQUIRE(fake.requests.size() == 1);
    fake.send(fake.requests[0], fake.senders[0]);  // to a socket that is gone
    fixture.run_for(20ms);

    // Run 2: the echo of run 1 arrives (even at run 2's own port, should the kernel reuse
    // it): it is stale, and the run still has no echo of its own.
    int calls = 0;
    probe->start(200ms, [&](Result) { ++calls; });
    REQUIRE(fixture.run_until([&] { return fake.requests.size() == 2; }, 1s));
    fake.send(fake.requests[0], fake.senders[1]);
    fixture.run_for(150ms);
    CHECK(calls == 0);
    Result r2 = probe->expire();
    CHECK(r2.status == Status::Timeout);
    CHECK(r2.message == "no echo within 200ms (1 stale echo of another run ignored)");
    CHECK(r2.details["stale"] == 1);
    CHECK(r2.details["echoed"] == 0);

    // Run 3: a stale echo, then the right one: up, the stale one counted.
    std::optional<Result> r3;
    probe->start(200ms, [&](Result r) { r3 = std::move(r); });
    REQUIRE(fixture.run_until([&] { return fake.requests.size() == 3; }, 1s));
    fake.send(fake.requests[1], fake.senders[2]);
    fake.send(fake.requests[2], fake.senders[2]);
    REQUIRE(fixture.run_until([&] { return r3.has_value(); }, 1s));
    CHECK(r3->status == Status::Ok);
    CHECK(r3->details["stale"] == 1);
    CHECK(r3->details["echoed"] == 1);
    CHECK(calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: a check keeps its socket after a run that succeeded, and only then",
          "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    bool answer = true;
    EchoFake fake(fixture.loop(), "127.0.0.1", echo_while(answer));
    auto probe = echo_probe(h, "127.0.0.1", fake.port());
    const std::size_t fds = test::open_fd_count();

    auto r1 = test::run_probe(fixture, *probe);
    REQUIRE(r1);
    CHECK(r1->status == Status::Ok);
    CHECK(test::open_fd_count() == fds + 1);  // kept

    // Between runs, what reaches the kept socket is read and dropped: the loop sleeps
    // instead of spinning on a readable socket.
    fake.send("stray between runs", fake.senders[0]);
    CHECK(fixture.run_for(100ms) < 50);
    // Queued the moment before a run starts: dropped unread too, not this run's.
    fake.send(fake.requests[0], fake.senders[0]);

    auto r2 = test::run_probe(fixture, *probe);
    REQUIRE(r2);
    CHECK(r2->status == Status::Ok);
    CHECK(r2->details["stale"] == 0);
    CHECK(r2->details["mismatched"] == 0);
    REQUIRE(fake.senders.size() == 2);
    CHECK(fake.senders[1].same_endpoint(fake.senders[0]));  // the same socket, so the same port
    CHECK(test::open_fd_count() == fds + 1);

    // A run that fails closes it; the next run opens a fresh one.
    answer = false;
    Result r3 = test::run_with_expiry(fixture, *probe, 100ms);
    CHECK(r3.status == Status::Timeout);
    CHECK(test::open_fd_count() == fds);
    answer = true;
    auto r4 = test::run_probe(fixture, *probe);
    REQUIRE(r4);
    CHECK(r4->status == Status::Ok);
    CHECK(test::open_fd_count() == fds + 1);
    probe.reset();
    CHECK(test::open_fd_count() == fds);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: on a kept socket, an ICMP error that quotes another run's request is ignored",
          "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    bool answer = true;
    EchoFake fake(fixture.loop(), "127.0.0.1", echo_while(answer));
    auto probe = echo_probe(h, "127.0.0.1", fake.port());
    auto r1 = test::run_probe(fixture, *probe);
    REQUIRE(r1);
    REQUIRE(r1->status == Status::Ok);

    answer = false;
    std::optional<Result> r2;
    probe->start(2s, [&](Result r) { r2 = std::move(r); });
    REQUIRE(fixture.run_until([&] { return fake.requests.size() == 2; }, 1s));
    REQUIRE(fake.senders[1].same_endpoint(fake.senders[0]));  // the kept socket
    const SockAddr server = *parse_ip("127.0.0.1", fake.port());
    // A port unreachable for run 1's request, arriving late, during run 2: not run 2's.
    test::send_icmp_port_unreachable(fake.senders[1], server, fake.requests[0]);
    fixture.run_for(100ms);
    CHECK_FALSE(r2);
    // One for run 2's own request ends it.
    test::send_icmp_port_unreachable(fake.senders[1], server, fake.requests[1]);
    REQUIRE(fixture.run_until([&] { return r2.has_value(); }, 1s));
    CHECK(r2->status == Status::Refused);
    CHECK(r2->message == "port unreachable");
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: an echo that comes twice is counted as a duplicate and is still up",
          "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoFake fake(fixture.loop(), "127.0.0.1",
                  [](EchoFake& f, const std::string& req, const SockAddr& from) {
                    f.send(req, from);
                    f.send(req, from);
                  });
    SECTION("one request") {
      auto r = test::run_probe(fixture, *echo_probe(h, "127.0.0.1", fake.port()));
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      CHECK(r->details["echoed"] == 1);
      CHECK(r->details["duplicates"] == 1);  // both were queued when the first was read
    }
    SECTION("three requests") {
      auto r = test::run_probe(fixture, *echo_probe(h, "127.0.0.1", fake.port(), 3, 20ms));
      REQUIRE(r);
      CHECK(r->status == Status::Ok);
      CHECK(r->details["echoed"] == 3);
      CHECK(r->details["duplicates"] == 3);
      CHECK(r->details["lost"] == 0);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: a closed port is Refused: port unreachable", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    struct Case {
      std::string ip;
      int type, code;
    };
    for (const Case& c : {Case{"127.0.0.1", 3, 3}, Case{"::1", 1, 4}}) {
      INFO(c.ip);
      auto probe = echo_probe(h, c.ip, test::closed_udp_port(c.ip));
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      CHECK(r->status == Status::Refused);
      CHECK(r->message == "port unreachable");
      CHECK(r->details["icmp_type"] == c.type);
      CHECK(r->details["icmp_code"] == c.code);
      CHECK(r->details["icmp_from"] == c.ip);
      CHECK(r->details["sent"] == 1);
      CHECK(r->details["echoed"] == 0);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: with count > 1, lost requests are counted", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    // Echoes the odd sequence numbers only.
    EchoFake fake(fixture.loop(), "127.0.0.1",
                  [](EchoFake& f, const std::string& req, const SockAddr& from) {
                    auto s = parse_echo_stamp(req);
                    if (s && s->seq % 2 == 1) f.send(req, from);
                  });
    UdpEchoSpec spec;
    spec.port = fake.port();
    spec.count = 4;
    spec.spacing = 20ms;

    SECTION("any loss is down by default") {
      auto probe = make_probe(h.ctx, test::endpoint("127.0.0.1"), spec);
      Result r = run_to_deadline(fixture, *probe, 400ms, 300ms);
      CHECK(r.status == Status::Timeout);
      CHECK(r.message == "no echo for 2 of 4 requests within 400ms");
      CHECK(r.details["sent"] == 4);
      CHECK(r.details["echoed"] == 2);
      CHECK(r.details["lost"] == 2);
      CHECK(r.details["loss"] == 50.0);
      CHECK(r.details.contains("rtt_min_ms"));
      CHECK(r.details.contains("rtt_mdev_ms"));
      CHECK(r.details.contains("jitter_ms"));
      CHECK(fake.requests.size() == 4);
    }
    SECTION("max_loss tolerates some") {
      spec.max_loss = 50;
      auto probe = make_probe(h.ctx, test::endpoint("127.0.0.1"), spec);
      Result r = run_to_deadline(fixture, *probe, 400ms, 300ms);
      CHECK(r.status == Status::Ok);
      CHECK_THAT(r.message, Catch::Matches("echoed 2 of 4 requests of 70 bytes \\(50% lost\\), "
                                           "rtt min/avg/max [0-9.]+/[0-9.]+/[0-9.]+ ms"));
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: echoes out of order are counted and still up", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    // Holds the echo of request 1 back until request 2 has been echoed.
    EchoFake fake(fixture.loop(), "127.0.0.1",
                  [](EchoFake& f, const std::string& req, const SockAddr& from) {
                    if (f.requests.size() == 2) {
                      f.send(req, from);
                      f.send(f.requests[0], from);
                    }
                  });
    auto r = test::run_probe(fixture, *echo_probe(h, "127.0.0.1", fake.port(), 2, 20ms));
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    CHECK(r->details["echoed"] == 2);
    CHECK(r->details["reordered"] == 1);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: the requests of a run fit in the first half of its timeout", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoFake fake(fixture.loop(), "127.0.0.1", echo);
    // 3 requests 10s apart would never fit in 400ms: they go 100ms apart instead.
    auto probe = echo_probe(h, "127.0.0.1", fake.port(), 3, 10s);
    auto r = test::run_probe(fixture, *probe, 400ms);
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    CHECK(r->latency < 400ms);
    CHECK(r->latency >= 190ms);
    CHECK(r->details["echoed"] == 3);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: cancel() and expire() mid-run close everything", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoFake fake(fixture.loop(), "127.0.0.1", nullptr);
    auto probe = echo_probe(h, "127.0.0.1", fake.port(), 5, 30ms);
    int calls = 0;
    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(50ms);
    probe->cancel();
    std::size_t sent = fake.requests.size();
    fixture.run_for(100ms);
    CHECK(fake.requests.size() == sent);  // no request after cancel()
    CHECK(calls == 0);

    probe->start(1s, [&](Result) { ++calls; });
    fixture.run_for(50ms);
    Result r = probe->expire();
    CHECK(r.status == Status::Timeout);
    CHECK(r.details["sent"].get<unsigned>() >= 1);
    sent = fake.requests.size();
    fixture.run_for(100ms);
    CHECK(fake.requests.size() == sent);
    CHECK(calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: source_address binds the probe's socket", "[udp_echo]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    EchoFake fake(fixture.loop(), "127.0.0.1", echo);
    UdpEchoSpec spec;
    spec.port = fake.port();
    Endpoint e = test::endpoint("127.0.0.1");
    e.source_address = "127.0.0.2";
    auto r = test::run_probe(fixture, *make_probe(h.ctx, e, spec));
    REQUIRE(r);
    CHECK(r->status == Status::Ok);
    REQUIRE(fake.senders.size() == 1);
    CHECK(fake.senders[0].ip() == "127.0.0.2");
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- The engine as the client uses it: per-request timeouts, late echoes, drain --------

TEST_CASE("udp_echo: the exchange times requests out and reports late echoes", "[udp_echo]") {
  LoopFixture fixture;
  {
    EchoFake fake(fixture.loop(), "127.0.0.1", nullptr);
    EchoExchange ex(fixture.loop());
    std::vector<EchoEvent> events;
    bool done = false;
    EchoExchangeOptions o;
    o.message = "x";
    o.count = 2;
    o.spacing = 50ms;
    o.timeout = 30ms;
    REQUIRE(ex.start(
                *parse_ip("127.0.0.1", fake.port()), o,
                [&](const EchoEvent& e) { events.push_back(e); }, [&] { done = true; }) == 0);
    // Request 1 times out at 30ms; its echo comes at ~40ms: late. Request 2 (at 50ms) is
    // echoed at once.
    REQUIRE(fixture.run_until([&] { return fake.requests.size() == 1; }, 1s));
    fixture.run_for(40ms);
    fake.send(fake.requests[0], fake.senders[0]);
    REQUIRE(fixture.run_until([&] { return fake.requests.size() == 2; }, 1s));
    fake.send(fake.requests[1], fake.senders[1]);
    REQUIRE(fixture.run_until([&] { return done; }, 1s));
    REQUIRE(events.size() == 3);
    CHECK(events[0].kind == EchoEvent::Kind::Timeout);
    CHECK(events[0].seq == 1u);
    CHECK(events[1].kind == EchoEvent::Kind::Late);
    CHECK(events[1].seq == 1u);
    CHECK(events[2].kind == EchoEvent::Kind::Echo);
    CHECK(events[2].seq == 2u);
    const EchoStats& s = ex.stats();
    CHECK(s.sent == 2);
    CHECK(s.echoed == 1);
    CHECK(s.late == 1);
    CHECK(s.lost() == 1);
    CHECK_FALSE(ex.running());
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: the first request leaves inside start(), a failed send is told from the loop",
          "[udp_echo]") {
  LoopFixture fixture;
  {
    // A plain socket that nobody polls: what start() sent is queued on it at once.
    Fd peer(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    SockAddr local = *parse_ip("127.0.0.1", 0);
    REQUIRE(::bind(peer.get(), local.get(), local.length) == 0);
    local.length = sizeof local.storage;
    ::getsockname(peer.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);

    EchoExchange ex(fixture.loop());
    std::vector<EchoEvent> events;
    bool done = false;
    auto on_event = [&](const EchoEvent& e) { events.push_back(e); };
    auto on_done = [&] { done = true; };
    EchoExchangeOptions o;
    o.message = "first";
    REQUIRE(ex.start(local, o, on_event, on_done) == 0);
    char buf[128];
    ssize_t n = ::recv(peer.get(), buf, sizeof buf, MSG_DONTWAIT);
    REQUIRE(n == static_cast<ssize_t>(5 + kEchoTrailerSize));
    CHECK(std::string_view(buf, 5) == "first");
    CHECK(ex.stats().sent == 1);
    ex.stop();

    // Too large for a UDP datagram (parse() refuses such a size; the engine is told here):
    // the send fails inside start(), and is reported once the loop runs.
    o.size = 70000;
    REQUIRE(ex.start(local, o, on_event, on_done) == 0);
    CHECK(events.empty());
    CHECK_FALSE(done);
    REQUIRE(fixture.run_until([&] { return done; }, 1s));
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == EchoEvent::Kind::Error);
    CHECK(events[0].status == Status::LocalError);
    CHECK(events[0].text == "cannot send: message too long");
    CHECK_FALSE(ex.running());
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: drain() stops sending and ends once the requests in flight settle",
          "[udp_echo]") {
  LoopFixture fixture;
  {
    EchoFake fake(fixture.loop(), "127.0.0.1", echo);
    EchoExchange ex(fixture.loop());
    bool done = false;
    EchoExchangeOptions o;
    o.count = 0;  // until drained
    o.spacing = 20ms;
    o.timeout = 500ms;
    REQUIRE(ex.start(*parse_ip("127.0.0.1", fake.port()), o, nullptr, [&] { done = true; }) == 0);
    REQUIRE(fixture.run_until([&] { return ex.stats().echoed >= 3; }, 2s));
    ex.drain();
    REQUIRE(fixture.run_until([&] { return done; }, 1s));
    CHECK(ex.stats().sent == ex.stats().echoed);
    std::size_t sent = fake.requests.size();
    fixture.run_for(60ms);
    CHECK(fake.requests.size() == sent);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("udp_echo: the exchange over TCP", "[udp_echo]") {
  LoopFixture fixture;
  {
    EchoServer server(fixture.loop(), [] {
      EchoConfig c;
      c.tcp = true;
      return c;
    }());
    std::string err;
    REQUIRE(server.listen(*parse_ip("127.0.0.1"), &err));
    EchoExchange ex(fixture.loop());
    std::vector<EchoEvent> events;
    bool done = false;
    EchoExchangeOptions o;
    o.message = "over tcp";
    o.count = 3;
    o.spacing = 10ms;
    o.timeout = 1s;
    o.tcp = true;
    REQUIRE(ex.start(
                server.listeners()[0].address, o, [&](const EchoEvent& e) { events.push_back(e); },
                [&] { done = true; }) == 0);
    REQUIRE(fixture.run_until([&] { return done; }, 2s));
    CHECK(ex.stats().echoed == 3);
    REQUIRE(events.size() == 3);
    for (const auto& e : events) CHECK(e.kind == EchoEvent::Kind::Echo);

    // A closed port: the connection is refused.
    events.clear();
    done = false;
    REQUIRE(ex.start(
                *parse_ip("127.0.0.1", test::closed_tcp_port("127.0.0.1")), o,
                [&](const EchoEvent& e) { events.push_back(e); }, [&] { done = true; }) == 0);
    REQUIRE(fixture.run_until([&] { return done; }, 2s));
    REQUIRE_FALSE(events.empty());
    CHECK(events.back().kind == EchoEvent::Kind::Error);
    CHECK(events.back().status == Status::Refused);
    CHECK(events.back().text == "connection refused");
  }
  REQUIRE(fixture.finish() == 0);
}

// ---- End to end: the daemon's seed-style echo check against the netmond-echo program ----

TEST_CASE("udp_echo: netmond's seed-style check is up against netmond-echo, down without it",
          "[udp_echo]") {
  test::NetmondEcho server;
  const std::string port = server.port();
  // The seed's line, with the port of this test's server instead of the default 10100.
  auto cfg = test::write_file(test::temp_dir(), "seed.yaml",
                              "servers:\n"
                              "  - {address: 127.0.0.1, interval: 300,\n"
                              "     services: [{type: udp_echo_client, port: " +
                                  port + "}]}\n");
  auto up = test::run({test::netmond_bin(), "--once", "-c", cfg}, 20s);
  INFO(up.out << up.err);
  CHECK(up.code == 0);
  CHECK(up.out.find("127.0.0.1/udp_echo:" + port + " UP ") != std::string::npos);
  CHECK(up.out.find("echoed 70 bytes in ") != std::string::npos);

  REQUIRE(server.stop() == 0);
  auto down = test::run({test::netmond_bin(), "--once", "-c", cfg}, 20s);
  INFO(down.out << down.err);
  CHECK(down.code == 1);
  CHECK(down.out.find("127.0.0.1/udp_echo:" + port + " DOWN ") != std::string::npos);
  CHECK(down.out.find("port unreachable") != std::string::npos);
}
