// icmp_probe_bench: netmond's CPU time per ICMP probe run, and its RTTs, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency icmp probes made by make_probe() for one
// host (an IP literal, so no name is resolved), each with its own echo identifier, as
// checks have; how it runs them and what its RESULT line holds is described there. The
// spec is read from --set KEY=VALUE settings by the icmp type's own parse(), as the config
// loader reads a service's keys (count, spacing, size, ttl, max_rtt, max_loss; the
// defaults are the daemon's: one 56-byte echo request per run). A run is Ok when the
// probe says so (replies within max_loss).
//
// --rtt collects the RTT every run reports (its rtt_ms detail: with count=1, the one
// reply's RTT, from the kernel's receive stamp) and adds their median, minimum and
// maximum to RESULT; --rtt-file FILE also writes them there, one per line, in µs.
// Reading the details costs CPU inside the measured time: leave --rtt out for CPU figures.
//
// Usage: icmp_probe_bench [--host LOOPBACK_IP] [--set KEY=VALUE]... [--rtt]
//                         [--rtt-file FILE] [--runs N] [--concurrency K] [--timeout-ms T]
//                         [--gap-ms G] [--max-seconds S]
// RESULT adds count=N socket=raw|dgram and, with --rtt, rtt_samples=N rtt_p50_us=M
// rtt_min_us=A rtt_max_us=B. Needs CAP_NET_RAW or a ping socket (ping_group_range).
// Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "icmp.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace netmond;
  std::string host = "127.0.0.1";
  std::vector<std::string> settings;
  bool rtt = false;
  std::string rtt_file;
  std::vector<double> rtts_us;
  std::string socket_kind = "none";
  IcmpSpec spec;

  bench::ProbeBench b;
  b.name = "icmp_probe_bench";
  b.synopsis = "[--host IP] [--set KEY=VALUE]... [--rtt] [--rtt-file FILE]";
  b.flags_help =
      "  --host         the IP address to ping, a loopback one (default 127.0.0.1)\n"
      "  --set          an icmp key of the configuration, e.g. count=3, spacing=200ms\n"
      "  --rtt          report the median, least and largest RTT of the runs\n"
      "  --rtt-file     write every run's RTT there, in µs, one per line (implies --rtt)\n";
  b.flags = {
      {"--host", true,
       [&](const char* v) {
         host = v;
         return bench::is_loopback_ip(v);
       }},
      {"--set", true,
       [&](const char* v) {
         settings.emplace_back(v);
         return true;
       }},
      {"--rtt", false,
       [&](const char*) {
         rtt = true;
         return true;
       }},
      {"--rtt-file", true,
       [&](const char* v) {
         rtt = true;
         rtt_file = v;
         return !rtt_file.empty();
       }},
  };
  b.complete = [&] { return bench::parse_settings(b.name, settings, &spec); };
  b.make_probe = [&](ProbeContext& ctx) {
    Endpoint e;
    e.host = host;
    e.address = host;
    return make_probe(ctx, e, spec);
  };
  // The socket kind from the first result (then one string compare per run: negligible).
  b.on_result = [&](const Result& r) {
    if (socket_kind == "none" && r.details.contains("socket"))
      socket_kind = r.details["socket"].get<std::string>();
    if (rtt && r.details.contains("rtt_ms"))
      rtts_us.push_back(r.details["rtt_ms"].get<double>() * 1000.0);
  };
  b.result_keys = [&] {
    std::string keys = "count=" + std::to_string(spec.count) + " socket=" + socket_kind;
    if (!rtt) return keys;
    std::vector<double> v = rtts_us;
    std::sort(v.begin(), v.end());
    double p50 = 0;
    if (!v.empty())
      p50 = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  " rtt_samples=%zu rtt_p50_us=%.1f rtt_min_us=%.1f rtt_max_us=%.1f", v.size(), p50,
                  v.empty() ? 0.0 : v.front(), v.empty() ? 0.0 : v.back());
    if (!rtt_file.empty()) {
      if (std::FILE* f = std::fopen(rtt_file.c_str(), "w")) {
        for (double us : rtts_us) std::fprintf(f, "%.1f\n", us);
        std::fclose(f);
      } else {
        std::perror(rtt_file.c_str());
      }
    }
    return keys + buf;
  };
  return bench::probe_bench_main(argc, argv, b);
}
