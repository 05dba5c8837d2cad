// Black-box tests of the netmonctl binary: the command structure, and `netmonctl echo`
// against responders on loopback that run on their own threads with plain blocking
// sockets: one that echoes, one that stays silent, one that answers wrongly, late, twice.
#include "support/netmond_echo.h"
#include "support/peers.h"
#include "support/process.h"

#include "base/address.h"
#include "base/fd.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace netmond;
using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

const std::string kBin = NETMONCTL_BIN;

Fd bound(const std::string& ip, int type, std::uint16_t* port) {
  auto a = parse_ip(ip);
  if (!a) throw std::invalid_argument(ip);
  Fd fd(::socket(a->family(), type | SOCK_CLOEXEC, 0));
  if (!fd || ::bind(fd.get(), a->get(), a->length) != 0) throw std::runtime_error("bind");
  SockAddr local;
  local.length = sizeof local.storage;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
  *port = local.port();
  return fd;
}

// A UDP responder on its own thread. For each datagram `answer` returns what to send back
// (each string one datagram, after `delay`). Stops and joins when destroyed.
class UdpResponder {
 public:
  using Answer = std::function<std::vector<std::string>(const std::string& request)>;
  UdpResponder(const std::string& ip, Answer answer, std::chrono::milliseconds delay = {})
      : answer_(std::move(answer)), delay_(delay) {
    fd_ = bound(ip, SOCK_DGRAM, &port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~UdpResponder() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;  // wakes up to see stop_
      char buf[70000];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n =
          ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      std::string request(buf, static_cast<size_t>(n));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(request);
      }
      if (delay_ > 0ms) std::this_thread::sleep_for(delay_);
      for (const auto& reply : answer_(request))
        ::sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  Fd fd_;
  std::uint16_t port_ = 0;
  Answer answer_;
  std::chrono::milliseconds delay_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

std::vector<std::string> echo(const std::string& r) { return {r}; }
std::vector<std::string> twice(const std::string& r) { return {r, r}; }
std::vector<std::string> silent(const std::string&) { return {}; }

// An RFC 862 TCP echo server on its own thread: echoes every byte of each connection, one
// connection at a time.
class TcpEchoThread {
 public:
  explicit TcpEchoThread(const std::string& ip) {
    fd_ = bound(ip, SOCK_STREAM, &port_);
    ::listen(fd_.get(), 4);
    thread_ = std::thread([this] { serve(); });
  }
  ~TcpEchoThread() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;
      Fd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      while (c && !stop_) {
        pollfd q{c.get(), POLLIN, 0};
        if (::poll(&q, 1, 20) != 1) continue;
        char buf[65536];
        ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        ::send(c.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
    }
  }

  Fd fd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string at(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

}  // namespace

// ---- The command structure -------------------------------------------------------------

TEST_CASE("netmonctl --help lists the commands, --version, no command is a usage error",
          "[netmonctl]") {
  auto help = run({kBin, "--help"});
  CHECK(help.code == 0);
  CHECK(has(help.out, "Usage: netmonctl [--help | --version] [-s SOCKET] COMMAND [ARGS]"));
  CHECK(has(help.out, "\n  echo "));
  CHECK(has(help.out, "\n  help "));

  auto h = run({kBin, "help"});
  CHECK(h.code == 0);
  CHECK(h.out == help.out);

  auto version = run({kBin, "--version"});
  CHECK(version.code == 0);
  CHECK(version.out.starts_with("netmonctl "));

  auto none = run({kBin});
  CHECK(none.code == 2);
  CHECK(has(none.err, "Usage: netmonctl"));

  auto unknown = run({kBin, "ehco"});
  CHECK(unknown.code == 2);
  CHECK(has(unknown.err, "netmonctl: unknown command 'ehco' (did you mean 'echo'?)"));

  auto option = run({kBin, "--frobnicate"});
  CHECK(option.code == 2);
  CHECK(has(option.err, "unknown option '--frobnicate'"));
}

TEST_CASE("netmonctl echo --help and help echo print the echo usage", "[netmonctl]") {
  auto a = run({kBin, "echo", "--help"});
  CHECK(a.code == 0);
  CHECK(a.out.starts_with("Usage: netmonctl echo HOST[:PORT] [MESSAGE] [OPTIONS]"));
  for (const char* opt : {"--count", "--interval", "--timeout", "--size", "--tcp", "10100"})
    CHECK(has(a.out, opt));
  auto b = run({kBin, "help", "echo"});
  CHECK(b.code == 0);
  CHECK(b.out == a.out);
  auto c = run({kBin, "echo", "127.0.0.1", "-h"});
  CHECK(c.code == 0);
  CHECK(c.out == a.out);
}

TEST_CASE("netmonctl echo: usage errors exit 2 and say what is wrong", "[netmonctl]") {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "missing HOST"},
      {{"127.0.0.1", "-c"}, "-c needs a value"},
      {{"127.0.0.1", "-c", "x"}, "-c: 'x' is not a count"},
      {{"127.0.0.1", "--count=-1"}, "--count: '-1' is not a count"},
      {{"127.0.0.1", "-i", "0"}, "-i: '0' is not a duration of at least 1ms"},
      {{"127.0.0.1", "-W", "soon"}, "-W: 'soon' is not a duration"},
      {{"127.0.0.1", "-s", "10"}, "size 10 is too small"},
      {{"127.0.0.1", "-s", "70000"}, "-s: '70000' is not a size from 0 to 65507"},
      {{"127.0.0.1", "--bogus"}, "unknown option '--bogus'"},
      {{"127.0.0.1", "a", "b"}, "unexpected argument 'b'"},
      {{"[::1"}, "'[::1': missing ']'"},
      {{"[::1]x"}, "'[::1]x': expected ':PORT' after ']'"},
      {{"127.0.0.1:0"}, "'127.0.0.1:0': the port must be a number from 1 to 65535"},
      {{"127.0.0.1:70000"}, "'127.0.0.1:70000': the port must be a number from 1 to 65535"},
      {{":7"}, "':7': no host"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {kBin, "echo"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run(argv);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err.starts_with("netmonctl echo: "));
    CHECK(has(r.err, c.message));
    CHECK(r.out.empty());
  }
}

// ---- netmonctl echo against responders ---------------------------------------------------

TEST_CASE("netmonctl echo: exit 0 when every request comes back, ping-like output", "[netmonctl]") {
  UdpResponder server("127.0.0.1", echo);
  auto r = run({kBin, "echo", at(server.port()), "-c", "3", "-i", "0.05"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(has(r.out, "ECHO " + at(server.port()) + " over UDP: 66 bytes per request\n"));
  for (int seq = 1; seq <= 3; ++seq)
    CHECK(has(r.out,
              "66 bytes from " + at(server.port()) + ": seq=" + std::to_string(seq) + " time="));
  CHECK(has(r.out, "--- " + at(server.port()) + " echo statistics ---\n"));
  CHECK(has(r.out,
            "3 sent, 3 echoed, 0 mismatched, 0 lost, 0 duplicates, 0 reordered, "
            "rtt min/avg/max/mdev = "));
  CHECK(has(r.out, " ms, jitter "));
  auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].starts_with("netmonctl echo #netmond "));
}

TEST_CASE("netmonctl echo: IPv6, host names, a message and a size", "[netmonctl]") {
  SECTION("[::1]:PORT") {
    UdpResponder server("::1", echo);
    std::string target = "[::1]:" + std::to_string(server.port());
    auto r = run({kBin, "echo", target});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(has(r.out, "66 bytes from " + target + ": seq=1 time="));
  }
  SECTION("localhost, from /etc/hosts") {
    UdpResponder server("127.0.0.1", echo);
    auto r = run({kBin, "echo", "-4", "localhost:" + std::to_string(server.port())});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(has(r.out, "ECHO localhost (" + at(server.port()) + ") over UDP"));
  }
  SECTION("MESSAGE and -s") {
    UdpResponder server("127.0.0.1", echo);
    auto r = run({kBin, "echo", at(server.port()), "hello there", "-s", "200"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(has(r.out, "200 bytes from " + at(server.port()) + ": seq=1"));
    auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].size() == 200);
    CHECK(requests[0].starts_with("hello thereabcdefghijklmnopqrstuvwxyz"));
  }
}

TEST_CASE("netmonctl echo: exit 1 on timeout from a silent port", "[netmonctl]") {
  UdpResponder server("127.0.0.1", silent);
  auto r = run({kBin, "echo", at(server.port()), "-W", "0.2"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(has(r.out, "timeout: seq=1 (no echo within 200ms)"));
  CHECK(has(r.out, "1 sent, 0 echoed, 0 mismatched, 1 lost, 0 duplicates, 0 reordered\n"));
}

TEST_CASE("netmonctl echo: exit 1 when the reply is not what was sent", "[netmonctl]") {
  SECTION("a different payload") {
    UdpResponder server(
        "127.0.0.1", [](const std::string&) { return std::vector<std::string>{"something else"}; });
    auto r = run({kBin, "echo", at(server.port()), "-W", "0.3"});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(has(r.out,
              "14 bytes from " + at(server.port()) + ": payload mismatch (expected 66 bytes)"));
    CHECK(has(r.out, "timeout: seq=1"));
    CHECK(has(r.out, "1 sent, 0 echoed, 1 mismatched, 1 lost"));
  }
  SECTION("one byte changed") {
    UdpResponder server("127.0.0.1", [](const std::string& req) {
      std::string bad = req;
      bad[0] = 'N';
      return std::vector<std::string>{bad};
    });
    auto r = run({kBin, "echo", at(server.port()), "-W", "0.3"});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(
        has(r.out, "66 bytes from " + at(server.port()) +
                       ": seq=1 payload mismatch (expected 66 bytes, first difference at byte 0)"));
  }
}

TEST_CASE("netmonctl echo: exit 1 on a closed port (ICMP port unreachable)", "[netmonctl]") {
  auto port = closed_udp_port("127.0.0.1");
  auto r = run({kBin, "echo", at(port), "-c", "2", "-i", "0.05"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(has(r.out, "port unreachable: seq=1 (ICMP from 127.0.0.1)\n"));
  CHECK(has(r.out, "port unreachable: seq=2 (ICMP from 127.0.0.1)\n"));
  CHECK(has(r.out, "2 sent, 0 echoed, 0 mismatched, 2 lost"));
}

TEST_CASE("netmonctl echo: a late echo is reported and does not count: exit 1", "[netmonctl]") {
  // Echoes everything 300ms late; each request times out after 100ms.
  UdpResponder server("127.0.0.1", echo, 300ms);
  auto r = run({kBin, "echo", at(server.port()), "-c", "2", "-i", "0.5", "-W", "0.1"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(has(r.out, "timeout: seq=1 (no echo within 100ms)"));
  CHECK(has(r.out, "66 bytes from " + at(server.port()) + ": seq=1 time="));
  CHECK(has(r.out, "(late: after the 100ms timeout)"));
  CHECK(has(r.out, "2 sent, 0 echoed, 0 mismatched, 2 lost, 0 duplicates, 0 reordered, 1 late\n"));
}

TEST_CASE("netmonctl echo: a duplicate is reported, and counted, and still exit 0", "[netmonctl]") {
  UdpResponder server("127.0.0.1", twice);
  auto r = run({kBin, "echo", at(server.port()), "-c", "2", "-i", "0.2"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(has(r.out, ": seq=1 time="));
  CHECK(has(r.out, "(duplicate)"));
  CHECK(has(r.out, "2 sent, 2 echoed, 0 mismatched, 0 lost, "));
}

TEST_CASE("netmonctl echo -c 0 runs until SIGINT, then prints the summary", "[netmonctl]") {
  UdpResponder server("127.0.0.1", echo);
  ChildProcess c({kBin, "echo", at(server.port()), "-c", "0", "-i", "0.05"});
  REQUIRE(c.wait_for_output(": seq=3 time=", 5s));
  c.signal(SIGINT);
  auto code = c.wait(5s);
  INFO(c.out() << c.err());
  REQUIRE(code);
  CHECK(*code == 0);  // the requests in flight were waited for
  CHECK(has(c.out(), "echo statistics ---\n"));
  CHECK(has(c.out(), " echoed, 0 mismatched, 0 lost, 0 duplicates, 0 reordered, rtt "));
}

TEST_CASE("netmonctl echo --tcp: RFC 862 over TCP", "[netmonctl]") {
  SECTION("an echo server") {
    TcpEchoThread server("127.0.0.1");
    auto r = run({kBin, "echo", "--tcp", at(server.port()), "-c", "3", "-i", "0.05"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(has(r.out, "over TCP: 66 bytes per request"));
    CHECK(has(r.out, "66 bytes from " + at(server.port()) + ": seq=3 time="));
    CHECK(has(r.out, "3 sent, 3 echoed, 0 mismatched, 0 lost"));
  }
  SECTION("a closed port") {
    auto port = closed_tcp_port("127.0.0.1");
    auto r = run({kBin, "echo", "--tcp", at(port)});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(has(r.out + r.err, "connection refused"));
  }
}

TEST_CASE("netmonctl echo against netmond-echo", "[netmonctl]") {
  NetmondEcho server({"127.0.0.1:0", "[::1]:0"});
  const auto& targets = server.addresses();
  REQUIRE(targets.size() == 2);
  for (const auto& t : targets) {
    auto r = run({kBin, "echo", t, "-c", "3", "-i", "0.02"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(has(r.out, "3 sent, 3 echoed, 0 mismatched, 0 lost"));
  }
  CHECK(server.stop() == 0);
  auto r = run({kBin, "echo", targets[0], "-W", "0.5"});
  CHECK(r.code == 1);
  CHECK(has(r.out, "port unreachable: seq=1"));
}
