// probe_bench: the harness shared by the <probe>_probe_bench programs of `make bench`.
//
// Builds what the daemon builds for its probes (a libuv loop, a Resolver, the one
// CurlMulti, the DnsChannels, a ProbeContext), makes --concurrency probes with the
// program's make_probe, and runs them until --runs runs have ended: each probe is started
// again from its done callback (a later loop turn, as the daemon's scheduler would) while
// runs remain. Each run has a deadline, as the daemon gives it: a uv timer of
// --timeout-ms that expire()s the probe. A --max-seconds wall limit cancels whatever is
// still in flight. Nothing is subtracted: the CPU per run is everything the process used
// (getrusage RUSAGE_SELF, user + system) from the first start() to the last result,
// divided by the runs that ended.
//
// Common flags: [--runs N] [--concurrency K] [--timeout-ms T] [--max-seconds S].
// Prints one line on stdout:
//   RESULT runs=N ok=N failed=N incomplete=N wall_s=W runs_per_s=R cpu_us=C user_us=U
//          sys_us=S cpu_us_per_run=P startup_cpu_us=A setup_cpu_us=B latency_p50_us=L
//          latency_p99_us=L maxrss_kib=M concurrency=K <the program's own keys>
// startup_cpu_us is the CPU used before main() (exec, dynamic linking, static
// initialisers); setup_cpu_us from main() to the first start() (loop, Resolver, CurlMulti
// with curl_global_init, DnsChannels, the probes). The first failures go to stderr.
// Exit: 0 when every run was Ok, 1 otherwise, 2 usage.
#pragma once

#include "probe.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace netmond::bench {

// One of a program's own command-line flags.
struct Flag {
  std::string_view name;  // "--url"
  bool takes_value = true;
  // Stores the value (nullptr when the flag takes none); false when it is not valid.
  std::function<bool(const char* value)> set;
};

// What a <probe>_probe_bench program adds to the harness.
struct ProbeBench {
  std::string_view name;        // the program's name, for messages: "http_probe_bench"
  std::string_view synopsis;    // its own flags in the usage line: "--url URL [--keepalive]"
  std::string_view flags_help;  // one help line per own flag, each ending in '\n'
  std::vector<Flag> flags;
  std::function<bool()> complete;  // every required flag was given
  // Makes one of the --concurrency probes; called before the first run.
  std::function<std::unique_ptr<Probe>(ProbeContext&)> make_probe;
  std::function<std::string()> result_keys;  // appended to RESULT: "keepalive=0"
};

// The program's whole main(): parses argv, runs the benchmark, prints RESULT.
int probe_bench_main(int argc, char** argv, const ProbeBench& bench);

}  // namespace netmond::bench
