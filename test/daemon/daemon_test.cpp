// Black-box tests of the real netmond binary: exit codes, output formats, signals, reload.
#include "support/daemon_config.h"
#include "support/netns.h"
#include "support/peers.h"
#include "support/process.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <thread>

using namespace netmond::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A loopback TCP port with nothing listening.
int closed_port() { return closed_tcp_port("127.0.0.1"); }

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    INFO("line: " << line);
    REQUIRE_NOTHROW(lines.push_back(json::parse(line)));
  }
  return lines;
}

std::vector<json> events(const std::vector<json>& lines, const std::string& event) {
  std::vector<json> out;
  for (const auto& j : lines)
    if (j.value("event", "") == event) out.push_back(j);
  return out;
}

}  // namespace

TEST_CASE("netmond --help and --version exit 0", "[daemon]") {
  auto help = run({netmond_bin(), "--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("--check-config") != std::string::npos);
  CHECK(help.out.find("Exit status") != std::string::npos);
  auto version = run({netmond_bin(), "--version"});
  CHECK(version.code == 0);
  CHECK(version.out.rfind("netmond ", 0) == 0);
}

TEST_CASE("usage errors exit 2 with a hint", "[daemon]") {
  auto r = run({netmond_bin(), "--log-format", "xml"});
  CHECK(r.code == 2);
  CHECK(r.err.find("'xml' is not text or json") != std::string::npos);
}

TEST_CASE("netmond --check-config lists checks, or names every error and exits 2", "[daemon]") {
  auto dir = temp_dir();
  auto good = write_file(dir, "good.yaml", two_tcp_checks(8080, 8081));
  auto r = run({netmond_bin(), "--check-config", "-c", good});
  CHECK(r.code == 0);
  CHECK(r.out.find("open  type=tcp  target=127.0.0.1:8080  interval=1m  timeout=5s") !=
        std::string::npos);
  CHECK(r.out.find("closed  type=tcp") != std::string::npos);

  auto bad = write_file(dir, "bad.yaml",
                        "servers:\n"
                        "  - address: 127.0.0.1\n"
                        "    services:\n"
                        "      - {type: tcp, prot: 80}\n");
  r = run({netmond_bin(), "--check-config", "-c", bad});
  CHECK(r.code == 2);
  CHECK(r.err.find(bad + ":4:") != std::string::npos);
  CHECK(r.err.find("unknown key 'prot' (did you mean 'port'?)") != std::string::npos);

  r = run({netmond_bin(), "--check-config", "-c", dir + "/missing.yaml"});
  CHECK(r.code == 2);
  CHECK(r.err.find("missing.yaml") != std::string::npos);
}

TEST_CASE("netmond --once prints one JSON result per check and exits 1 when one failed",
          "[daemon]") {
  TcpListener open("127.0.0.1");
  auto cfg = write_file(temp_dir(), "n.yaml", two_tcp_checks(open.port(), closed_port()));
  auto r = run({netmond_bin(), "--once", "--log-format", "json", "-c", cfg}, 20s);
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  auto results = events(json_lines(r.out), "result");
  REQUIRE(results.size() == 2);
  for (const auto& j : results) {
    for (const char* key : {"ts", "event", "check", "type", "target", "ok", "state", "latency_ms",
                            "message", "reason", "lateness_ms", "details"})
      CHECK(j.contains(key));
    if (j["check"] == "open") {
      CHECK(j["ok"] == true);
      CHECK(j["reason"] == "ok");
      CHECK(j["state"] == "up");
    } else {
      CHECK(j["check"] == "closed");
      CHECK(j["ok"] == false);
      CHECK(j["reason"] == "refused");
      CHECK(j["state"] == "down");
    }
  }
}

TEST_CASE("netmond --once exits 0 when every check succeeded", "[daemon]") {
  TcpListener open("127.0.0.1");
  auto cfg = write_file(temp_dir(), "n.yaml",
                        "servers:\n  - address: 127.0.0.1\n    services:\n"
                        "      - {type: tcp, port: " +
                            std::to_string(open.port()) + "}\n");
  auto r = run({netmond_bin(), "--once", "-c", cfg}, 20s);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("127.0.0.1/tcp:" + std::to_string(open.port()) + " UP ") != std::string::npos);
}

TEST_CASE("SIGTERM stops the daemon cleanly within a second", "[daemon]") {
  TcpListener open("127.0.0.1");
  auto cfg = write_file(temp_dir(), "n.yaml",
                        kNoControl + two_tcp_checks(open.port(), closed_port(), "100ms"));
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(d.wait_for_output(" closed DOWN ", 5s));
  auto t0 = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  auto code = d.wait(2s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(d.out().find("received SIGTERM, stopping") != std::string::npos);
  CHECK(d.err().find("handles left open") == std::string::npos);
}

TEST_CASE("SIGHUP with a broken file keeps the old config, a good one applies the diff",
          "[daemon]") {
  TcpListener open("127.0.0.1");
  int closed = closed_port();
  auto dir = temp_dir();
  auto cfg = write_file(dir, "n.yaml", kNoControl + two_tcp_checks(open.port(), closed, "100ms"));
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(d.wait_for_output(" open UP ", 5s));

  // Broken: the daemon reports file:line:col and keeps checking with the old config.
  write_file(dir, "n.yaml",
             kNoControl + two_tcp_checks(open.port(), closed, "100ms") + "  - address: [\n");
  d.signal(SIGHUP);
  REQUIRE(d.wait_for_output("reload failed, keeping the running configuration", 5s));
  CHECK(d.out().find(cfg + ":") != std::string::npos);
  size_t before = d.count(" open UP ");
  std::this_thread::sleep_for(400ms);
  CHECK(d.count(" open UP ") >= before + 2);

  // Good: "open" unchanged, "closed" removed, "added" new.
  write_file(dir, "n.yaml",
             kNoControl +
                 "servers:\n"
                 "  - address: 127.0.0.1\n"
                 "    interval: 100ms\n"
                 "    services:\n"
                 "      - {type: tcp, port: " +
                 std::to_string(open.port()) +
                 ", name: open}\n"
                 "      - {type: tcp, port: " +
                 std::to_string(open.port()) + ", name: added}\n");
  d.signal(SIGHUP);
  REQUIRE(d.wait_for_output("reloaded: 1 added, 1 removed, 0 changed, 1 unchanged", 5s));
  REQUIRE(d.wait_for_output(" added UP ", 5s));
  size_t closed_lines = d.count(" closed DOWN ");
  std::this_thread::sleep_for(300ms);
  CHECK(d.count(" closed DOWN ") == closed_lines);
  // The unchanged check kept its state: no new unknown -> up transition for it.
  CHECK(d.count("open state UNKNOWN -> UP") == 1);

  d.signal(SIGTERM);
  auto code = d.wait(2s);
  REQUIRE(code);
  CHECK(*code == 0);
}

TEST_CASE("the seed's public TCP/UDP targets fail at once inside an isolated namespace",
          "[daemon][netns]") {
  Netns ns;
  if (!ns.ok() || !ns.up_loopback() || !ns.isolate_resolver()) {
    WARN("skipped: cannot create a network namespace here (needs root and iproute2)");
    return;
  }
  auto cfg = write_file(temp_dir(), "seed-l4.yaml",
                        "servers:\n"
                        "  - address: 8.8.8.8\n"
                        "    services:\n"
                        "      - {type: tcp, port: 53}\n"
                        "      - {type: udp, port: 53}\n"
                        "  - address: www.example.com\n"
                        "    services:\n"
                        "      - {type: tcp, port: 80}\n");
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(ns.wrap({netmond_bin(), "--once", "--log-format", "json", "-c", cfg}), 20s);
  INFO(r.out << r.err);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);  // no waiting for 5 s timeouts
  CHECK(r.code == 1);
  auto results = events(json_lines(r.out), "result");
  REQUIRE(results.size() == 3);
  for (const auto& j : results) {
    CHECK(j["ok"] == false);
    if (j["target"] == "www.example.com:80")
      CHECK(j["reason"] == "resolve_failed");
    else
      CHECK(j["reason"] == "unreachable");
  }
}

TEST_CASE("without -c and without /etc/netmond.yaml the built-in default runs", "[daemon][netns]") {
  if (std::filesystem::exists("/etc/netmond.yaml")) {
    WARN("skipped: /etc/netmond.yaml exists on this machine");
    return;
  }
  Netns ns;
  if (!ns.ok() || !ns.up_loopback() || !ns.isolate_resolver()) {
    WARN("skipped: cannot create a network namespace here (needs root and iproute2)");
    return;
  }
  auto check = run(ns.wrap({netmond_bin(), "--check-config"}), 10s);
  CHECK(check.code == 0);
  CHECK(check.out.find("<built-in default>") != std::string::npos);
  auto r = run(ns.wrap({netmond_bin(), "--once", "--log-format", "json"}), 20s);
  INFO(r.out << r.err);
  CHECK((r.code == 0 || r.code == 1));
  CHECK(r.out.find("using the built-in default configuration") != std::string::npos);
  CHECK_FALSE(events(json_lines(r.out), "result").empty());
}

TEST_CASE("HTTP transfers in flight end cleanly on SIGHUP and SIGTERM", "[daemon][http]") {
  // Listeners that nobody accepts on: the kernel completes the handshake, so each HTTP
  // transfer is connected and waits for a response that never comes. With the timeout
  // close to the interval, a transfer is in flight at almost every moment.
  TcpListener silent_a("127.0.0.1");
  TcpListener silent_b("127.0.0.1");
  auto http_check = [](const TcpListener& l, const std::string& name) {
    return "      - {type: http, name: " + name +
           ", url: \"http://127.0.0.1:" + std::to_string(l.port()) +
           "/\", interval: 1s, timeout: 900ms}\n";
  };
  const std::string head = kNoControl +
                           "servers:\n"
                           "  - address: 127.0.0.1\n"
                           "    services:\n";
  auto dir = temp_dir();
  auto cfg =
      write_file(dir, "n.yaml", head + http_check(silent_a, "a") + http_check(silent_b, "b"));
  ChildProcess d({netmond_bin(), "-c", cfg});
  // The deadline ends a connected transfer and names the phase it was in.
  REQUIRE(d.wait_for_output(" a DOWN ", 5s));
  CHECK(d.out().find("timeout after 900ms (connected, no response)") != std::string::npos);
  // Removing a cancels whatever it has in flight; b stays, its transfer untouched.
  write_file(dir, "n.yaml", head + http_check(silent_b, "b"));
  d.signal(SIGHUP);
  REQUIRE(d.wait_for_output("reloaded: 0 added, 1 removed, 0 changed, 1 unchanged", 5s));
  const size_t b_results = d.count(" b DOWN ");
  for (int i = 0; i < 30 && d.count(" b DOWN ") == b_results; ++i)
    std::this_thread::sleep_for(100ms);
  CHECK(d.count(" b DOWN ") > b_results);
  auto t0 = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  auto code = d.wait(3s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(d.err().find("handles left open") == std::string::npos);
  CHECK(d.out().find("handles left open") == std::string::npos);
}

TEST_CASE("the seed's HTTP checks fail at once inside an isolated namespace",
          "[daemon][netns][http]") {
  Netns ns;
  if (!ns.ok() || !ns.up_loopback() || !ns.isolate_resolver()) {
    WARN("skipped: cannot create a network namespace here (needs root and iproute2)");
    return;
  }
  auto cfg = write_file(temp_dir(), "seed-http.yaml",
                        "servers:\n"
                        "  - address: http://example.com\n"
                        "    services: [HTTP]\n"
                        "  - address: https://example.com\n"
                        "    services: [https]\n"
                        "  - address: https://8.8.8.8/\n"
                        "    services: [https]\n");
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(ns.wrap({netmond_bin(), "--once", "--log-format", "json", "-c", cfg}), 20s);
  INFO(r.out << r.err);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(r.code == 1);
  auto results = events(json_lines(r.out), "result");
  REQUIRE(results.size() == 3);
  for (const auto& j : results) {
    CHECK(j["ok"] == false);
    if (j["check"] == "https://8.8.8.8/https") {
      CHECK(j["reason"] == "unreachable");
      CHECK(j["message"] == "network unreachable (8.8.8.8:443)");
    } else {
      CHECK(j["reason"] == "resolve_failed");
    }
  }
}
