// Black-box tests of `netmonctl probe`: one check, once, without the daemon, with the
// config file's validation, in text, JSON and Nagios-plugin form, against the real loopback
// peers the probe tests use: a TCP listener, nginx (http and https), netmond-echo (udp and
// udp_echo), this host's ICMP stack, chronyd (ntp) and dnsmasq.
#include "support/chronyd.h"
#include "support/dnsmasq.h"
#include "support/netmond_echo.h"
#include "support/nginx.h"
#include "support/peers.h"
#include "support/process.h"
#include "support/tls.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <regex>
#include <string>

using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

const std::string kCtl = NETMONCTL_BIN;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

RunResult probe(std::vector<std::string> args) {
  args.insert(args.begin(), {kCtl, "probe"});
  return run(args, 20s);
}

}  // namespace

TEST_CASE("netmonctl probe runs a check once and exits 0 or 1 by its result", "[ctl][probe]") {
  TcpListener open("127.0.0.1");
  const std::string port = std::to_string(open.port());
  auto r = probe({"tcp", "127.0.0.1", "--set", "port=" + port});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(std::regex_search(
      r.out, std::regex("^127\\.0\\.0\\.1/tcp:" + port +
                        " UP [0-9.]+(us|ms) connected to 127\\.0\\.0\\.1:" + port + "\n$")));
  CHECK(r.err.empty());

  const std::string closed = std::to_string(closed_tcp_port("127.0.0.1"));
  r = probe({"tcp", "127.0.0.1", "--set=port=" + closed, "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["event"] == "result");
  CHECK(j["check"] == "127.0.0.1/tcp:" + closed);
  CHECK(j["ok"] == false);
  CHECK(j["reason"] == "refused");
}

TEST_CASE("netmonctl probe validates --set as the config file does", "[ctl][probe]") {
  auto r = probe({"tcp", "127.0.0.1", "--set", "port=abc"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "netmonctl probe: --set port: expected a port number, got 'abc'"));
  r = probe({"tcp", "127.0.0.1", "--set", "prot=1"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "missing required key 'port'"));
  CHECK(has(r.err, "unknown key 'prot' (did you mean 'port'?)"));
  r = probe({"dnz", "127.0.0.1"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "TYPE: unknown service type 'dnz' (did you mean 'dns'?)"));
  r = probe({"tcp", "127.0.0.1", "--set", "port=1", "--set", "port=2"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "--set port: given twice"));
  r = probe({"tcp", "127.0.0.1", "--set", "port"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "--set 'port': expected KEY=VALUE"));
  r = probe({"tcp"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "missing TYPE and TARGET"));
  r = probe({"tcp", "127.0.0.1", "--set", "port=1", "--warning", "1"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "--warning and --critical go with --format nagios"));
}

TEST_CASE("netmonctl probe runs one check per record type against dnsmasq", "[ctl][probe][dns]") {
  Dnsmasq dns;
  auto r = probe({"dns", "127.0.0.1", "--set", "port=" + std::to_string(dns.port()), "--set",
                  "query=" + std::string(Dnsmasq::kMail), "--set", "record_types=[A, MX]"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);  // mail.test has an MX record and no A record
  CHECK(has(r.out, "127.0.0.1/dns/A DOWN "));
  CHECK(has(r.out, "127.0.0.1/dns/MX UP "));
}

TEST_CASE("netmonctl probe --format nagios: status line, perfdata, exit codes 0..3",
          "[ctl][probe][nagios]") {
  TcpListener open("127.0.0.1");
  const std::string port = "port=" + std::to_string(open.port());
  auto nagios = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"tcp", "127.0.0.1", "--set", port, "--format", "nagios"};
    args.insert(args.end(), extra.begin(), extra.end());
    return probe(args);
  };
  // OK under generous thresholds; the time is in the perfdata with them.
  auto r = nagios({"-w", "5", "-c", "10"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(std::regex_match(
      r.out, std::regex("OK - connected to 127\\.0\\.0\\.1:[0-9]+ \\| time=[0-9.]+s;5;10;0\n")));
  // A connect on loopback takes more than a nanosecond: WARNING, or CRITICAL when both.
  r = nagios({"--warning", "0.000000001", "--critical", "10"});
  CHECK(r.code == 1);
  CHECK(r.out.rfind("WARNING - connected to 127.0.0.1:", 0) == 0);
  CHECK(has(r.out, ", warning 0.000000001)"));
  r = nagios({"-w", "0.000000001", "-c", "0.000000001"});
  CHECK(r.code == 2);
  CHECK(r.out.rfind("CRITICAL - ", 0) == 0);
  // '@' inverts: alert inside the range.
  CHECK(nagios({"-c", "@0:10"}).code == 2);
  CHECK(nagios({"-c", "@10:20"}).code == 0);
  // A failed check is CRITICAL with its reason, and has no time to report.
  r = probe({"tcp", "127.0.0.1", "--set", "port=" + std::to_string(closed_tcp_port("127.0.0.1")),
             "--format", "nagios"});
  CHECK(r.code == 2);
  CHECK(r.out.rfind("CRITICAL - refused: connection refused by 127.0.0.1:", 0) == 0);
  CHECK_FALSE(has(r.out, "|"));
  // Bad arguments are UNKNOWN, on stdout, as plugins report them.
  r = nagios({"-w", "abc"});
  CHECK(r.code == 3);
  CHECK(r.out.rfind("UNKNOWN - --warning 'abc' is not a threshold range", 0) == 0);
  r = probe({"tcp", "127.0.0.1", "--format", "nagios"});
  CHECK(r.code == 3);
  CHECK(r.out == "UNKNOWN - missing required key 'port'\n");
}

// ---- Each probe type once, against the peer its probe tests use ----

TEST_CASE("netmonctl probe http and https against nginx", "[ctl][probe][http]") {
  Nginx nginx;
  const std::string ca = "ca_file=" + test_pki().ca_cert;
  SECTION("http: 200 is UP, a 404 is DOWN with the status it got") {
    auto r = probe({"http", nginx.http_url("/"), "--set", "expect_body=hello netmond"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(std::regex_match(r.out, std::regex("[^ ]+/http UP [0-9.]+(us|ms) HTTP 200 in .*\n")));
    r = probe({"http", nginx.http_url("/notfound"), "--json"});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["ok"] == false);
    CHECK(j["message"] == "expected status 200-399, got 404");
  }
  SECTION("https: a certificate from the given CA is UP, an expired one DOWN") {
    auto r = probe({"https", nginx.https_url(TlsSite::Valid, "/"), "--set", ca, "--format",
                    "nagios", "-w", "5", "-c", "10"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(std::regex_match(r.out, std::regex("OK - HTTP 200 in .* \\| time=[0-9.]+s;5;10;0\n")));
    r = probe({"https", nginx.https_url(TlsSite::Expired, "/"), "--set", ca});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(has(r.out, "/https DOWN "));
    CHECK(has(r.out, "expired"));
  }
}

TEST_CASE("netmonctl probe udp and udp_echo against netmond-echo", "[ctl][probe][udp]") {
  NetmondEcho echo;
  const std::string port = "port=" + echo.port();
  auto r = probe({"udp", "127.0.0.1", "--set", port, "--set", "payload=hello"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(has(r.out, "127.0.0.1/udp:" + echo.port() + " UP "));
  CHECK(has(r.out, "open (reply received, 5 bytes)"));

  r = probe({"udp_echo", "127.0.0.1", "--set", port, "--set", "count=3", "--set", "spacing=10ms",
             "--format", "nagios", "-c", "1"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(std::regex_match(r.out, std::regex("OK - .* \\| time=[0-9.]+s;;1;0 pl=0%;;;0\n")));

  REQUIRE(echo.stop() == 0);
  r = probe({"udp", "127.0.0.1", "--set", port});
  CHECK(r.code == 1);
  CHECK(has(r.out, "port closed (ICMP port unreachable)"));
  r = probe({"udp_echo", "127.0.0.1", "--set", port, "--format", "nagios"});
  CHECK(r.code == 2);
  CHECK(r.out.rfind("CRITICAL - ", 0) == 0);
  CHECK(has(r.out, "port unreachable"));
}

TEST_CASE("netmonctl probe icmp against 127.0.0.1 and ::1", "[ctl][probe][icmp]") {
  for (const std::string target : {"127.0.0.1", "::1"}) {
    auto r = probe({"icmp", target, "--set", "count=3", "--set", "spacing=10ms", "--json"});
    INFO(r.out << r.err);
    if (r.code == 1 && has(r.out, "local_error")) {
      WARN("no ICMP socket on this host (neither ping sockets nor CAP_NET_RAW): " << r.out);
      return;
    }
    CHECK(r.code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["check"] == target + "/icmp");
    CHECK(j["details"]["sent"] == 3);
    CHECK(j["details"]["received"] == 3);
    CHECK_THAT(j["message"].get<std::string>(), Catch::StartsWith("3/3 replies, rtt min/avg/max "));
  }
  // ping's alias and Nagios form: packet loss is in the perfdata.
  auto r = probe({"ping", "127.0.0.1", "--set", "count=2", "--set", "spacing=10ms", "--format",
                  "nagios", "-w", "1", "-c", "2"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(std::regex_match(r.out,
                         std::regex("OK - 2/2 replies, .* \\| time=[0-9.]+s;1;2;0 pl=0%;;;0\n")));
}

TEST_CASE("netmonctl probe ntp against chronyd", "[ctl][probe][ntp]") {
  Chronyd chronyd;
  auto r = probe({"ntp", "127.0.0.1", "--set", "port=" + std::to_string(chronyd.port()), "--json"});
  INFO(r.out << r.err << "\nchronyd:\n" << chronyd.log());
  CHECK(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["ok"] == true);
  CHECK(j["details"]["stratum"] == Chronyd::kStratum);
  CHECK_THAT(j["message"].get<std::string>(), Catch::Contains("stratum 8"));
  // The validation of ntp's own keys reaches the command line too.
  r = probe({"ntp", "127.0.0.1", "--set", "samples=9"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "--set samples"));
}
