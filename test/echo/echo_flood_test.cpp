// netmond-echo, the real program, under a bounded flood: 200 sources (127.0.0.2 to
// 127.0.0.201) each sending 400 datagrams as fast as they can, plus datagrams from a low
// source port. Its rate limit holds per source, its memory stays where it was, nothing is
// reflected to a low port, and a legitimate client (127.0.0.1) keeps its echoes. Loopback
// only; every loop is bounded in count and time.
#include "base/address.h"
#include "base/fd.h"
#include "support/netmond_echo.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A non-blocking UDP socket bound to ip:port (0: the kernel chooses), connected to `to`.
Fd udp_from(const std::string& ip, std::uint16_t port, const SockAddr& to) {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  int on = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  const SockAddr local = *parse_ip(ip, port);
  REQUIRE(::bind(fd.get(), local.get(), local.length) == 0);
  REQUIRE(::connect(fd.get(), to.get(), to.length) == 0);
  return fd;
}

// Datagrams waiting on `fd`, read and counted.
int drain(const Fd& fd) {
  int n = 0;
  char buf[2048];
  while (::recv(fd.get(), buf, sizeof buf, 0) >= 0) ++n;
  return n;
}

long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

TEST_CASE("netmond-echo under a flood: rate limits hold, memory stays, legitimate clients served",
          "[echo][flood]") {
  test::NetmondEcho echo;  // --rate 100, --burst 200 per source (its defaults)
  const SockAddr server =
      *parse_ip("127.0.0.1", static_cast<std::uint16_t>(std::stoi(echo.port())));
  const long rss_before = rss_kib(echo.pid());
  REQUIRE(rss_before > 0);

  constexpr int kSources = 200;
  constexpr int kPerSource = 400;
  // Each source its own address: 127.0.0.2 .. 127.0.0.201.
  std::vector<Fd> flood;
  for (int i = 0; i < kSources; ++i)
    flood.push_back(udp_from("127.0.0." + std::to_string(2 + i), 0, server));
  Fd client = udp_from("127.0.0.1", 0, server);
  Fd low = udp_from("127.0.0.1", 999, server);  // a source port below 1024

  std::vector<int> echoed(kSources, 0);
  int client_sent = 0, client_echoed = 0, low_echoed = 0;
  const auto start = Clock::now();
  const std::string payload(64, 'f');
  // Round-robin, one datagram per source per round; the client one per 10 rounds.
  for (int round = 0; round < kPerSource && Clock::now() - start < 20s; ++round) {
    for (int i = 0; i < kSources; ++i) {
      ::send(flood[i].get(), payload.data(), payload.size(), 0);
      if (round % 8 == 0) echoed[i] += drain(flood[i]);
    }
    if (round % 10 == 0) {
      ::send(client.get(), "legit", 5, 0);
      ++client_sent;
      ::send(low.get(), "low", 3, 0);
    }
    client_echoed += drain(client);
    low_echoed += drain(low);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(200ms);  // the last echoes arrive
  for (int i = 0; i < kSources; ++i) echoed[i] += drain(flood[i]);
  client_echoed += drain(client);
  low_echoed += drain(low);

  INFO("flood took " << seconds << " s");
  // No source got more than its burst plus the rate over the flood (and a little slack
  // for the drain): the limit holds for each of them.
  const int allowed = 200 + static_cast<int>(100 * (seconds + 0.3));
  int most = 0, total = 0;
  for (int e : echoed) {
    most = std::max(most, e);
    total += e;
  }
  INFO("echoes per flooding source: at most " << most << ", allowed " << allowed);
  CHECK(most <= allowed);
  CHECK(total < kSources * kPerSource);  // the limit dropped some
  // Nothing reflected to a low port. The legitimate client is still answered during the
  // flood, though not always: the flood (some 200,000 datagrams a second) overruns the
  // server's socket buffer, where the kernel drops at random, the client's datagrams too
  // (it got 75-100% of its echoes on an idle machine, 38% under ASan with the suite running
  // beside it). What the server owes it is shown after the flood, below.
  CHECK(low_echoed == 0);
  INFO("client during the flood: " << client_echoed << " of " << client_sent);
  CHECK(client_echoed > 0);
  // Memory: the source table is allocated once; a flood adds nothing lasting.
  const long rss_after = rss_kib(echo.pid());
  INFO("RSS " << rss_before << " -> " << rss_after << " KiB");
  CHECK(rss_after - rss_before < 4096);
  // Once the flood stops, the client gets every echo again: its own bucket was never
  // touched by the flood's sources, and the server kept nothing of them that slows it.
  int after = 0;
  for (int i = 0; i < 10; ++i) {
    ::send(client.get(), "after", 5, 0);
    pollfd p{client.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) == 1) after += drain(client);
  }
  CHECK(after == 10);
  auto code = echo.stop();
  REQUIRE(code);
  CHECK(*code == 0);
}
