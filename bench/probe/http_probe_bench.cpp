// http_probe_bench: netmond's CPU time per HTTP probe run, for `make bench`.
//
// Builds what the daemon builds for its probes (a libuv loop, a Resolver, the one
// CurlMulti, a ProbeContext), makes --concurrency http probes for --url with
// make_probe(), and runs them until --runs runs have ended: each probe is started again
// from its done callback (a later loop turn, as the daemon's scheduler would) while runs
// remain. Each run has a deadline, as the daemon gives it: a uv timer of --timeout-ms
// that expire()s the probe. A --max-seconds wall limit cancels whatever is still in
// flight. Nothing is subtracted: the CPU per run is everything this process used
// (getrusage RUSAGE_SELF, user + system) from the first start() to the last result,
// divided by the runs that ended.
//
// Usage: http_probe_bench --url URL [--runs N] [--concurrency K] [--timeout-ms T]
//                         [--max-seconds S] [--keepalive]
// Prints one line on stdout:
//   RESULT runs=N ok=N failed=N incomplete=N wall_s=W runs_per_s=R cpu_us=C user_us=U
//          sys_us=S cpu_us_per_run=P startup_cpu_us=A setup_cpu_us=B latency_p50_us=L
//          latency_p99_us=L maxrss_kib=M
// startup_cpu_us is the CPU used before main() (exec, dynamic linking, static
// initialisers); setup_cpu_us from main() to the first start() (loop, Resolver, CurlMulti
// with curl_global_init, the probes). The first failures go to stderr.
// Exit: 0 when every run was Ok, 1 otherwise, 2 usage.

#include "ares_channel.h"
#include "curl_multi.h"
#include "http.h"
#include "probe.h"
#include "resolver.h"
#include "result.h"

#include "base/uv.h"

#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace netmond;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  long runs = 2000;
  int concurrency = 20;
  long timeout_ms = 5000;
  double max_seconds = 60;
  bool keepalive = false;
};

void usage(std::FILE* f) {
  std::fputs(
      "usage: http_probe_bench --url URL [--runs N] [--concurrency K] [--timeout-ms T]\n"
      "                        [--max-seconds S] [--keepalive]\n"
      "  --url          what every probe requests, e.g. http://127.0.0.1:8080/ (required)\n"
      "  --runs         probe runs in total (default 2000)\n"
      "  --concurrency  probes, each with one run in flight at a time (default 20)\n"
      "  --timeout-ms   each run's deadline; a run past it is expire()d (default 5000)\n"
      "  --max-seconds  wall limit: cancel what is in flight and stop (default 60)\n"
      "  --keepalive    http keepalive: true (reuse connections; default false)\n",
      f);
}

long long cpu_us(const rusage& r, bool user, bool sys) {
  auto us = [](const timeval& tv) {
    return static_cast<long long>(tv.tv_sec) * 1000000 + tv.tv_usec;
  };
  return (user ? us(r.ru_utime) : 0) + (sys ? us(r.ru_stime) : 0);
}

rusage self_usage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r;
}

double percentile_us(std::vector<std::chrono::nanoseconds>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k].count()) / 1000.0;
}

// One concurrent probe and its deadline.
struct Slot {
  std::unique_ptr<Probe> probe;
  uv::Timer deadline;
  bool busy = false;
  explicit Slot(uv_loop_t* loop) : deadline(loop) {}
};

class Bench {
 public:
  Bench(uv_loop_t* loop, ProbeContext& ctx, const Options& o)
      : loop_(loop), opts_(o), limit_(loop) {
    Endpoint e;
    e.host = host_of(o.url);
    e.address = o.url;
    HttpSpec spec;
    spec.url = o.url;
    spec.keepalive = o.keepalive;
    for (int i = 0; i < o.concurrency; ++i) {
      auto& s = slots_.emplace_back(std::make_unique<Slot>(loop));
      s->probe = make_probe(ctx, e, spec);
    }
    latencies_.reserve(static_cast<std::size_t>(o.runs));
  }

  void run() {
    limit_.start(std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::duration<double>(opts_.max_seconds)),
                 [this] { on_wall_limit(); });
    start_ = Clock::now();
    for (auto& s : slots_) start_next(*s);
    uv_run(loop_, UV_RUN_DEFAULT);
  }

  // The figures, taken when the last run ended.
  rusage usage_end{};
  Clock::time_point end{};
  long ok = 0, failed = 0, ended = 0, started = 0;
  bool wall_limited = false;
  std::vector<std::chrono::nanoseconds> latencies_;
  Clock::time_point start_{};

 private:
  void start_next(Slot& s) {
    if (started >= opts_.runs || wall_limited) return;
    ++started;
    s.busy = true;
    s.deadline.start(std::chrono::milliseconds(opts_.timeout_ms), [this, &s] {
      // The run's deadline: what the daemon's scheduler does.
      Result r = s.probe->expire();
      finish(s, std::move(r));
    });
    s.probe->start(std::chrono::milliseconds(opts_.timeout_ms), [this, &s](Result r) {
      s.deadline.stop();
      finish(s, std::move(r));
    });
  }

  void finish(Slot& s, Result r) {
    s.busy = false;
    ++ended;
    if (r.ok()) {
      ++ok;
      latencies_.push_back(r.latency);
    } else {
      ++failed;
      if (failed <= 5)
        std::fprintf(stderr, "http_probe_bench: run %ld: %s: %s\n", ended,
                     std::string(code(r.status)).c_str(), r.message.c_str());
    }
    if (ended >= opts_.runs) {
      done();
      return;
    }
    start_next(s);
  }

  void on_wall_limit() {
    wall_limited = true;
    std::fprintf(stderr, "http_probe_bench: wall limit of %g s reached; cancelling\n",
                 opts_.max_seconds);
    done();
  }

  void done() {
    usage_end = self_usage();
    end = Clock::now();
    limit_.stop();
    for (auto& s : slots_) {
      s->deadline.stop();
      if (s->busy) s->probe->cancel();
      s->busy = false;
    }
    uv_stop(loop_);
  }

  uv_loop_t* loop_;
  Options opts_;
  uv::Timer limit_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

