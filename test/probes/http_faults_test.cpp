// The http probe against fake servers on loopback that misbehave in the ways a real server
// will not on demand: silence, trickled headers, endless and exploding bodies, redirect
// loops and redirects off the web, broken framing, garbage, an empty reply. The fakes run on
// the test's loop beside the probe (test/support/http_fakes.h).
#include "http.h"

#include "support/http_fakes.h"
#include "support/loop.h"
#include "support/peers.h"
#include "support/probe_harness.h"
#include "support/process.h"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::FakeHttpOptions;
using netmond::test::FakeHttpServer;
using netmond::test::HttpFault;
using netmond::test::LoopFixture;
using netmond::test::ProbeHarness;

namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * 1024;

std::unique_ptr<Probe> http_probe(ProbeHarness& h, const HttpSpec& spec) {
  return make_probe(h.ctx, test::endpoint("127.0.0.1"), spec);
}

HttpSpec spec_for(const FakeHttpServer& fake, std::string_view path = "/") {
  HttpSpec spec;
  spec.url = fake.url(path);
  return spec;
}

// One run as the scheduler drives it: start(), and expire() at the deadline unless the
// result came first. The callbacks share the state by pointer, so a done() that fires late
// (a bug) is counted, not a use after return.
struct DeadlineRun {
  std::optional<Result> done;     // delivered before the deadline
  std::optional<Result> expired;  // what expire() returned at the deadline
  int done_calls = 0;
  std::chrono::nanoseconds elapsed{};  // from start() to whichever came first
};

std::shared_ptr<DeadlineRun> run_with_deadline(LoopFixture& fixture, Probe& probe,
                                               std::chrono::milliseconds deadline) {
  auto run = std::make_shared<DeadlineRun>();
  uv_update_time(fixture.loop());  // the timer must count from now, not the last turn
  uv::Timer timer(fixture.loop());
  const auto started = uv::now();
  probe.start(deadline, [run, started](Result r) {
    ++run->done_calls;
    if (run->expired) return;  // after expire(): only counted
    run->done = std::move(r);
    run->elapsed = uv::now() - started;
  });
  timer.start(deadline, [run, started, &probe] {
    if (run->done) return;
    run->expired = probe.expire();
    run->elapsed = uv::now() - started;
  });
  fixture.run_until([&] { return run->done || run->expired; }, deadline + 2s);
  return run;
}

// Runs the loop (at most 2 s) until the fake has seen every connection closed: the probe
// let go of them.
bool all_closed(LoopFixture& fixture, const FakeHttpServer& fake) {
  return fixture.run_until([&] { return fake.open_connections() == 0; }, 2s);
}

}  // namespace

// ---- The fakes themselves, against the curl program and zlib --------------------------------

namespace {

constexpr const char* kCurlBin = "/usr/bin/curl";

struct CurlRun {
  int code = -1;  // curl's exit code; -1 when it did not end in time
  std::string out, err;
};

// Runs the curl program against a fake. The fake serves from this loop, so the loop runs
// while curl does; a ticker polls for curl's exit. stdout carries "-w" output only.
CurlRun run_curl(LoopFixture& fixture, const std::vector<std::string>& args) {
  // -q must come first: it makes curl ignore any ~/.curlrc.
  std::vector<std::string> argv{
      kCurlBin,     "-q", "--silent", "--show-error", "--noproxy", "*",
      "--max-time", "5",  "-o",       "/dev/null",    "-w",        "%{http_code} %{num_connects}"};
  argv.insert(argv.end(), args.begin(), args.end());
  test::ChildProcess child(argv);
  std::optional<int> code;
  uv::Timer ticker(fixture.loop());
  ticker.start(
      10ms, [&] { code = child.wait(0ms); }, 10ms);
  fixture.run_until([&] { return code.has_value(); }, 8s);
  CurlRun r;
  r.code = code.value_or(-1);
  r.out = child.out();
  r.err = child.err();
  return r;
}

bool have_curl() { return ::access(kCurlBin, X_OK) == 0; }

}  // namespace

