// udp_echo_probe_bench: netmond's CPU time per udp_echo probe run, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency udp_echo probes made by make_probe() for
// one loopback echo server (an IP literal, so no name is resolved); how it runs them and
// what its RESULT line holds is described there. The spec is read from --port and --set
// KEY=VALUE settings by the udp_echo type's own parse() (the defaults are the daemon's:
// one request per run, "netmond echo check" and the 52-byte nonce trailer, from a fresh
// connected socket). A run is Ok when every request came back byte for byte.
//
// Usage: udp_echo_probe_bench --port PORT [--server LOOPBACK_IP] [--set KEY=VALUE]...
//                             [--runs N] [--concurrency K] [--timeout-ms T] [--gap-ms G]
//                             [--max-seconds S]
// RESULT adds request_bytes=N count=N. Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "udp_echo.h"

#include <string>

int main(int argc, char** argv) {
  using namespace netmond;
  bench::ProbeBench b;
  b.name = "udp_echo_probe_bench";
  b.synopsis = "--port PORT [--server IP] [--set KEY=VALUE]...";
  b.flags_help =
      "  --port         the echo server's UDP port (required)\n"
      "  --server       the echo server's IP address, a loopback one (default 127.0.0.1)\n"
      "  --set          a udp_echo key of the configuration, e.g. count=3, spacing=0s\n";
  return bench::service_probe_main<UdpEchoSpec>(argc, argv, b, {}, [](const UdpEchoSpec& spec) {
    return "request_bytes=" + std::to_string(echo_request_size(spec.message, spec.size)) +
           " count=" + std::to_string(spec.count);
  });
}