bool parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--keepalive") {
      o->keepalive = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    char* end = nullptr;
    if (a == "--url") {
      o->url = v;
    } else if (a == "--runs") {
      o->runs = std::strtol(v, &end, 10);
    } else if (a == "--concurrency") {
      o->concurrency = static_cast<int>(std::strtol(v, &end, 10));
    } else if (a == "--timeout-ms") {
      o->timeout_ms = std::strtol(v, &end, 10);
    } else if (a == "--max-seconds") {
      o->max_seconds = std::strtod(v, &end);
    } else {
      return false;
    }
    if (end != nullptr && *end != '\0') return false;
  }
  return !o->url.empty() && o->runs >= 1 && o->concurrency >= 1 && o->concurrency <= 10000 &&
         o->timeout_ms >= 1 && o->max_seconds > 0;
}

}  // namespace

int main(int argc, char** argv) {
  const rusage at_main = self_usage();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
  }
  Options o;
  if (!parse_args(argc, argv, &o)) {
    usage(stderr);
    return 2;
  }
  if (o.concurrency > o.runs) o.concurrency = static_cast<int>(o.runs);

  uv_loop_t loop{};
  if (uv_loop_init(&loop) != 0) {
    std::fputs("http_probe_bench: uv_loop_init failed\n", stderr);
    return 1;
  }
  rusage at_start{}, at_end{};
  long ok = 0, failed = 0, ended = 0;
  bool wall_limited = false;
  double wall_s = 0, p50 = 0, p99 = 0;
  {
    // The URL is an IP literal: the Resolver never asks a DNS server. Point it at
    // loopback anyway so that nothing here can leave the host.
    ResolverOptions ro;
    ro.servers = {"127.0.0.1:53"};
    ro.tries = 1;
    Resolver resolver(&loop, ro);
    CurlMulti curl(&loop);
    DnsChannels dns(&loop);
    ProbeContext ctx{&loop, resolver, curl, dns};
    Bench bench(&loop, ctx, o);
    at_start = self_usage();
    bench.run();
    at_end = bench.usage_end;
    ok = bench.ok;
    failed = bench.failed;
    ended = bench.ended;
    wall_limited = bench.wall_limited;
    wall_s = std::chrono::duration<double>(bench.end - bench.start_).count();
    p50 = percentile_us(bench.latencies_, 0.50);
    p99 = percentile_us(bench.latencies_, 0.99);
  }
  // Let the close callbacks of the probes', Resolver's and CurlMulti's handles run; a
  // bounded number of turns, so a handle left active cannot hang the benchmark.
  for (int i = 0; i < 100 && uv_loop_alive(&loop) != 0; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  const int close_rc = uv_loop_close(&loop);

  const long long user = cpu_us(at_end, true, false) - cpu_us(at_start, true, false);
  const long long sys = cpu_us(at_end, false, true) - cpu_us(at_start, false, true);
  std::printf(
      "RESULT runs=%ld ok=%ld failed=%ld incomplete=%ld wall_s=%.6f runs_per_s=%.1f cpu_us=%lld "
      "user_us=%lld sys_us=%lld cpu_us_per_run=%.3f startup_cpu_us=%lld setup_cpu_us=%lld "
      "latency_p50_us=%.1f latency_p99_us=%.1f maxrss_kib=%ld concurrency=%d keepalive=%d\n",
      o.runs, ok, failed, o.runs - ended, wall_s,
      wall_s > 0 ? static_cast<double>(ended) / wall_s : 0.0, user + sys, user, sys,
      ended > 0 ? static_cast<double>(user + sys) / static_cast<double>(ended) : 0.0,
      cpu_us(at_main, true, true), cpu_us(at_start, true, true) - cpu_us(at_main, true, true), p50,
      p99, at_end.ru_maxrss, o.concurrency, o.keepalive ? 1 : 0);
  if (close_rc != 0)
    std::fputs("http_probe_bench: uv_loop_close: a handle was left open\n", stderr);
  if (wall_limited) return 1;
  return (ok == o.runs && close_rc == 0) ? 0 : 1;
}
