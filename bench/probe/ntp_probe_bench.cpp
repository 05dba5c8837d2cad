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

#include <string>

int main(int argc, char** argv) {
  using namespace netmond;
  bench::ProbeBench b;
  b.name = "ntp_probe_bench";
  b.synopsis = "--port PORT [--server IP] [--set KEY=VALUE]...";
  b.flags_help =
      "  --port         the NTP server's UDP port (required)\n"
      "  --server       the NTP server's IP address, a loopback one (default 127.0.0.1)\n"
      "  --set          an ntp key of the configuration, e.g. samples=2, max_offset=50ms\n";
  return bench::service_probe_main<NtpSpec>(
      argc, argv, b,
      [](const NtpSpec& spec) {
        return spec.server.empty() || bench::is_loopback_ip(spec.server.c_str());
      },
      [](const NtpSpec& spec) { return "samples=" + std::to_string(spec.samples); });
}