TEST_CASE("http fakes: each fault as the curl program sees it", "[http-fakes]") {
  if (!have_curl()) {
    WARN("no " << kCurlBin << ": cannot check the fakes against it");
    return;
  }
  LoopFixture fixture;
  {
    SECTION("Normal answers 200 ok and keeps the connection") {
      FakeHttpServer fake(fixture.loop(), HttpFault::Normal);
      auto r = run_curl(fixture, {fake.url("/a"), "-o", "/dev/null", fake.url("/b")});
      INFO(r.err);
      CHECK(r.code == 0);
      CHECK(r.out == "200 1200 0");  // the second transfer reused the connection
      CHECK(fake.connections() == 1);
      CHECK(fake.requests() == 2);
      CHECK(fake.targets() == std::vector<std::string>{"/a", "/b"});
      CHECK_THAT(
          fake.last_request(),
          Catch::StartsWith("GET /b HTTP/1.1\r\n") &&
              Catch::Contains("\r\nHost: 127.0.0.1:" + std::to_string(fake.port()) + "\r\n") &&
              Catch::EndsWith("\r\n\r\n"));
    }
    SECTION("Silent never answers") {
      FakeHttpServer fake(fixture.loop(), HttpFault::Silent);
      auto r = run_curl(fixture, {"--max-time", "0.3", fake.url()});
      CHECK(r.code == 28);  // CURLE_OPERATION_TIMEDOUT
      CHECK(fake.requests() == 1);
      CHECK(fake.bytes_sent() == 0);
    }
    SECTION("TrickleHeaders is valid but slow") {
      FakeHttpOptions o(HttpFault::TrickleHeaders);
      o.trickle_interval = 2ms;
      FakeHttpServer fast(fixture.loop(), o);
      auto r = run_curl(fixture, {fast.url()});
      INFO(r.err);
      CHECK(r.code == 0);
      CHECK(r.out == "200 1");

      FakeHttpServer slow(fixture.loop(), HttpFault::TrickleHeaders);  // 50 ms a byte
      r = run_curl(fixture, {"--max-time", "0.3", slow.url()});
      CHECK(r.code == 28);
      CHECK(slow.bytes_sent() > 0);
      CHECK(slow.bytes_sent() < 20);
    }
    SECTION("EndlessBody stops at its limit, or when the client leaves") {
      FakeHttpOptions o(HttpFault::EndlessBody);
      o.endless_limit = kMiB;
      FakeHttpServer bounded(fixture.loop(), o);
      auto r =
          run_curl(fixture, {"-w", "%{http_code} %{num_connects} %{size_download}", bounded.url()});
      INFO(r.err);
      CHECK(r.code == 0);
      CHECK(r.out == "200 1 1048576");

      FakeHttpServer endless(fixture.loop(), HttpFault::EndlessBody);
      r = run_curl(fixture, {"--max-time", "0.2", endless.url()});
      CHECK(r.code == 28);
      REQUIRE(all_closed(fixture, endless));
      auto sent = endless.bytes_sent();
      CHECK(sent > kMiB);
      fixture.run_for(50ms);
      CHECK(endless.bytes_sent() == sent);  // nothing more after the client left
    }
    SECTION("GzipBomb is a valid gzip body") {
      FakeHttpOptions o(HttpFault::GzipBomb);
      o.bomb_mib = 16;  // curl would spend seconds inflating 512 MiB
      FakeHttpServer fake(fixture.loop(), o);
      auto r = run_curl(fixture, {"--compressed", "-w",
                                  "%{http_code} %{num_connects} %{size_download}", fake.url()});
      INFO(r.err);
      CHECK(r.code == 0);
      CHECK(r.out == "200 1 " + std::to_string(test::gzip_zeros(16).size()));
    }
    SECTION("RedirectLoop never ends") {
      FakeHttpServer fake(fixture.loop(), HttpFault::RedirectLoop);
      auto r = run_curl(fixture, {"-L", "--max-redirs", "2", fake.url()});
      CHECK(r.code == 47);  // CURLE_TOO_MANY_REDIRECTS
      CHECK(fake.targets() == std::vector<std::string>{"/", "/loop/1", "/loop/2"});
    }
    SECTION("RedirectTo sends the client elsewhere") {
      FakeHttpOptions o(HttpFault::RedirectTo);
      o.location = "ftp://127.0.0.1:21/x";
      FakeHttpServer fake(fixture.loop(), o);
      auto r = run_curl(fixture, {"-L", "--proto-redir", "=http,https", fake.url()});
      CHECK(r.code == 1);  // CURLE_UNSUPPORTED_PROTOCOL
      CHECK_THAT(r.err, Catch::Contains("ftp"));
    }
    SECTION("BadChunked breaks the framing") {
      FakeHttpServer fake(fixture.loop(), HttpFault::BadChunked);
      auto r = run_curl(fixture, {fake.url()});
      CHECK(r.code == 56);  // CURLE_RECV_ERROR
      CHECK_THAT(r.err, Catch::Contains("chunked"));
    }
    SECTION("Garbage is not HTTP") {
      FakeHttpServer fake(fixture.loop(), HttpFault::Garbage);
      auto r = run_curl(fixture, {fake.url()});
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Catch::Contains("HTTP/0.9"));
    }
    SECTION("CloseAfterRequest is an empty reply") {
      FakeHttpServer fake(fixture.loop(), HttpFault::CloseAfterRequest);
      auto r = run_curl(fixture, {fake.url()});
      CHECK(r.code == 52);  // CURLE_GOT_NOTHING, not a reset
      CHECK(fake.requests() == 1);
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http fakes: the gzip bomb inflates to exactly its size", "[http-fakes]") {
  // 128 MiB rather than the probe test's 512: the bytes differ only in how often the block
  // repeats and in the trailer, and inflating 512 MiB takes two seconds.
  constexpr std::size_t kBombMiB = 128;
  const std::string& bomb = test::gzip_zeros(kBombMiB);
  CHECK(bomb.size() < kBombMiB * 2 * kKiB);  // ~1 KiB per MiB: a bomb, not a download
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);  // gzip only
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bomb.data()));
  z.avail_in = static_cast<uInt>(bomb.size());
  std::vector<unsigned char> out(kMiB);
  std::size_t inflated = 0;
  bool nonzero = false;
  int rc = Z_OK;
  // Each round produces up to 1 MiB; the bound is the expected size plus slack.
  for (std::size_t round = 0; round < kBombMiB + 8 && rc == Z_OK; ++round) {
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&z, Z_NO_FLUSH);
    std::size_t n = out.size() - z.avail_out;
    for (std::size_t i = 0; i < n && !nonzero; i += 4096) nonzero = out[i] != 0;
    inflated += n;
  }
  inflateEnd(&z);
  CHECK(rc == Z_STREAM_END);  // the CRC and length in the trailer check out
  CHECK(z.avail_in == 0);
  CHECK(inflated == kBombMiB * kMiB);
  CHECK_FALSE(nonzero);
}

