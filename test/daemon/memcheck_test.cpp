// No leak and no memory error in the daemon's whole life: checks of every type, each
// once succeeding against a real server (nginx, dnsmasq, chronyd, netmond-echo, a TCP
// listener, the kernel's ICMP echo) and once failing, a reload that adds, changes and
// removes checks, then SIGTERM. In the release tree netmond runs under valgrind's memcheck
// (a leak or an error makes it exit 99); in the ASan tree it runs as it is, and
// LeakSanitizer checks at exit (ctest's ASAN_OPTIONS: a leak aborts, exit 134).
#include "support/chronyd.h"
#include "support/dnsmasq.h"
#include "support/netmond_echo.h"
#include "support/nginx.h"
#include "support/peers.h"
#include "support/process.h"
#include "support/tls.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <set>
#include <sstream>
#include <string>

using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

#ifdef __SANITIZE_ADDRESS__
constexpr bool kValgrind = false;
#else
constexpr bool kValgrind = true;
#endif

// The names of the checks that have logged a result in `out` (JSON lines).
std::set<std::string> checks_with_results(const std::string& out) {
  std::set<std::string> names;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == "result") names.insert(j.value("check", ""));
  }
  return names;
}

}  // namespace

TEST_CASE("every probe type, a reload and a stop: no leak and no memory error",
          "[daemon][memcheck]") {
  if (kValgrind && access("/usr/bin/valgrind", X_OK) != 0) FAIL("valgrind is not installed");
  Nginx nginx;
  Dnsmasq dnsmasq;
  Chronyd chronyd;
  NetmondEcho echo;
  TcpListener open("127.0.0.1");
  const std::string closed_tcp = std::to_string(closed_tcp_port("127.0.0.1"));
  const std::string closed_udp = std::to_string(closed_udp_port("127.0.0.1"));
  std::uint16_t silent_port = 0;
  netmond::Fd silent = bound_socket("127.0.0.1", SOCK_DGRAM, &silent_port);
  const std::string silent_udp = std::to_string(silent_port);
  const std::string dns = std::to_string(dnsmasq.port());

  // Generous timeouts: memcheck runs netmond some 20 to 50 times slower.
  auto config = [&](const std::string& changed) {
    return "log: {format: json}\n"
           "control: {socket: \"\"}\n"
           "servers:\n"
           "  - address: 127.0.0.1\n"
           "    interval: 2s\n"
           "    timeout: 1500ms\n"
           "    services:\n"
           "      - {type: tcp, name: tcp-ok, port: " +
           std::to_string(open.port()) +
           "}\n"
           "      - {type: tcp, name: tcp-refused, port: " +
           closed_tcp +
           "}\n"
           "      - {type: udp, name: udp-ok, port: " +
           echo.port() +
           "}\n"
           "      - {type: udp, name: udp-refused, port: " +
           closed_udp +
           "}\n"
           "      - {type: udp_echo, name: echo-ok, port: " +
           echo.port() +
           "}\n"
           "      - {type: udp_echo, name: echo-silent, port: " +
           silent_udp + ", timeout: 700ms}\n" + "      - {type: http, name: http-ok, url: \"" +
           nginx.http_url("/") +
           "\"}\n"
           "      - {type: https, name: https-ok, url: \"" +
           nginx.https_url(TlsSite::Valid, "/") + "\", ca_file: \"" + test_pki().ca_cert +
           "\"}\n"
           "      - {type: https, name: https-expired, url: \"" +
           nginx.https_url(TlsSite::Expired, "/") + "\", ca_file: \"" + test_pki().ca_cert +
           "\"}\n"
           "      - {type: dns, name: dns-ok, server: 127.0.0.1, port: " +
           dns + ", query: host.test}\n" +
           "      - {type: dns, name: dns-nxdomain, server: 127.0.0.1, port: " + dns +
           ", query: nope.test}\n"
           "      - {type: icmp, name: icmp-ok, count: 2, spacing: 50ms}\n"
           "      - {type: ntp, name: ntp-ok, port: " +
           std::to_string(chronyd.port()) +
           "}\n"
           "      - {type: ntp, name: ntp-silent, port: " +
           silent_udp + ", timeout: 700ms}\n" + changed;
  };
  const std::string dir = temp_dir();
  const std::string cfg = write_file(dir, "memcheck.yaml",
                                     config("      - {type: tcp, name: removed-on-reload, port: " +
                                            std::to_string(open.port()) + "}\n"));
  std::vector<std::string> argv = {netmond_bin(), "-c", cfg, "--no-console"};
  if (kValgrind)
    argv.insert(argv.begin(),
                {"/usr/bin/valgrind", "--tool=memcheck", "--leak-check=full",
                 "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", "--quiet"});
  ChildProcess d(argv);

  // Every check has run at least once (a dns check is named after its record type too); then a
  // reload changes one, adds one, removes one.
  const std::set<std::string> first = {
      "tcp-ok",         "tcp-refused", "udp-ok",   "udp-refused",   "echo-ok",
      "echo-silent",    "http-ok",     "https-ok", "https-expired", "dns-ok/A",
      "dns-nxdomain/A", "icmp-ok",     "ntp-ok",   "ntp-silent",    "removed-on-reload"};
  auto all_ran = [&](const std::set<std::string>& want) {
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < end && !d.wait(0ms)) {
      d.wait_for_output("\n", 500ms);
      auto seen = checks_with_results(d.out());
      if (std::includes(seen.begin(), seen.end(), want.begin(), want.end())) return true;
    }
    return false;
  };
  const bool first_round = all_ran(first);
  INFO("stdout: " << d.out() << "\nstderr: " << d.err());
  REQUIRE(first_round);
  write_file(dir, "memcheck.yaml",
             config("      - {type: udp_echo, name: added-on-reload, port: " + echo.port() +
                    ", count: 3}\n"));
  d.signal(SIGHUP);
  REQUIRE(d.wait_for_output("reloaded", 30s));
  REQUIRE(all_ran({"added-on-reload"}));

  d.signal(SIGTERM);
  auto code = d.wait(60s);
  INFO("stderr: " << d.err());
  REQUIRE(code);
  CHECK(*code == 0);
  // Every result of the first round is there, the failures with the reason they should
  // have: the run exercised both paths of every type.
  auto out = d.out();
  CHECK(out.find("\"check\":\"tcp-refused\",\"type\":\"tcp\"") != std::string::npos);
  CHECK(out.find("\"reason\":\"refused\"") != std::string::npos);
  CHECK(out.find("\"reason\":\"tls_error\"") != std::string::npos);
  CHECK(out.find("\"reason\":\"timeout\"") != std::string::npos);
  CHECK(out.find("\"reason\":\"unexpected\"") != std::string::npos);
}
