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
// --gap-ms G waits G ms between a probe's runs instead (a uv timer armed from the done
// callback), as the daemon's interval does; for latency comparisons, not for CPU figures.
//
// Common flags: [--runs N] [--concurrency K] [--timeout-ms T] [--gap-ms G] [--max-seconds S].
// Prints one line on stdout:
//   RESULT runs=N ok=N failed=N incomplete=N wall_s=W runs_per_s=R cpu_us=C user_us=U
//          sys_us=S cpu_us_per_run=P startup_cpu_us=A setup_cpu_us=B latency_p50_us=L
//          latency_p99_us=L maxrss_kib=M concurrency=K <the program's own keys>
// startup_cpu_us is the CPU used before main() (exec, dynamic linking, static
// initialisers); setup_cpu_us from main() to the first start() (loop, Resolver, CurlMulti
// with curl_global_init, DnsChannels, the probes). The first failures go to stderr.
// Exit: 0 when every run was Ok, 1 otherwise, 2 usage.
#pragma once

#include "params.h"
#include "probe.h"
#include "result.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
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
  // Sees every run's result, when set (it runs inside the measured time: set it only for
  // figures that need it, such as RTT samples).
  std::function<void(const Result&)> on_result;
};

// "KEY=VALUE" settings (a program's --set flags) as a YAML map of the probe type's keys,
// each VALUE read as a YAML scalar ("3", "200ms", "true"). False, with *err, when one has
// no '=' or VALUE is not valid YAML.
bool settings_map(const std::vector<std::string>& settings, YAML::Node* out, std::string* err);

// Reads SETTINGS into *spec with the type's own parse(), as the config loader reads a
// service's keys (unknown keys are errors), so that a benchmark runs only what the daemon
// would accept. Prints the diagnostics to stderr (prefixed with NAME) and returns false
// when there are any.
template <class Spec>
bool parse_settings(std::string_view name, const std::vector<std::string>& settings, Spec* spec) {
  YAML::Node map;
  std::string err;
  if (!settings_map(settings, &map, &err)) {
    std::fprintf(stderr, "%.*s: --set: %s\n", static_cast<int>(name.size()), name.data(),
                 err.c_str());
    return false;
  }
  Diagnostics diag("--set");
  Params p(map, std::string(Spec::kType), &diag);
  parse(p, spec);
  p.reject_unknown();
  for (const Diagnostic& d : diag.list())
    std::fprintf(stderr, "%.*s: %s: %s\n", static_cast<int>(name.size()), name.data(),
                 d.path.c_str(), d.message.c_str());
  return diag.empty();
}

// Whether `ip` is an IPv4 (127.0.0.0/8) or IPv6 (::1) loopback literal: the programs send
// thousands of requests a second and refuse any other target.
bool is_loopback_ip(const char* ip);

// The program's whole main(): parses argv, runs the benchmark, prints RESULT.
int probe_bench_main(int argc, char** argv, const ProbeBench& bench);

// The whole main() of a program whose probe is one service of a loopback server, as a
// configuration would have it: --port PORT (required), --server IP (a loopback literal,
// default 127.0.0.1) and --set KEY=VALUE settings of the type, read by its own parse().
// `b` brings the name, synopsis and help (for these flags too) and any flags of its own;
// `valid` may refuse a parsed spec (say, a target that is not loopback), `keys` gives
// the RESULT keys of one.
template <class Spec>
int service_probe_main(int argc, char** argv, ProbeBench b,
                       std::function<bool(const Spec&)> valid = {},
                       std::function<std::string(const Spec&)> keys = {}) {
  std::string server = "127.0.0.1";
  std::string port;  // "port=N", from --port
  std::vector<std::string> settings;
  Spec spec;
  b.flags.push_back({"--port", true, [&](const char* v) {
                       char* end = nullptr;
                       const long n = std::strtol(v, &end, 10);
                       if (*end != '\0' || n < 1 || n > 65535) return false;
                       port = "port=" + std::to_string(n);
                       return true;
                     }});
  b.flags.push_back({"--server", true, [&](const char* v) {
                       server = v;
                       return is_loopback_ip(v);
                     }});
  b.flags.push_back({"--set", true, [&](const char* v) {
                       settings.emplace_back(v);
                       return true;
                     }});
  b.complete = [&] {
    for (const std::string& s : settings) {
      if (s.starts_with("port=")) {
        std::fprintf(stderr, "%.*s: the port is --port's, not --set's\n",
                     static_cast<int>(b.name.size()), b.name.data());
        return false;
      }
    }
    if (port.empty()) return false;
    settings.push_back(port);
    return parse_settings(b.name, settings, &spec) && (!valid || valid(spec));
  };
  b.make_probe = [&](ProbeContext& ctx) {
    Endpoint e;
    e.host = server;
    e.address = server;
    return make_probe(ctx, e, spec);
  };
  if (keys) b.result_keys = [&] { return keys(spec); };
  return probe_bench_main(argc, argv, b);
}

}  // namespace netmond::bench
