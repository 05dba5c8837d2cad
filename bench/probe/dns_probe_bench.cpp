// dns_probe_bench: netmond's CPU time per DNS probe run, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency dns probes made by make_probe() for one
// server (an IP literal, so no name is resolved; the probes share one c-ares channel from
// the daemon's DnsChannels, as checks against one server do); how it runs them and what
// its RESULT line holds is described there. A run is Ok when the answer is NOERROR with at
// least one record of the type asked (and matches --expect when given).
//
// Usage: dns_probe_bench --port PORT [--server LOOPBACK_IP] [--query NAME] [--type N] [--tcp]
//                        [--expect REGEX] [--runs N] [--concurrency K] [--timeout-ms T]
//                        [--max-seconds S]
// RESULT adds tcp=0|1. Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "dns.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

int main(int argc, char** argv) {
  using namespace netmond;
  DnsSpec spec;
  spec.server = "127.0.0.1";
  spec.port = 0;
  spec.query = "bench.test";
  // A number in 1..65535: a port, a record type.
  auto u16 = [](const char* v, std::uint16_t* out) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 65535) return false;
    *out = static_cast<std::uint16_t>(n);
    return true;
  };
  bench::ProbeBench b;
  b.name = "dns_probe_bench";
  b.synopsis = "--port PORT [--server IP] [--query NAME] [--type N] [--tcp] [--expect REGEX]";
  b.flags_help =
      "  --port         the DNS server's port (required)\n"
      "  --server       the DNS server's IP address, a loopback one (default 127.0.0.1)\n"
      "  --query        the name asked (default bench.test)\n"
      "  --type         the record type asked, as a number (default 1: A)\n"
      "  --tcp          protocol: tcp (default udp)\n"
      "  --expect       a regular expression an answer must match (default none)\n";
  b.flags = {
      {"--port", true, [&](const char* v) { return u16(v, &spec.port); }},
      {"--server", true,
       [&](const char* v) {
         spec.server = v;
         return bench::is_loopback_ip(v);
       }},
      {"--query", true,
       [&](const char* v) {
         spec.query = v;
         return !spec.query.empty();
       }},
      {"--type", true,
       [&](const char* v) {
         if (!u16(v, &spec.record_type)) return false;
         spec.record_types = {spec.record_type};
         return true;
       }},
      {"--tcp", false,
       [&](const char*) {
         spec.tcp = true;
         return true;
       }},
      {"--expect", true,
       [&](const char* v) {
         spec.expect.emplace_back(v);
         return true;
       }},
  };
  b.complete = [&] { return spec.port != 0; };
  b.make_probe = [&](ProbeContext& ctx) {
    Endpoint e;
    e.host = spec.server;
    e.address = spec.server;
    return make_probe(ctx, e, spec);
  };
  b.result_keys = [&] { return std::string("tcp=") + (spec.tcp ? "1" : "0"); };
  return bench::probe_bench_main(argc, argv, b);
}
