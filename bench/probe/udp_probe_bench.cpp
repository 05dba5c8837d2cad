// udp_probe_bench: netmond's CPU time per udp probe run, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency udp probes made by make_probe() for one
// loopback server (an IP literal, so no name is resolved); how it runs them and what its
// RESULT line holds is described there. Each run sends one datagram (the `payload`
// setting, as the daemon's udp check) from a fresh connected socket and waits for a
// reply; against an echo server a run is Ok with "open (reply received)".
//
// Usage: udp_probe_bench --port PORT [--server LOOPBACK_IP] [--set KEY=VALUE]...
//                        [--runs N] [--concurrency K] [--timeout-ms T] [--gap-ms G]
//                        [--max-seconds S]
// RESULT adds payload_bytes=N. Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "udp.h"

#include <string>

int main(int argc, char** argv) {
  using namespace netmond;
  bench::ProbeBench b;
  b.name = "udp_probe_bench";
  b.synopsis = "--port PORT [--server IP] [--set KEY=VALUE]...";
  b.flags_help =
      "  --port         the server's UDP port (required)\n"
      "  --server       the server's IP address, a loopback one (default 127.0.0.1)\n"
      "  --set          a udp key of the configuration, e.g. payload=ping\n";
  return bench::service_probe_main<UdpSpec>(argc, argv, b, {}, [](const UdpSpec& spec) {
    return "payload_bytes=" + std::to_string(spec.payload.size());
  });
}
