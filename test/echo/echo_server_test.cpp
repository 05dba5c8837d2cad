// EchoServer in-process, on the test's loop, against plain sockets on loopback.
#include "echo_server.h"

#include "clients.h"
#include "support/loop.h"

#include <catch2/catch.hpp>

#include <csignal>
#include <future>
#include <thread>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;
using netmond::test::UdpClient;

namespace {

// Binds ip:0 and returns the UDP listener's address.
SockAddr listen_on(EchoServer& s, const std::string& ip) {
  std::string err;
  REQUIRE(s.listen(*parse_ip(ip, 0), &err));
  return s.listeners().back().tcp ? s.listeners()[s.listeners().size() - 2].address
                                  : s.listeners().back().address;
}

// Sends `data` and serves until the server has received it; the reply, if any, is then
// already in the client's socket (replies are sent inside the receive callback).
std::optional<test::Datagram> exchange(LoopFixture& f, EchoServer& s, UdpClient& c,
                                       const SockAddr& to, std::string_view data) {
  auto before = s.counters().received;
  REQUIRE(c.send(to, data));
  REQUIRE(f.run_until([&] { return s.counters().received > before; }));
  return c.recv();
}

EchoConfig no_limit() {
  EchoConfig c;
  c.rate = 0;
  return c;
}

// A port below 1024 that the test can bind on `ip`, or nullopt (not root).
std::optional<UdpClient> low_port_client(const std::string& ip) {
  for (std::uint16_t port = 1000; port > 900; --port) {
    UdpClient c(ip, port);
    if (c.ok()) return c;
    if (c.error() == EACCES) break;
  }
  return std::nullopt;
}

// Runs `fn` on a thread while the loop serves; its result.
template <typename Fn>
auto serve_while(LoopFixture& f, Fn fn, std::chrono::milliseconds limit = 10s) {
  auto fut = std::async(std::launch::async, fn);
  // The thread finishing does not wake the loop: a ticking timer makes it look.
  uv::Timer tick(f.loop());
  tick.start(
      1ms, [] {}, 1ms);
  f.run_until([&] { return fut.wait_for(0s) == std::future_status::ready; }, limit);
  return fut.get();
}

}  // namespace

