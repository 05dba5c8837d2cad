// The seed project's whole configuration (docs/examples/seed.yaml) run by the real daemon
// inside a network namespace the test creates, with only loopback up and a resolver that
// points at loopback: every public target fails at once with a precise reason, never a
// timeout, and nothing leaves the namespace.
#include "support/netns.h"
#include "support/process.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

using namespace netmond::test;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("docs/examples/seed.yaml runs whole in an isolated namespace and fails fast",
          "[daemon][netns][seed]") {
  Netns ns;
  if (!ns.ok() || !ns.up_loopback() || !ns.isolate_resolver()) {
    WARN("skipped: cannot create a network namespace here (needs root and iproute2)");
    return;
  }
  const std::string seed = std::string(NETMOND_SOURCE_DIR) + "/docs/examples/seed.yaml";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(ns.wrap({netmond_bin(), "--once", "--log-format", "json", "-c", seed}), 30s);
  INFO(r.out << r.err);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // no run waited for its timeout
  CHECK(r.code == 1);

  std::map<std::string, json> results;  // check name -> its result
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    if (j.value("event", "") == "result") results[j["check"]] = j;
  }
  // Every service of the seed: ping and icmp, DNS, HTTP, https, NTP, tcp, udp and the two
  // echo checks.
  CHECK(results.size() == 10);
  for (const auto& [name, j] : results) {
    INFO(name << ": " << j.dump());
    CHECK(j["ok"] == false);
    CHECK(j["reason"] != "timeout");
  }
  auto reason = [&](const std::string& check) {
    return results.count(check) ? results[check]["reason"].get<std::string>() : "(none)";
  };
  // 8.8.8.8 has no route: ICMP says so at once.
  CHECK(reason("8.8.8.8/icmp") == "unreachable");
  CHECK(reason("8.8.8.8/icmp-2") == "unreachable");
  // Names resolve against the namespace's loopback, where no DNS server listens.
  CHECK(reason("http://example.com/http") == "resolve_failed");
  CHECK(reason("https://example.com/https") == "resolve_failed");
  CHECK(reason("www.example.com/ntp") == "resolve_failed");
  CHECK(reason("www.example.com/tcp:80") == "resolve_failed");
  // No echo server in the namespace: its loopback port is closed.
  CHECK(reason("127.0.0.1/udp_echo:10100") == "refused");
}
