// http_probe_bench: netmond's CPU time per HTTP probe run, for `make bench`.
//
// The harness (probe_bench.h) with --concurrency http probes made by make_probe() for
// --url on the daemon's loop, Resolver and CurlMulti; how it runs them and what its
// RESULT line holds is described there.
//
// Usage: http_probe_bench --url URL [--keepalive] [--runs N] [--concurrency K]
//                         [--timeout-ms T] [--max-seconds S]
// RESULT adds keepalive=0|1. Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "probe_bench.h"

#include "http.h"

#include "base/address.h"

#include <memory>
#include <string>

int main(int argc, char** argv) {
  using namespace netmond;
  std::string url;
  bool keepalive = false;
  bench::ProbeBench b;
  b.name = "http_probe_bench";
  b.synopsis = "--url URL [--keepalive]";
  b.flags_help =
      "  --url          what every probe requests, e.g. http://127.0.0.1:8080/ (required)\n"
      "  --keepalive    http keepalive: true (reuse connections; default false)\n";
  b.flags = {
      {"--url", true,
       [&](const char* v) {
         url = v;
         return true;
       }},
      {"--keepalive", false,
       [&](const char*) {
         keepalive = true;
         return true;
       }},
  };
  b.complete = [&] { return !url.empty(); };
  b.make_probe = [&](ProbeContext& ctx) {
    Endpoint e;
    e.host = host_of(url);
    e.address = url;
    HttpSpec spec;
    spec.url = url;
    spec.keepalive = keepalive;
    return make_probe(ctx, e, spec);
  };
  b.result_keys = [&] { return std::string("keepalive=") + (keepalive ? "1" : "0"); };
  return bench::probe_bench_main(argc, argv, b);
}
