// Hostile peers, as the daemon meets them: the scheduler runs checks against peers that
// never finish an exchange (a TCP listener whose accept queue is full, HTTP servers that
// are silent, trickle their headers or send an endless slow body, silent DNS, NTP and UDP
// echo servers) beside well-behaved checks on a short interval, all on one loop with the
// daemon's probe services. Each hostile run must end with its timeout, at the timeout
// (within 10%); the good checks must keep their schedule; and once the hostile checks are
// removed (a reload), descriptors and memory return to where they were.
#include "registry.h"
#include "report.h"
#include "scheduler.h"
#include "support/config_text.h"
#include "support/dns_fakes.h"
#include "support/http_fakes.h"
#include "support/loop.h"
#include "support/ntp_fakes.h"
#include "support/peers.h"
#include "support/probe_harness.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace netmond;
using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

struct Run {
  Status status;
  std::string message;
  std::chrono::nanoseconds latency, lateness;
};

class Recorder : public Reporter {
 public:
  void result(const CheckConfig& check, const CheckState&, const Result& r,
              const RunInfo& info) override {
    if (recording) runs[check.name].push_back({r.status, r.message, r.latency, info.lateness});
  }
  void transition(const CheckConfig&, Health, Health, const Result&) override {}
  bool recording = false;
  std::map<std::string, std::vector<Run>> runs;
};

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

TEST_CASE(
    "hostile peers: runs end at their timeout, other checks keep their schedule, "
    "descriptors and memory return",
    "[daemon][hostile]") {
  LoopFixture f;
  {
    ProbeHarness h(f.loop());
    UdpPeer echo(f.loop(), "127.0.0.1",
                 [](std::string_view request) { return std::optional<std::string>(request); });
    TcpListener full("127.0.0.1", 0);
    std::vector<Fd> queue = fill_accept_queue(full, "127.0.0.1");
    FakeHttpServer silent_http(f.loop(), HttpFault::Silent);
    FakeHttpServer trickle(f.loop(), HttpFault::TrickleHeaders);
    FakeHttpOptions slow_body(HttpFault::EndlessBody);
    slow_body.chunk_interval = 50ms;  // 16 KiB per 50 ms: far below max_body_bytes in 1 s
    FakeHttpServer endless(f.loop(), slow_body);
    FakeDnsServer silent_dns(f.loop(), DnsFault::Silent);
    FakeNtpServer silent_ntp(f.loop(), NtpFault::Silent);
    std::uint16_t silent_udp_port = 0;
    Fd silent_udp = bound_socket("127.0.0.1", SOCK_DGRAM, &silent_udp_port);

    std::string good =
        "servers:\n  - address: 127.0.0.1\n    interval: 100ms\n"
        "    timeout: 100ms\n    services:\n";
    for (int i = 0; i < 10; ++i)
      good += "      - {type: udp_echo, name: good" + std::to_string(i) +
              ", port: " + std::to_string(echo.port()) + "}\n";
    const std::string p = "      - {type: ";
    std::string hostile =
        "  - address: 127.0.0.1\n    interval: 1500ms\n    timeout: 1s\n"
        "    services:\n" +
        p + "http, name: http-silent, url: \"" + silent_http.url() + "\"}\n" + p +
        "http, name: http-trickle, url: \"" + trickle.url() + "\"}\n" + p +
        "http, name: http-endless, url: \"" + endless.url() + "\"}\n" + p +
        "dns, name: dns-silent, server: 127.0.0.1, port: " + std::to_string(silent_dns.port()) +
        ", query: host.test}\n" + p +
        "ntp, name: ntp-silent, port: " + std::to_string(silent_ntp.port()) + "}\n" + p +
        "udp_echo, name: echo-silent, port: " + std::to_string(silent_udp_port) + "}\n";
    if (!queue.empty())
      hostile += p + "tcp, name: tcp-backlog, port: " + std::to_string(full.port()) + "}\n";
    else
      WARN("the accept queue never filled: no tcp check");
    ConfigText good_only = parse_config_text(good);
    ConfigText with_hostile = parse_config_text(good + hostile);
    REQUIRE(good_only.errors.empty());
    REQUIRE(with_hostile.errors.empty());

    Recorder recorder;
    Scheduler scheduler(f.loop(), recorder, [&](const CheckConfig& c) {
      return make_probe(h.ctx, c.endpoint, c.spec);
    });
    // The good checks alone, warmed up: the baseline.
    scheduler.apply(good_only.config->checks);
    f.run_for(1s);
    const std::size_t fds_before = open_fd_count();
    const std::size_t rss_before = resident_bytes();

    recorder.recording = true;
    scheduler.apply(with_hostile.config->checks);
    f.run_for(4s);
    recorder.recording = false;
    // The reload that removes them, and time for their last runs to be cancelled.
    scheduler.apply(good_only.config->checks);
    f.run_for(1s);
    const std::size_t fds_after = open_fd_count();
    const std::size_t rss_after = resident_bytes();

    for (const auto& [name, runs] : recorder.runs) {
      if (name.rfind("good", 0) == 0) continue;
      INFO(name);
      CHECK(runs.size() >= 2);  // every 1.5 s for 4 s
      for (const Run& r : runs) {
        INFO(r.message << " after " << ms(r.latency) << " ms");
        CHECK(r.status == Status::Timeout);
        CHECK(ms(r.latency) >= 1000.0);
        CHECK(ms(r.latency) <= 1100.0);  // the timeout honoured within 10%
      }
    }
    CHECK(recorder.runs.size() == 10 + 6 + (queue.empty() ? 0 : 1));

    // The good checks: every run ok, on time.
    std::vector<double> lateness;
    for (int i = 0; i < 10; ++i) {
      const auto& runs = recorder.runs["good" + std::to_string(i)];
      CHECK(runs.size() >= 35);  // every 100 ms for 4 s
      for (const Run& r : runs) {
        CHECK(r.status == Status::Ok);
        lateness.push_back(ms(r.lateness));
      }
    }
    std::sort(lateness.begin(), lateness.end());
    REQUIRE(!lateness.empty());
    const double p99 = lateness[lateness.size() * 99 / 100];
    INFO("good checks' lateness p50 / p99 / max: " << lateness[lateness.size() / 2] << " / " << p99
                                                   << " / " << lateness.back() << " ms");
    // A hostile peer that blocked the loop would hold it for up to its run's timeout (1 s);
    // what a busy machine (the suite runs two tests at a time, the ASan build is slower)
    // adds stays well below that: 1.5 ms here alone, 19 ms with the suite beside it.
    CHECK(p99 <= 50.0);
    CHECK(lateness.back() <= 150.0);

    INFO("descriptors " << fds_before << " -> " << fds_after << ", resident " << rss_before / 1024
                        << " -> " << rss_after / 1024 << " KiB");
    CHECK(fds_after == fds_before);
#ifndef __SANITIZE_ADDRESS__
    // Not under ASan: its quarantine keeps freed memory resident by design (LeakSanitizer
    // checks for leaks there instead, at exit).
    CHECK(rss_after <= rss_before + 4 * 1024 * 1024);
#endif
    scheduler.clear();
    f.run_for(100ms);
  }
  CHECK(f.finish() == 0);
}
