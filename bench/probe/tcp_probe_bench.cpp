// tcp_probe_bench: netmond's CPU time per tcp probe run, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency tcp probes made by make_probe() for one
// loopback listener (an IP literal, so no name is resolved); how it runs them and what
// its RESULT line holds is described there. A run is Ok when the connection was
// established (the probe closes it at once).
//
// Usage: tcp_probe_bench --port PORT [--server LOOPBACK_IP] [--runs N] [--concurrency K]
//                        [--timeout-ms T] [--gap-ms G] [--max-seconds S]
// Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "tcp.h"

int main(int argc, char** argv) {
  using namespace netmond;
  bench::ProbeBench b;
  b.name = "tcp_probe_bench";
  b.synopsis = "--port PORT [--server IP]";
  b.flags_help =
      "  --port         the listener's TCP port (required)\n"
      "  --server       the listener's IP address, a loopback one (default 127.0.0.1)\n"
      "  --set          a tcp key of the configuration (tcp has none but port)\n";
  return bench::service_probe_main<TcpSpec>(argc, argv, b);
}
