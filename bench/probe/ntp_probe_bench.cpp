// ntp_probe_bench: netmond's CPU time per NTP probe run, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency ntp probes made by make_probe() for one
// server (an IP literal, so no name is resolved); how it runs them and what its RESULT
// line holds is described there. The spec is read from --port and --set KEY=VALUE settings
// by the ntp type's own parse(), as the config loader reads a service's keys (samples,
// spacing, max_offset, max_stratum; the defaults are the daemon's: one request per run,
// each from a fresh connected UDP socket). A run is Ok when the probe says so (a valid
// answer within max_offset and max_stratum).
//
// Usage: ntp_probe_bench --port PORT [--server LOOPBACK_IP] [--set KEY=VALUE]...
//                        [--runs N] [--concurrency K] [--timeout-ms T] [--gap-ms G]
//                        [--max-seconds S]
// RESULT adds samples=N. Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "ntp.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

// Loopback only: this program sends thousands of requests a second.
bool is_loopback(const char* ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, ip, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace netmond;
  std::string server = "127.0.0.1";
  std::vector<std::string> settings;
  std::string port;  // "port=N", from --port
  NtpSpec spec;

  bench::ProbeBench b;
  b.name = "ntp_probe_bench";
  b.synopsis = "--port PORT [--server IP] [--set KEY=VALUE]...";
  b.flags_help =
      "  --port         the NTP server's UDP port (required)\n"
      "  --server       the NTP server's IP address, a loopback one (default 127.0.0.1)\n"
      "  --set          an ntp key of the configuration, e.g. samples=2, max_offset=50ms\n";
  b.flags = {
      {"--port", true,
       [&](const char* v) {
         char* end = nullptr;
         const long n = std::strtol(v, &end, 10);
         if (*end != '\0' || n < 1 || n > 65535) return false;
         port = "port=" + std::to_string(n);
         return true;
       }},
      {"--server", true,
       [&](const char* v) {
         server = v;
         return is_loopback(v);
       }},
      {"--set", true,
       [&](const char* v) {
         settings.emplace_back(v);
         return true;
       }},
  };
  b.complete = [&] {
    for (const std::string& s : settings) {
      if (s.starts_with("port=")) {
        std::fprintf(stderr, "ntp_probe_bench: the port is --port's, not --set's\n");
        return false;
      }
    }
    settings.push_back(port);
    return !port.empty() && bench::parse_settings(b.name, settings, &spec) &&
           (spec.server.empty() || is_loopback(spec.server.c_str()));
  };
  b.make_probe = [&](ProbeContext& ctx) {
    Endpoint e;
    e.host = server;
    e.address = server;
    return make_probe(ctx, e, spec);
  };
  b.result_keys = [&] { return "samples=" + std::to_string(spec.samples); };
  return bench::probe_bench_main(argc, argv, b);
}
