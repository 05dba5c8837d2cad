#include "probe_bench.h"

#include "ares_channel.h"
#include "curl_multi.h"
#include "raw_icmp_sockets.h"
#include "resolver.h"
#include "result.h"

#include "base/uv.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace netmond::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  long runs = 2000;
  int concurrency = 20;
  long timeout_ms = 5000;
  long gap_ms = 0;
  double max_seconds = 60;
};

void usage(std::FILE* f, const ProbeBench& b) {
  const std::string name(b.name);
  std::fprintf(f,
               "usage: %s %.*s\n"
               "       %*s [--runs N] [--concurrency K] [--timeout-ms T] [--gap-ms G]\n"
               "       %*s [--max-seconds S]\n"
               "%.*s"
               "  --runs         probe runs in total (default 2000)\n"
               "  --concurrency  probes, each with one run in flight at a time (default 20)\n"
               "  --timeout-ms   each run's deadline; a run past it is expire()d (default 5000)\n"
               "  --gap-ms       wait between a probe's runs (default 0: the next loop turn)\n"
               "  --max-seconds  wall limit: cancel what is in flight and stop (default 60)\n",
               name.c_str(), static_cast<int>(b.synopsis.size()), b.synopsis.data(),
               static_cast<int>(name.size()), "", static_cast<int>(name.size()), "",
               static_cast<int>(b.flags_help.size()), b.flags_help.data());
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

// One concurrent probe, its deadline and the wait before its next run (--gap-ms).
struct Slot {
  std::unique_ptr<Probe> probe;
  uv::Timer deadline;
  uv::Timer gap;
  bool busy = false;
  explicit Slot(uv_loop_t* loop) : deadline(loop), gap(loop) {}
};

class Bench {
 public:
  Bench(uv_loop_t* loop, ProbeContext& ctx, const Options& o, const ProbeBench& b)
      : loop_(loop), opts_(o), name_(b.name), on_result_(b.on_result), limit_(loop) {
    for (int i = 0; i < o.concurrency; ++i) {
      auto& s = slots_.emplace_back(std::make_unique<Slot>(loop));
      s->probe = b.make_probe(ctx);
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
    if (on_result_) on_result_(r);
    if (r.ok()) {
      ++ok;
      latencies_.push_back(r.latency);
    } else {
      ++failed;
      if (failed <= 5)
        std::fprintf(stderr, "%s: run %ld: %s: %s\n", name_.c_str(), ended,
                     std::string(code(r.status)).c_str(), r.message.c_str());
    }
    if (ended >= opts_.runs) {
      done();
      return;
    }
    if (opts_.gap_ms > 0)
      s.gap.start(std::chrono::milliseconds(opts_.gap_ms), [this, &s] { start_next(s); });
    else
      start_next(s);
  }

  void on_wall_limit() {
    wall_limited = true;
    std::fprintf(stderr, "%s: wall limit of %g s reached; cancelling\n", name_.c_str(),
                 opts_.max_seconds);
    done();
  }

  void done() {
    usage_end = self_usage();
    end = Clock::now();
    limit_.stop();
    for (auto& s : slots_) {
      s->deadline.stop();
      s->gap.stop();
      if (s->busy) s->probe->cancel();
      s->busy = false;
    }
    uv_stop(loop_);
  }

  uv_loop_t* loop_;
  Options opts_;
  std::string name_;
  std::function<void(const Result&)> on_result_;
  uv::Timer limit_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

bool parse_args(int argc, char** argv, const ProbeBench& b, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto own =
        std::find_if(b.flags.begin(), b.flags.end(), [&](const Flag& f) { return f.name == a; });
    if (own != b.flags.end() && !own->takes_value) {
      if (!own->set(nullptr)) return false;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (own != b.flags.end()) {
      if (!own->set(v)) return false;
      continue;
    }
    char* end = nullptr;
    if (a == "--runs") {
      o->runs = std::strtol(v, &end, 10);
    } else if (a == "--concurrency") {
      o->concurrency = static_cast<int>(std::strtol(v, &end, 10));
    } else if (a == "--timeout-ms") {
      o->timeout_ms = std::strtol(v, &end, 10);
    } else if (a == "--gap-ms") {
      o->gap_ms = std::strtol(v, &end, 10);
    } else if (a == "--max-seconds") {
      o->max_seconds = std::strtod(v, &end);
    } else {
      return false;
    }
    if (end != nullptr && *end != '\0') return false;
  }
  return b.complete() && o->runs >= 1 && o->concurrency >= 1 && o->concurrency <= 10000 &&
         o->timeout_ms >= 1 && o->gap_ms >= 0 && o->max_seconds > 0;
}

}  // namespace

bool settings_map(const std::vector<std::string>& settings, YAML::Node* out, std::string* err) {
  YAML::Node map(YAML::NodeType::Map);
  for (const std::string& s : settings) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      *err = "'" + s + "' is not KEY=VALUE";
      return false;
    }
    try {
      map[s.substr(0, eq)] = YAML::Load(s.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      *err = "'" + s + "': " + e.what();
      return false;
    }
  }
  *out = map;
  return true;
}

int probe_bench_main(int argc, char** argv, const ProbeBench& b) {
  const rusage at_main = self_usage();
  const std::string name(b.name);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      usage(stdout, b);
      return 0;
    }
  }
  Options o;
  if (!parse_args(argc, argv, b, &o)) {
    usage(stderr, b);
    return 2;
  }
  if (o.concurrency > o.runs) o.concurrency = static_cast<int>(o.runs);
  // As the daemon does (daemon/main.cpp): a write to a closed connection (a DNS server
  // closing its TCP end) is an error to handle, not a process-killing SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop{};
  if (uv_loop_init(&loop) != 0) {
    std::fprintf(stderr, "%s: uv_loop_init failed\n", name.c_str());
    return 1;
  }
  rusage at_start{}, at_end{};
  long ok = 0, failed = 0, ended = 0;
  bool wall_limited = false;
  double wall_s = 0, p50 = 0, p99 = 0;
  {
    // The probes' targets are IP literals: the Resolver never asks a DNS server. Point it
    // at loopback anyway so that nothing here can leave the host.
    ResolverOptions ro;
    ro.servers = {"127.0.0.1:53"};
    ro.tries = 1;
    Resolver resolver(&loop, ro);
    CurlMulti curl(&loop);
    DnsChannels dns(&loop);
    RawIcmpSockets icmp(&loop);
    ProbeContext ctx{&loop, resolver, curl, dns, icmp};
    Bench bench(&loop, ctx, o, b);
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
  // Let the close callbacks of the probes', Resolver's, CurlMulti's and DnsChannels'
  // handles run; a bounded number of turns, so a handle left active cannot hang the
  // benchmark.
  for (int i = 0; i < 100 && uv_loop_alive(&loop) != 0; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  const int close_rc = uv_loop_close(&loop);

  const long long user = cpu_us(at_end, true, false) - cpu_us(at_start, true, false);
  const long long sys = cpu_us(at_end, false, true) - cpu_us(at_start, false, true);
  const std::string keys = b.result_keys ? b.result_keys() : std::string();
  std::printf(
      "RESULT runs=%ld ok=%ld failed=%ld incomplete=%ld wall_s=%.6f runs_per_s=%.1f cpu_us=%lld "
      "user_us=%lld sys_us=%lld cpu_us_per_run=%.3f startup_cpu_us=%lld setup_cpu_us=%lld "
      "latency_p50_us=%.1f latency_p99_us=%.1f maxrss_kib=%ld concurrency=%d%s%s\n",
      o.runs, ok, failed, o.runs - ended, wall_s,
      wall_s > 0 ? static_cast<double>(ended) / wall_s : 0.0, user + sys, user, sys,
      ended > 0 ? static_cast<double>(user + sys) / static_cast<double>(ended) : 0.0,
      cpu_us(at_main, true, true), cpu_us(at_start, true, true) - cpu_us(at_main, true, true), p50,
      p99, at_end.ru_maxrss, o.concurrency, keys.empty() ? "" : " ", keys.c_str());
  if (close_rc != 0)
    std::fprintf(stderr, "%s: uv_loop_close: a handle was left open\n", name.c_str());
  if (wall_limited) return 1;
  return (ok == o.runs && close_rc == 0) ? 0 : 1;
}

bool is_loopback_ip(const char* ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, ip, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace netmond::bench