TEST_CASE("echo server: UDP echoes the exact bytes over IPv4 and IPv6, from the address asked",
          "[echo]") {
  LoopFixture f;
  {
    EchoServer s(f.loop(), EchoConfig{});
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      auto to = listen_on(s, ip);
      UdpClient c(ip);
      REQUIRE(c.ok());
      std::string all_bytes;
      for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
      for (const std::string& payload :
           {std::string("hello"), std::string(), all_bytes, std::string(1472, 'x')}) {
        INFO("payload of " << payload.size() << " bytes");
        auto reply = exchange(f, s, c, to, payload);
        REQUIRE(reply);
        CHECK(reply->data == payload);
        CHECK(reply->from.with_port() == to.with_port());
      }
    }
    CHECK(s.counters().received == 8);
    CHECK(s.counters().echoed == 8);
    CHECK(s.counters().dropped() == 0);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: a batch of datagrams from many sockets is answered in full", "[echo]") {
  LoopFixture f;
  {
    EchoServer s(f.loop(), no_limit());
    auto to = listen_on(s, "127.0.0.1");
    std::vector<UdpClient> clients;
    for (int i = 0; i < 8; ++i) clients.emplace_back("127.0.0.1");
    // More than one recvmmsg batch (20) waits in the socket before the loop runs.
    for (int round = 0; round < 10; ++round)
      for (size_t i = 0; i < clients.size(); ++i)
        REQUIRE(clients[i].send(to, "r" + std::to_string(round) + "c" + std::to_string(i)));
    REQUIRE(f.run_until([&] { return s.counters().received == 80; }));
    for (size_t i = 0; i < clients.size(); ++i)
      for (int round = 0; round < 10; ++round) {
        auto d = clients[i].recv();
        REQUIRE(d);
        CHECK(d->data == "r" + std::to_string(round) + "c" + std::to_string(i));
      }
    CHECK(s.counters().echoed == 80);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: datagrams over max_size are dropped", "[echo]") {
  LoopFixture f;
  {
    EchoConfig config;
    config.max_size = 100;
    EchoServer s(f.loop(), config);
    auto to = listen_on(s, "127.0.0.1");
    UdpClient c("127.0.0.1");
    CHECK_FALSE(exchange(f, s, c, to, std::string(101, 'a')));
    CHECK_FALSE(exchange(f, s, c, to, std::string(60000, 'a')));
    CHECK(exchange(f, s, c, to, std::string(100, 'a')));
    CHECK(s.counters().too_large == 2);
    CHECK(s.counters().echoed == 1);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: source ports below 1024 and 2049 are not answered", "[echo]") {
  auto probe = low_port_client("127.0.0.1");
  if (!probe) {
    WARN("skipped: binding a source port below 1024 needs root (or CAP_NET_BIND_SERVICE)");
    return;
  }
  probe.reset();
  LoopFixture f;
  {
    EchoServer s(f.loop(), EchoConfig{});
    auto to = listen_on(s, "127.0.0.1");
    auto low = low_port_client("127.0.0.1");
    REQUIRE(low);
    CHECK_FALSE(exchange(f, s, *low, to, "loop?"));
    CHECK(s.counters().low_port == 1);
    UdpClient nfs("127.0.0.1", 2049);
    if (nfs.ok()) {
      CHECK_FALSE(exchange(f, s, nfs, to, "loop?"));
      CHECK(s.counters().low_port == 2);
    } else {
      WARN("port 2049 is taken here (an NFS server?); its case is covered by the filter tests");
    }
    CHECK(s.counters().echoed == 0);
  }
  {
    EchoConfig lab;
    lab.allow_low_ports = true;
    EchoServer s(f.loop(), lab);
    auto to = listen_on(s, "127.0.0.1");
    auto low = low_port_client("127.0.0.1");
    REQUIRE(low);
    auto reply = exchange(f, s, *low, to, "lab");
    REQUIRE(reply);
    CHECK(reply->data == "lab");
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: the rate limit drops what goes beyond the burst, per source", "[echo]") {
  LoopFixture f;
  {
    EchoConfig config;
    config.rate = 0.001;  // no refill within the test
    config.burst = 5;
    EchoServer s(f.loop(), config);
    auto to = listen_on(s, "127.0.0.1");
    UdpClient a("127.0.0.1");
    for (int i = 0; i < 12; ++i) REQUIRE(a.send(to, "burst " + std::to_string(i)));
    REQUIRE(f.run_until([&] { return s.counters().received == 12; }));
    int replies = 0;
    while (a.recv()) ++replies;
    CHECK(replies == 5);
    CHECK(s.counters().echoed == 5);
    CHECK(s.counters().rate_limited == 7);
    // Another port of the same host shares its bucket; another address has its own.
    UdpClient same_host("127.0.0.1");
    CHECK_FALSE(exchange(f, s, same_host, to, "x"));
    UdpClient other("127.0.0.2");
    REQUIRE(other.ok());
    CHECK(exchange(f, s, other, to, "x"));
    CHECK(s.rate_limiter().tracked() == 2);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: --allow restricts who is answered, over UDP and TCP", "[echo]") {
  std::signal(SIGPIPE, SIG_IGN);
  LoopFixture f;
  {
    EchoConfig config;
    config.tcp = true;
    config.allow = {*Cidr::parse("127.0.0.2/32")};
    EchoServer s(f.loop(), config);
    auto to = listen_on(s, "127.0.0.1");
    UdpClient outsider("127.0.0.1"), insider("127.0.0.2");
    REQUIRE(insider.ok());
    CHECK_FALSE(exchange(f, s, outsider, to, "x"));
    CHECK(s.counters().not_allowed == 1);
    auto reply = exchange(f, s, insider, to, "y");
    REQUIRE(reply);
    CHECK(reply->data == "y");

    // TCP from 127.0.0.1 is accepted and closed at once.
    auto got = serve_while(f, [&] { return test::tcp_echo_roundtrip(to, "nope"); });
    CHECK((!got || got->empty()));
    CHECK(s.counters().tcp_not_allowed == 1);
    CHECK(s.counters().tcp_accepted == 0);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: TCP echoes every byte until the peer closes, over IPv4 and IPv6",
          "[echo]") {
  std::signal(SIGPIPE, SIG_IGN);
  LoopFixture f;
  {
    EchoConfig config;
    config.tcp = true;
    EchoServer s(f.loop(), config);
    // Larger than every buffer on the way, so the server must hold back reading.
    std::string data(4 * 1024 * 1024, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 251);
    std::uint64_t expected = 0;
    for (std::string ip : {"127.0.0.1", "::1"}) {
      INFO(ip);
      auto to = listen_on(s, ip);
      auto got = serve_while(f, [&] { return test::tcp_echo_roundtrip(to, data); });
      REQUIRE(got);
      CHECK(got->size() == data.size());
      CHECK(*got == data);
      expected += data.size();
      // The server closes its side after the echo; the connection is then gone.
      CHECK(f.run_until([&] { return s.connections() == 0; }));
    }
    CHECK(s.counters().tcp_accepted == 2);
    CHECK(s.counters().tcp_bytes == expected);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: a TCP peer that does not read is not read from, and times out", "[echo]") {
  std::signal(SIGPIPE, SIG_IGN);
  LoopFixture f;
  {
    EchoConfig config;
    config.tcp = true;
    config.idle_timeout = 300ms;
    EchoServer s(f.loop(), config);
    auto to = listen_on(s, "127.0.0.1");
    Fd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    connect(c.get(), to.get(), to.length);
    REQUIRE(f.run_until([&] { return s.connections() == 1; }));
    // Write without reading until nothing moves: the server stops reading once our
    // receive buffer and its send buffer are full, so what we could send is bounded.
    std::string chunk(64 * 1024, 'z');
    size_t sent = 0;
    int stalls = 0;
    for (int i = 0; i < 2000 && stalls < 5; ++i) {
      ssize_t n = send(c.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        stalls = 0;
      } else {
        ++stalls;
        f.run_for(10ms);
      }
    }
    CAPTURE(sent, s.counters().tcp_bytes);
    CHECK(stalls == 5);
    CHECK(sent < 64u * 1024 * 1024);
    CHECK(s.counters().tcp_bytes < sent);
    // No progress: closed after the idle timeout.
    CHECK(f.run_until([&] { return s.connections() == 0; }, 3s));
    CHECK(s.counters().tcp_idle_closed == 1);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: connections beyond max_connections are closed at once", "[echo]") {
  LoopFixture f;
  {
    EchoConfig config;
    config.tcp = true;
    config.max_connections = 2;
    EchoServer s(f.loop(), config);
    auto to = listen_on(s, "127.0.0.1");
    std::vector<Fd> held;
    for (int i = 0; i < 2; ++i) {
      held.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      REQUIRE(connect(held.back().get(), to.get(), to.length) == 0);
    }
    REQUIRE(f.run_until([&] { return s.connections() == 2; }));
    auto got = serve_while(f, [&] { return test::tcp_echo_roundtrip(to, "third"); });
    CHECK((!got || got->empty()));
    CHECK(s.counters().tcp_rejected == 1);
    CHECK(s.connections() == 2);
    // Closing one makes room.
    held.pop_back();
    REQUIRE(f.run_until([&] { return s.connections() == 1; }));
    got = serve_while(f, [&] { return test::tcp_echo_roundtrip(to, "fourth"); });
    REQUIRE(got);
    CHECK(*got == "fourth");
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: inherited sockets are adopted (socket activation)", "[echo]") {
  LoopFixture f;
  {
    EchoServer s(f.loop(), EchoConfig{});
    // A socket bound to 127.0.0.1:0; the server owns those it adopts.
    auto bound = [](int type) {
      auto a = parse_ip("127.0.0.1", 0);
      int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
      REQUIRE(bind(fd, a->get(), a->length) == 0);
      return fd;
    };
    int udp = bound(SOCK_DGRAM);
    int tcp = bound(SOCK_STREAM);
    REQUIRE(listen(tcp, 16) == 0);
    std::string err;
    REQUIRE(s.adopt(udp, &err));
    REQUIRE(s.adopt(tcp, &err));
    REQUIRE(s.listeners().size() == 2);
    CHECK_FALSE(s.listeners()[0].tcp);
    CHECK(s.listeners()[0].inherited);
    CHECK(s.listeners()[1].tcp);
    CHECK(s.listeners()[0].describe().find("(socket activation)") != std::string::npos);

    UdpClient c("127.0.0.1");
    auto reply = exchange(f, s, c, s.listeners()[0].address, "activated");
    REQUIRE(reply);
    CHECK(reply->data == "activated");
    auto got =
        serve_while(f, [&] { return test::tcp_echo_roundtrip(s.listeners()[1].address, "tcp"); });
    REQUIRE(got);
    CHECK(*got == "tcp");

    // A stream socket that is not listening (Accept=yes hands over connected ones).
    Fd stream(bound(SOCK_STREAM));
    CHECK_FALSE(s.adopt(stream.get(), &err));
    CHECK(err.find("not a listening socket (Accept=yes is not supported)") != std::string::npos);
    Fd unix_socket(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    CHECK_FALSE(s.adopt(unix_socket.get(), &err));
    CHECK(err.find("not an IPv4 or IPv6 socket") != std::string::npos);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: an address in use is an error that names it", "[echo]") {
  LoopFixture f;
  {
    UdpClient taken("127.0.0.1");
    SockAddr a;
    a.length = sizeof a.storage;
    getsockname(taken.fd(), reinterpret_cast<sockaddr*>(&a.storage), &a.length);
    EchoServer s(f.loop(), EchoConfig{});
    std::string err;
    CHECK_FALSE(s.listen(a, &err));
    CHECK(err == "udp " + a.with_port() + ": address already in use");
    CHECK(s.listeners().empty());
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("echo server: counters print the drop reasons that occurred", "[echo]") {
  EchoCounters c;
  CHECK(c.format(false) == "udp received=0 echoed=0 dropped=0");
  c.received = 9;
  c.echoed = 4;
  c.low_port = 2;
  c.rate_limited = 3;
  CHECK(c.dropped() == 5);
  CHECK(c.format(false) == "udp received=9 echoed=4 dropped=5 (low_port=2 rate_limited=3)");
  c.tcp_accepted = 1;
  c.tcp_bytes = 12;
  CHECK(c.format(true) ==
        "udp received=9 echoed=4 dropped=5 (low_port=2 rate_limited=3); tcp accepted=1 bytes=12 "
        "rejected=0 not_allowed=0 idle_closed=0");
}
