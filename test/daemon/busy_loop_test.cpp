// The loop never blocks: with checks of every type in flight at once, each waiting on a
// peer that never answers, netmond still answers its control socket at once and pings the
// systemd watchdog on time. A probe that blocked the loop (a blocking resolver call, a
// blocking connect or read) would stall both. Loopback peers only: silent UDP sockets, a
// TCP listener whose accept queue is full, another that never answers a request.
#include "support/control_client.h"
#include "support/notify_socket.h"
#include "support/peers.h"
#include "support/process.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

using netmond::Fd;
using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

TEST_CASE("the loop never blocks: control and watchdog answer while every probe type waits",
          "[daemon][busy]") {
  // Peers that take every request and answer none, so each run waits for its timeout.
  std::uint16_t udp_port = 0;
  Fd silent_udp = bound_socket("127.0.0.1", SOCK_DGRAM, &udp_port);
  TcpListener full("127.0.0.1", 0);
  std::vector<Fd> queue = fill_accept_queue(full, "127.0.0.1");
  if (queue.empty()) WARN("the accept queue never filled: tcp connects complete at once");
  TcpListener mute("127.0.0.1");  // completes handshakes, never accepts nor answers

  const std::string dir = temp_dir();
  const std::string socket = dir + "/control.sock";
  const std::string u = std::to_string(udp_port);
  std::string services;
  for (int i = 0; i < 10; ++i) {
    const std::string n = std::to_string(i);
    services += "      - {type: tcp, name: tcp" + n + ", port: " + std::to_string(full.port()) +
                "}\n"
                "      - {type: http, name: http" +
                n + ", url: \"http://127.0.0.1:" + std::to_string(mute.port()) +
                "/\"}\n"
                "      - {type: udp, name: udp" +
                n + ", port: " + u +
                "}\n"
                "      - {type: udp_echo, name: echo" +
                n + ", port: " + u +
                "}\n"
                "      - {type: ntp, name: ntp" +
                n + ", port: " + u +
                "}\n"
                "      - {type: dns, name: dns" +
                n + ", server: 127.0.0.1, port: " + u +
                ", query: busy.test}\n"
                "      - {type: icmp, name: icmp" +
                n + ", count: 5, spacing: 150ms}\n";
  }
  const std::string cfg = write_file(dir, "busy.yaml",
                                     "control: {socket: \"" + socket +
                                         "\"}\n"
                                         "servers:\n"
                                         "  - address: 127.0.0.1\n"
                                         "    interval: 1s\n"
                                         "    timeout: 900ms\n"
                                         "    services:\n" +
                                         services);
  NotifySocket notify;
  ChildOptions options;
  options.env = {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=400000"};  // a ping per 200 ms
  ChildProcess d({netmond_bin(), "-c", cfg, "--log-level", "warn"}, options);
  REQUIRE(wait_for_socket(socket, 10s));
  ControlConnection c(socket);
  REQUIRE(c.connected());

  // Three seconds of load: 70 checks, nearly all of them in flight at any moment.
  std::vector<double> answers_ms;
  std::vector<double> ping_gaps_ms;
  Clock::time_point last_ping{};
  const auto end = Clock::now() + 3s;
  while (Clock::now() < end) {
    // Read what netmond logged, or its stdout pipe fills and its writes block the loop.
    d.out();
    d.err();
    const auto t = Clock::now();
    auto status = c.request({{"command", "status"}}, 2s);
    REQUIRE(status);
    answers_ms.push_back(ms_since(t));
    CHECK((*status)["checks"].size() == 70);
    // The watchdog's pings that came meanwhile.
    while (auto m = notify.next(0ms)) {
      if (*m != "WATCHDOG=1") continue;
      const auto now = Clock::now();
      if (last_ping != Clock::time_point{})
        ping_gaps_ms.push_back(std::chrono::duration<double, std::milli>(now - last_ping).count());
      last_ping = now;
    }
    std::this_thread::sleep_for(50ms);
  }
  // The checks were busy indeed: runs ended by their timeout, not by an answer.
  auto status = c.request({{"command", "status"}}, 2s);
  REQUIRE(status);
  int timeouts = 0;
  for (const auto& check : (*status)["checks"])
    if (check["reason"] == "timeout") ++timeouts;
  INFO(status->dump());
  CHECK(timeouts >= 40);  // tcp, http, udp_echo, ntp and dns; udp calls silence open, icmp answers

  INFO("control answers (ms): " << nlohmann::json(answers_ms).dump());
  INFO("watchdog gaps (ms): " << nlohmann::json(ping_gaps_ms).dump());
  REQUIRE(answers_ms.size() >= 20);
  // Bounds far above the few milliseconds these take, far below a blocked loop's stall
  // (a run's 900 ms timeout): only a loop that blocked can miss them.
  CHECK(*std::max_element(answers_ms.begin(), answers_ms.end()) < 250);
  REQUIRE(ping_gaps_ms.size() >= 8);
  CHECK(*std::max_element(ping_gaps_ms.begin(), ping_gaps_ms.end()) < 400);

  d.signal(SIGTERM);
  auto code = d.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
}
