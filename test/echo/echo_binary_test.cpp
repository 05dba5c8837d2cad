// Black-box tests of the netmond-echo program: flags, exit codes, signals, systemd's
// readiness notification and socket activation.
#include "clients.h"
#include "support/notify_socket.h"
#include "support/process.h"

#include <signal.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include <regex>

using namespace netmond;
using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

std::string echo_bin() { return NETMOND_ECHO_BIN; }

// The address of the first "listening on <proto> ADDR" line for `proto`.
std::optional<SockAddr> listening(ChildProcess& p, const std::string& proto) {
  std::smatch m;
  const std::string& out = p.out();
  if (!std::regex_search(out, m,
                         std::regex("listening on " + proto + " \\[?([0-9a-f.:]+)\\]?:(\\d+)")))
    return std::nullopt;
  return parse_ip(m[1].str(), static_cast<std::uint16_t>(std::stoi(m[2].str())));
}

std::optional<std::string> udp_echo(const SockAddr& to, const std::string& data) {
  UdpClient c(to.ip());
  if (!c.ok() || !c.send(to, data)) return std::nullopt;
  auto d = c.recv(2s);
  if (!d) return std::nullopt;
  return d->data;
}

}  // namespace

TEST_CASE("netmond-echo --help, --version, and usage errors exit 2", "[echo]") {
  auto help = run({echo_bin(), "--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("--allow-low-ports") != std::string::npos);
  auto version = run({echo_bin(), "--version"});
  CHECK(version.code == 0);
  CHECK(version.out.rfind("netmond-echo ", 0) == 0);

  auto bad = run({echo_bin(), "--frobnicate"});
  CHECK(bad.code == 2);
  CHECK(bad.err == "netmond-echo: unknown option '--frobnicate'\nTry 'netmond-echo --help'.\n");
  CHECK(bad.out.empty());
  auto bad_listen = run({echo_bin(), "--listen", "example.com:7"});
  CHECK(bad_listen.code == 2);
  CHECK(bad_listen.err.find("--listen: 'example.com:7'") != std::string::npos);
}

TEST_CASE("netmond-echo listens, echoes, and on SIGTERM logs its counters and exits 0", "[echo]") {
  ChildProcess p({echo_bin(), "--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--tcp"});
  REQUIRE(p.wait_for_output("answering datagrams", 5s));
  auto v4 = listening(p, "udp");
  REQUIRE(v4);
  CHECK(p.out().find("listening on tcp 127.0.0.1:" + std::to_string(v4->port())) !=
        std::string::npos);
  CHECK(udp_echo(*v4, "over IPv4") == "over IPv4");
  auto v6_line = p.out().find("listening on udp [::1]:");
  REQUIRE(v6_line != std::string::npos);
  std::smatch m;
  std::string rest = p.out().substr(v6_line);
  REQUIRE(std::regex_search(rest, m, std::regex(R"(\]:(\d+))")));
  auto v6 = parse_ip("::1", static_cast<std::uint16_t>(std::stoi(m[1].str())));
  CHECK(udp_echo(*v6, "over IPv6") == "over IPv6");
  CHECK(tcp_echo_roundtrip(*v4, "tcp too") == "tcp too");

  p.signal(SIGTERM);
  auto code = p.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(p.out().find("received SIGTERM, stopping") != std::string::npos);
  CHECK(p.out().find("counters: udp received=2 echoed=2 dropped=0; tcp accepted=1 bytes=7") !=
        std::string::npos);
  CHECK(p.out().find("handles left open") == std::string::npos);
}

TEST_CASE("netmond-echo exits 1 when it cannot listen", "[echo]") {
  UdpClient taken("127.0.0.1");
  SockAddr a;
  a.length = sizeof a.storage;
  getsockname(taken.fd(), reinterpret_cast<sockaddr*>(&a.storage), &a.length);
  auto r = run({echo_bin(), "--listen", a.with_port()}, 10s);
  CHECK(r.code == 1);
  CHECK(r.out.find("cannot listen on udp " + a.with_port() + ": address already in use") !=
        std::string::npos);
}

TEST_CASE("netmond-echo tells systemd READY=1, then STOPPING=1", "[echo]") {
  NotifySocket notify;
  ChildOptions options;
  options.env = {"NOTIFY_SOCKET=" + notify.path()};
  ChildProcess p({echo_bin(), "--listen", "127.0.0.1:0"}, options);
  auto ready = notify.next(5s);
  REQUIRE(ready);
  CHECK(ready->find("READY=1\n") == 0);
  CHECK(ready->find("STATUS=echoing on udp 127.0.0.1:") != std::string::npos);
  // READY comes after the sockets are open: the server answers at once.
  auto addr = listening(p, "udp");
  REQUIRE(addr);
  CHECK(udp_echo(*addr, "ready") == "ready");

  p.signal(SIGINT);
  std::optional<std::string> msg;
  bool stopping = false;
  while (!stopping && (msg = notify.next(5s)))
    stopping = msg->find("STOPPING=1") != std::string::npos;
  CHECK(stopping);
  auto code = p.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
}

TEST_CASE("netmond-echo adopts the sockets systemd passes (socket activation)", "[echo]") {
  auto bound = [](int type) {
    auto a = parse_ip("127.0.0.1", 0);
    Fd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    REQUIRE(bind(fd.get(), a->get(), a->length) == 0);
    if (type == SOCK_STREAM) REQUIRE(listen(fd.get(), 16) == 0);
    return fd;
  };
  Fd udp = bound(SOCK_DGRAM), tcp = bound(SOCK_STREAM);
  ChildOptions options;
  options.fds = {udp.get(), tcp.get()};
  options.listen_fds = true;
  ChildProcess p({echo_bin()}, options);
  REQUIRE(p.wait_for_output("answering datagrams", 5s));
  SockAddr u, t;
  u.length = t.length = sizeof u.storage;
  getsockname(udp.get(), reinterpret_cast<sockaddr*>(&u.storage), &u.length);
  getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&t.storage), &t.length);
  CHECK(p.out().find("listening on udp " + u.with_port() + " (socket activation)") !=
        std::string::npos);
  CHECK(p.out().find("listening on tcp " + t.with_port() + " (socket activation)") !=
        std::string::npos);
  // The inherited sockets replace the default 127.0.0.1:10100.
  CHECK(p.out().find(":10100") == std::string::npos);
  // Close our copies: only the server's remain, so the answers are its.
  udp.reset();
  tcp.reset();
  CHECK(udp_echo(u, "activated") == "activated");
  CHECK(tcp_echo_roundtrip(t, "activated") == "activated");
  p.signal(SIGTERM);
  auto code = p.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
}
