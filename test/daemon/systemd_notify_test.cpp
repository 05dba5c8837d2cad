// netmond under systemd's Type=notify protocol, against a stand-in NOTIFY_SOCKET: READY=1
// with a STATUS= summary once the checks are scheduled, WATCHDOG=1 at half WATCHDOG_USEC,
// RELOADING=1 + MONOTONIC_USEC then READY=1 around every SIGHUP (a rejected one too), and
// STOPPING=1 on SIGTERM.
#include "support/notify_socket.h"
#include "support/peers.h"
#include "support/process.h"

#include <signal.h>

#include <catch2/catch.hpp>

#include <regex>
#include <string>
#include <vector>

using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

std::string config(std::uint16_t open_port, int closed_port) {
  return "control: {socket: \"\"}\n"
         "servers:\n"
         "  - address: 127.0.0.1\n"
         "    interval: 100ms\n"
         "    services:\n"
         "      - {type: tcp, name: open, port: " +
         std::to_string(open_port) +
         "}\n"
         "      - {type: tcp, name: closed, port: " +
         std::to_string(closed_port) + "}\n";
}

// Reads messages until one contains `needle`; the watchdog pings seen meanwhile are counted.
std::optional<std::string> until(NotifySocket& s, const std::string& needle, int* pings,
                                 std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    auto m = s.next(std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now()));
    if (!m) break;
    if (*m == "WATCHDOG=1") {
      ++*pings;
      if (needle != "WATCHDOG=1") continue;
    }
    if (m->find(needle) != std::string::npos) return m;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("netmond tells systemd READY, STATUS, WATCHDOG, RELOADING and STOPPING",
          "[daemon][systemd]") {
  // Nobody accepts: a backlog that 10 connects a second do not fill in the test's seconds.
  TcpListener open("127.0.0.1", 4096);
  const int closed = closed_tcp_port("127.0.0.1");
  NotifySocket notify;
  auto dir = temp_dir();
  auto cfg = write_file(dir, "n.yaml", config(open.port(), closed));
  ChildOptions options;
  // 400 ms: pings every 200 ms.
  options.env = {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=400000"};
  ChildProcess d({netmond_bin(), "-c", cfg}, options);
  int pings = 0;

  auto ready = until(notify, "READY=1", &pings);
  REQUIRE(ready);
  CHECK(*ready == "READY=1\nSTATUS=2 checks: 0 up, 0 down, 2 pending");
  // The state changes update STATUS=, at most once a second: the two first verdicts, both
  // within the second after READY=1, come as one.
  const auto t_ready = std::chrono::steady_clock::now();
  auto changed = until(notify, "STATUS=", &pings);
  REQUIRE(changed);
  CHECK(*changed == "STATUS=2 checks: 1 up, 1 down");
  CHECK(std::chrono::steady_clock::now() - t_ready > 800ms);

  // The watchdog: about 5 pings a second, from the loop.
  pings = 0;
  const auto t0 = std::chrono::steady_clock::now();
  int seen = 0;
  while (std::chrono::steady_clock::now() - t0 < 1s) {
    if (auto m = notify.next(200ms); m && *m == "WATCHDOG=1") ++seen;
  }
  CHECK(seen >= 3);
  CHECK(seen <= 7);

  // A good reload: RELOADING=1 with the monotonic clock, then READY=1.
  d.signal(SIGHUP);
  auto reloading = until(notify, "RELOADING=1", &pings);
  REQUIRE(reloading);
  CHECK(std::regex_match(*reloading, std::regex("RELOADING=1\nMONOTONIC_USEC=[0-9]+")));
  auto again = until(notify, "READY=1", &pings);
  REQUIRE(again);
  CHECK(again->find("STATUS=2 checks: 1 up, 1 down") != std::string::npos);

  // A broken file: still READY=1 (the old configuration keeps running), and STATUS= says so.
  write_file(dir, "n.yaml", config(open.port(), closed) + "  - address: [\n");
  d.signal(SIGHUP);
  REQUIRE(until(notify, "RELOADING=1", &pings));
  auto rejected = until(notify, "READY=1", &pings);
  REQUIRE(rejected);
  CHECK(rejected->find("STATUS=2 checks: 1 up, 1 down; reload of " + cfg + " failed at ") !=
        std::string::npos);
  CHECK(rejected->find(", running the previous one") != std::string::npos);

  d.signal(SIGTERM);
  CHECK(until(notify, "STOPPING=1", &pings));
  auto code = d.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
}

TEST_CASE("without NOTIFY_SOCKET netmond sends nothing and --once never notifies",
          "[daemon][systemd]") {
  TcpListener open("127.0.0.1");
  NotifySocket notify;
  auto cfg = write_file(temp_dir(), "n.yaml", config(open.port(), closed_tcp_port("127.0.0.1")));
  // --once is a script's run, not a service: even with NOTIFY_SOCKET set, not a word.
  ChildOptions options;
  options.env = {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=100000"};
  ChildProcess once({netmond_bin(), "--once", "-c", cfg}, options);
  auto code = once.wait(10s);
  REQUIRE(code);
  CHECK(*code == 1);  // "closed" failed
  CHECK_FALSE(notify.next(200ms));
}