// ---- The probe against the fakes ---------------------------------------------------------------

TEST_CASE("http: a silent server runs into netmond's deadline", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpServer fake(fixture.loop(), HttpFault::Silent);
    auto probe = http_probe(h, spec_for(fake));
    auto run = run_with_deadline(fixture, *probe, 500ms);
    REQUIRE_FALSE(run->done);  // nothing ended the run early with another status
    REQUIRE(run->expired);
    const Result& r = *run->expired;
    INFO(r.message);
    CHECK(r.status == Status::Timeout);
    CHECK_THAT(r.message, Catch::StartsWith("timeout after") && Catch::Contains("no response"));
    CHECK(run->elapsed >= 495ms);  // uv_now has millisecond resolution
    CHECK(run->elapsed <= 550ms);
    CHECK(r.latency >= 450ms);
    CHECK(r.latency <= 550ms);
    CHECK(fake.requests() == 1);  // it was waiting for the answer, not for a connect

    // expire() stopped all I/O: the connection goes, and done never fires.
    CHECK(h.curl.transfers() == 0);
    CHECK(all_closed(fixture, fake));
    fixture.run_for(100ms);
    CHECK(run->done_calls == 0);
    CHECK(h.curl.sockets() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: headers trickling in past the deadline are a Timeout", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpServer fake(fixture.loop(), HttpFault::TrickleHeaders);  // ~5 s of headers
    auto probe = http_probe(h, spec_for(fake));
    auto run = run_with_deadline(fixture, *probe, 300ms);
    REQUIRE_FALSE(run->done);
    REQUIRE(run->expired);
    INFO(run->expired->message);
    CHECK(run->expired->status == Status::Timeout);
    CHECK_THAT(run->expired->message, Catch::StartsWith("timeout after"));
    CHECK(fake.bytes_sent() > 0);   // the response had begun
    CHECK(fake.bytes_sent() < 20);  // but was far from done
    CHECK(all_closed(fixture, fake));
    CHECK(run->done_calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: an endless body is cut at max_body_bytes, in flat memory", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpServer fake(fixture.loop(), HttpFault::EndlessBody);  // up to 1 GiB
    HttpSpec spec = spec_for(fake);
    spec.max_body_bytes = 64 * kKiB;
    auto probe = http_probe(h, spec);
    const std::size_t rss_before = test::resident_bytes();
    auto r = test::run_probe(fixture, *probe);
    const std::size_t rss_after = test::resident_bytes();
    REQUIRE(r);
    INFO(r->message << " " << r->details.dump());
    CHECK(r->status == Status::Ok);
    CHECK(r->details["status_code"] == 200);
    CHECK(r->details["body_bytes"] == 64 * kKiB);
    CHECK(r->details["body_truncated"] == true);
    CHECK(rss_after < rss_before + 32 * kMiB);

    // The probe hung up once it had enough: the fake saw the close and stopped, having
    // sent what the socket buffers held, far from its 1 GiB.
    REQUIRE(all_closed(fixture, fake));
    const auto sent = fake.bytes_sent();
    CHECK(sent < 16 * kMiB);
    fixture.run_for(50ms);
    CHECK(fake.bytes_sent() == sent);
    CHECK(h.curl.transfers() == 0);
    CHECK(h.curl.sockets() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: a gzip bomb is inflated only up to max_body_bytes", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpServer fake(fixture.loop(), HttpFault::GzipBomb);  // 512 MiB in ~520 KiB
    HttpSpec spec = spec_for(fake);
    spec.max_body_bytes = kMiB;
    auto probe = http_probe(h, spec);
    const std::size_t rss_before = test::resident_bytes();
    auto r = test::run_probe(fixture, *probe);
    const std::size_t rss_after = test::resident_bytes();
    REQUIRE(r);
    INFO(r->message << " " << r->details.dump() << "\nrequest:\n" << fake.last_request());
    CHECK(r->status == Status::Ok);
    CHECK(r->details["status_code"] == 200);
    // Decoded bytes are counted (the compressed body is half this size) and capped.
    CHECK(r->details["body_bytes"] == kMiB);
    CHECK(r->details["body_truncated"] == true);
    CHECK(r->latency < 2s);  // it stopped inflating; 512 MiB would take seconds
    CHECK(rss_after < rss_before + 32 * kMiB);
    CHECK(all_closed(fixture, fake));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: an endless redirect chain is BadResponse after max_redirects", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpServer fake(fixture.loop(), HttpFault::RedirectLoop);
    HttpSpec spec = spec_for(fake);
    spec.max_redirects = 2;
    auto probe = http_probe(h, spec);
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    INFO(r->message << " " << r->details.dump());
    CHECK(r->status == Status::BadResponse);
    CHECK_THAT(r->message, Catch::Contains("too many redirects"));
    // The first request and two followed hops; the third redirect is not followed.
    CHECK(fake.requests() == 3);
    CHECK(fake.targets() == std::vector<std::string>{"/", "/loop/1", "/loop/2"});
    CHECK(r->details["redirects"] == 2);
    CHECK(all_closed(fixture, fake));
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: a redirect to ftp:// is not followed", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    // Something listens where the redirect points, to see that nothing connects there.
    test::TcpListener ftp("127.0.0.1");
    FakeHttpOptions o(HttpFault::RedirectTo);
    o.location = "ftp://127.0.0.1:" + std::to_string(ftp.port()) + "/x";
    FakeHttpServer fake(fixture.loop(), o);
    auto probe = http_probe(h, spec_for(fake));
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    INFO(r->message << " " << r->details.dump());
    CHECK(r->status == Status::BadResponse);
    CHECK_THAT(r->message, Catch::Contains("ftp"));
    CHECK(fake.requests() == 1);
    CHECK(fake.connections() == 1);
    CHECK_FALSE(ftp.accept_peer());
    CHECK(r->details["redirects"] == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: malformed answers are BadResponse", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    HttpFault fault = HttpFault::Normal;
    std::string says;
    SECTION("an invalid chunk size") {
      fault = HttpFault::BadChunked;
      says = "chunk";
    }
    SECTION("not HTTP at all") {
      fault = HttpFault::Garbage;
      says = "HTTP";
    }
    SECTION("closed without a reply") {
      fault = HttpFault::CloseAfterRequest;
      says = "empty reply";
    }
    FakeHttpServer fake(fixture.loop(), fault);
    auto probe = http_probe(h, spec_for(fake));
    auto r = test::run_probe(fixture, *probe);
    REQUIRE(r);
    INFO(r->message << " " << r->details.dump());
    CHECK(r->status == Status::BadResponse);
    CHECK_THAT(r->message, Catch::Contains(says));
    CHECK(fake.requests() == 1);
    // BadChunked and Garbage leave the connection open: the probe must close it.
    CHECK(all_closed(fixture, fake));
    CHECK(h.curl.sockets() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: cancel() in the middle of a transfer", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    std::unique_ptr<FakeHttpServer> fake;
    SECTION("waiting for the response") {
      fake = std::make_unique<FakeHttpServer>(fixture.loop(), HttpFault::Silent);
    }
    SECTION("reading the body") {
      FakeHttpOptions o(HttpFault::EndlessBody);
      o.chunk_interval = 20ms;  // 16 KiB per 20 ms: 1 MiB takes over a second
      fake = std::make_unique<FakeHttpServer>(fixture.loop(), o);
    }
    auto probe = http_probe(h, spec_for(*fake));
    int calls = 0;
    probe->start(5s, [&](Result) { ++calls; });
    fixture.run_for(100ms);
    REQUIRE(calls == 0);
    REQUIRE(fake->requests() == 1);
    CHECK(h.curl.transfers() == 1);
    probe->cancel();
    CHECK(h.curl.transfers() == 0);
    probe->cancel();  // idempotent
    probe.reset();
    CHECK(all_closed(fixture, *fake));
    fixture.run_for(50ms);
    CHECK(calls == 0);
    CHECK(h.curl.sockets() == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: destroying the probe mid-transfer is a cancel", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpOptions o(HttpFault::EndlessBody);
    o.chunk_interval = 20ms;
    FakeHttpServer fake(fixture.loop(), o);
    auto probe = http_probe(h, spec_for(fake));
    int calls = 0;
    probe->start(5s, [&](Result) { ++calls; });
    fixture.run_for(100ms);
    REQUIRE(calls == 0);
    CHECK(fake.bytes_sent() > 0);
    probe.reset();
    CHECK(h.curl.transfers() == 0);
    CHECK(all_closed(fixture, fake));
    fixture.run_for(50ms);
    CHECK(calls == 0);
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http: a fresh connection per run unless keepalive", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    FakeHttpServer fake(fixture.loop(), HttpFault::Normal);  // keep-alive capable
    HttpSpec spec = spec_for(fake, "/health");
    int expected_connections = 0;
    SECTION("by default") { expected_connections = 2; }
    SECTION("keepalive: true") {
      spec.keepalive = true;
      expected_connections = 1;
    }
    auto probe = http_probe(h, spec);
    for (int run = 0; run < 2; ++run) {
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      INFO(r->message << " " << r->details.dump());
      CHECK(r->status == Status::Ok);
      CHECK_THAT(r->message, Catch::StartsWith("HTTP 200 in "));
      CHECK(r->details["status_code"] == 200);
      CHECK(r->details["redirects"] == 0);
      CHECK(r->details["body_bytes"] == 2);
      CHECK(r->details["body_truncated"] == false);
      CHECK(r->details["final_url"] == fake.url("/health"));
    }
    CHECK(fake.requests() == 2);
    CHECK(fake.connections() == expected_connections);
    CHECK_THAT(fake.last_request(),
               Catch::StartsWith("GET /health HTTP/1.1\r\n") &&
                   Catch::Contains("\r\nHost: 127.0.0.1:" + std::to_string(fake.port()) + "\r\n") &&
                   Catch::Contains("\r\nUser-Agent: netmond/"));
    if (!spec.keepalive) {
      CHECK(all_closed(fixture, fake));  // the probe does not leave idle connections behind
      CHECK(h.curl.sockets() == 0);
    }
  }
  REQUIRE(fixture.finish() == 0);
}
