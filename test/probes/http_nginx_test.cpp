// The http and https probes against a real web server: nginx on loopback, with certificates
// from a throwaway CA (test/support/nginx.h, test/support/tls.h). What the fakes of
// http_faults_test.cpp cannot show: that the probe speaks HTTP and TLS the way a real server
// does, and reads real certificate chains.
#include "http.h"

#include "support/loop.h"
#include "support/nginx.h"
#include "support/probe_harness.h"
#include "support/process.h"
#include "support/tls.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;
using netmond::test::LoopFixture;
using netmond::test::Nginx;
using netmond::test::ProbeHarness;
using netmond::test::TlsSite;

namespace {

// nginx's access log once it holds `needle`: nginx logs a request after sending the
// response, so under load the line may come a moment after the probe's result.
std::string access_log_with(const Nginx& n, const std::string& needle) {
  std::string log = n.access_log();
  for (int wait = 0; wait < 40 && log.find(needle) == std::string::npos; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = n.access_log();
  }
  return log;
}

// The detail keys asserted below, in one place to follow a rename in probes/http.cpp.
constexpr const char* kStatusCode = "status_code";
constexpr const char* kHttpVersion = "http_version";
constexpr const char* kFinalUrl = "final_url";
constexpr const char* kRedirects = "redirects";
constexpr const char* kBodyBytes = "body_bytes";
constexpr const char* kBodyTruncated = "body_truncated";
constexpr const char* kTimings = "timings";
constexpr const char* kTimingKeys[] = {"dns_ms", "connect_ms", "ttfb_ms", "total_ms"};
constexpr const char* kTlsTiming = "tls_ms";  // https only
constexpr const char* kTlsVersion = "tls_version";
constexpr const char* kCertExpiry = "cert_expiry";             // the leaf's, RFC 3339
constexpr const char* kCertChainExpiry = "cert_chain_expiry";  // the earliest in the chain

// One nginx for the whole test process: starting it (and making the PKI) is the slow part,
// and no test changes it. It stops at exit, from the static's destructor.
const Nginx& nginx() {
  static Nginx server;
  return server;
}

const test::TestPki& pki() { return test::test_pki(); }

HttpSpec http_spec(std::string url) {
  HttpSpec spec;
  spec.url = std::move(url);
  return spec;
}

// An https check of `site`, verified against the test CA.
HttpsSpec https_spec(TlsSite site, std::string_view path = "/") {
  HttpsSpec spec;
  spec.url = nginx().https_url(site, path);
  spec.ca_file = pki().ca_cert;
  return spec;
}

std::unique_ptr<Probe> http_probe(ProbeHarness& h, const HttpSpec& spec,
                                  const std::string& host = "127.0.0.1") {
  return make_probe(h.ctx, test::endpoint(host), spec);
}

// Runs `spec` once on a fresh harness and loop; the loop must end with nothing left open.
std::optional<Result> run_once(const HttpSpec& spec, const std::string& host = "127.0.0.1") {
  LoopFixture fixture;
  std::optional<Result> r;
  {
    ProbeHarness h(fixture.loop());
    auto probe = http_probe(h, spec, host);
    r = test::run_probe(fixture, *probe);
  }
  if (fixture.finish() != 0) throw std::logic_error("the http probe left handles open");
  return r;
}

std::string describe(const Result& r) {
  return std::string(code(r.status)) + ": " + r.message + "\n" + r.details.dump(2);
}

int threads_now() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// curl(1) with the proxy settings of the environment ignored; `args` before the URL.
test::RunResult curl_cli(std::vector<std::string> args) {
  args.insert(args.begin(),
              {"/usr/bin/curl", "--silent", "--show-error", "--noproxy", "*", "--max-time", "10"});
  return test::run(std::move(args));
}

}  // namespace

// ---- The fixture itself, seen by curl(1) and openssl(1) -------------------------------------

TEST_CASE("nginx fixture: the test PKI has the dates it promises", "[nginx-fixture]") {
  const auto& p = pki();
  const std::int64_t now = std::time(nullptr);
  constexpr std::int64_t kDay = 24 * 60 * 60;
  CHECK(p.expired.not_after == 1609459200);  // 2021-01-01T00:00:00Z
  CHECK(test::rfc3339(p.expired.not_after) == "2021-01-01T00:00:00Z");
  CHECK(p.expiring.not_after > now + 2 * kDay);
  CHECK(p.expiring.not_after <= now + 3 * kDay);
  CHECK(p.valid.not_after > now + 700 * kDay);
  CHECK(p.valid.chain_not_after == p.valid.not_after);
  // The chained leaf outlives its intermediate: leaf and chain expiry differ.
  CHECK(p.chained.not_after > now + 300 * kDay);
  CHECK(p.chained.chain_not_after == test::cert_not_after(p.intermediate_cert));
  CHECK(p.chained.chain_not_after < p.chained.not_after);
  CHECK(p.chained.chain_not_after <= now + 30 * kDay);
  CHECK(p.ca_not_after > p.valid.not_after);
  // What the fixture was told by `openssl ca` is what the files hold.
  for (const auto* c : {&p.valid, &p.expired, &p.expiring, &p.other_name, &p.chained}) {
    INFO(c->cert);
    CHECK(test::cert_not_after(c->cert) == c->not_after);
  }
  CHECK(test::cert_not_after(p.ca_cert) == p.ca_not_after);

  auto verify = [&](const test::TestCert& c) {
    std::vector<std::string> argv = {"/usr/bin/openssl", "verify", "-CAfile", p.ca_cert};
    if (c.chain != c.cert) argv.insert(argv.end(), {"-untrusted", c.chain});
    argv.push_back(c.cert);
    return test::run(argv);
  };
  CHECK(verify(p.valid).code == 0);
  CHECK(verify(p.chained).code == 0);
  CHECK(verify(p.other_name).code == 0);
  auto expired = verify(p.expired);
  CHECK(expired.code != 0);
  CHECK_THAT(expired.out + expired.err, Catch::Contains("certificate has expired"));
}

TEST_CASE("nginx fixture: every path over HTTP and IPv6, as curl sees it", "[nginx-fixture]") {
  const Nginx& n = nginx();
  INFO(n.error_log());

  auto r = curl_cli({"--include", n.http_url("/")});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("HTTP/1.1 200 OK\r\n") &&
                        Catch::Contains("Content-Type: text/plain") &&
                        Catch::EndsWith("\r\n\r\nhello netmond\n"));

  r = curl_cli({"--write-out", "%{http_code}", "--output", "/dev/null", n.http_url("/notfound")});
  CHECK(r.out == "404");
  r = curl_cli({"--write-out", "%{http_code}", n.http_url("/status/503")});
  CHECK(r.out == "unavailable\n503");

  r = curl_cli({"--include", n.http_url("/redirect")});
  CHECK_THAT(r.out, Catch::StartsWith("HTTP/1.1 302 ") && Catch::Contains("Location: /target\r\n"));
  r = curl_cli({"--include", n.http_url("/abs-redirect")});
  CHECK_THAT(r.out, Catch::StartsWith("HTTP/1.1 301 ") &&
                        Catch::Contains("Location: " + n.http_url("/target") + "\r\n"));
  r = curl_cli({"--location", "--write-out", " %{num_redirects} %{url_effective}",
                n.http_url("/redirect2")});
  CHECK(r.out == "target ok\n 2 " + n.http_url("/target"));

  r = curl_cli({"--write-out", "%{size_download} %{content_type}", "--output", "/dev/null",
                n.http_url("/big")});
  CHECK(r.out == std::to_string(Nginx::kBigBytes) + " application/octet-stream");
  r = curl_cli({"--compressed", "--include", n.http_url("/text")});
  CHECK_THAT(r.out, Catch::Contains("Content-Encoding: gzip") && Catch::EndsWith("the end\n"));

  r = curl_cli({"--header", "X-Netmond: probe-7", "--user-agent", "ua/1", n.http_url("/headers")});
  CHECK(r.out == "x-netmond=probe-7\nuser-agent=ua/1\n");
  r = curl_cli({"--data", "a=1&b=2", n.http_url("/post")});
  CHECK(r.out == "method=POST length=7\n");
  r = curl_cli({"--head", n.http_url("/")});
  CHECK_THAT(r.out, Catch::StartsWith("HTTP/1.1 200 ") && Catch::Contains("Content-Length: 14"));

  r = curl_cli({n.http6_url("/target")});
  CHECK(r.out == "target ok\n");
  CHECK(r.err.empty());
}

TEST_CASE("nginx fixture: each TLS site presents its certificate", "[nginx-fixture]") {
  const Nginx& n = nginx();
  const auto& p = pki();
  INFO(n.error_log());

  auto r = curl_cli({"--cacert", p.ca_cert, n.https_url(TlsSite::Valid)});
  CHECK(r.out == "hello netmond\n");
  CHECK(r.err.empty());
  r = curl_cli({"--cacert", p.ca_cert, n.https6_url("/target")});
  CHECK(r.out == "target ok\n");
  r = curl_cli({"--cacert", p.ca_cert, n.https_url(TlsSite::Chained)});
  CHECK(r.out == "hello netmond\n");

  // 60: CURLE_PEER_FAILED_VERIFICATION.
  r = curl_cli({n.https_url(TlsSite::Valid)});  // the system's CAs do not know ours
  CHECK(r.code == 60);
  r = curl_cli({"--cacert", p.ca_cert, n.https_url(TlsSite::Expired)});
  CHECK(r.code == 60);
  CHECK_THAT(r.err, Catch::Contains("expired"));
  r = curl_cli({"--cacert", p.ca_cert, n.https_url(TlsSite::OtherName)});
  CHECK(r.code == 60);
  CHECK_THAT(r.err, Catch::Contains("subject name"));
  r = curl_cli({"--insecure", n.https_url(TlsSite::Expired, "/target")});
  CHECK(r.out == "target ok\n");

  // The chained site sends its intermediate; the expiring site its own 3-day leaf. (As
  // s_client prints dates: "Dec  5 16:28:26 2026 GMT".)
  auto openssl_date = [](std::int64_t epoch) {
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t t = static_cast<std::time_t>(epoch);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %2d %02d:%02d:%02d %d GMT", kMonths[tm.tm_mon], tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
    return std::string(buf);
  };
  auto served = [&](TlsSite site) {
    return test::run({"/usr/bin/openssl", "s_client", "-connect",
                      "127.0.0.1:" + std::to_string(n.https_port(site)), "-showcerts"})
        .out;
  };
  std::string chain = served(TlsSite::Chained);
  CHECK_THAT(chain, Catch::Contains("1 s:CN = netmond test intermediate"));
  CHECK_THAT(chain, Catch::Contains("NotAfter: " + openssl_date(p.chained.not_after)) &&
                        Catch::Contains("NotAfter: " + openssl_date(p.chained.chain_not_after)));
  CHECK_THAT(served(TlsSite::Expiring),
             Catch::Contains("0 s:CN = localhost") &&
                 Catch::Contains("NotAfter: " + openssl_date(p.expiring.not_after)));
}

TEST_CASE("nginx fixture: two at once, each on ports of its own", "[nginx-fixture]") {
  const int threads = threads_now();
  pid_t first_pid = -1;
  std::uint16_t port = 0;
  {
    Nginx a;
    Nginx b;
    first_pid = a.pid();
    port = a.http_port();
    CHECK(a.http_port() != b.http_port());
    CHECK(a.https_port(TlsSite::Valid) != b.https_port(TlsSite::Valid));
    CHECK(curl_cli({b.http_url("/target")}).out == "target ok\n");
  }
  CHECK(::kill(first_pid, 0) != 0);  // reaped: not even a zombie is left
  CHECK(curl_cli({"http://127.0.0.1:" + std::to_string(port) + "/"}).code == 7);  // refused
  CHECK(threads_now() == threads);  // the fixture starts no threads in the test process
}

// ---- The probe ----------------------------------------------------------------------------

TEST_CASE("http (nginx): 200 with status, version, body size and timings", "[http]") {
  auto r = run_once(http_spec(nginx().http_url("/")));
  REQUIRE(r);
  INFO(describe(*r));
  CHECK(r->status == Status::Ok);
  CHECK_THAT(r->message, Catch::StartsWith("HTTP 200 in ") && Catch::EndsWith("ms"));
  CHECK(r->latency > 0ns);
  CHECK(r->latency < 2s);
  CHECK(r->details[kStatusCode] == 200);
  CHECK(r->details[kHttpVersion] == "1.1");
  CHECK(r->details[kFinalUrl] == nginx().http_url("/"));
  CHECK(r->details[kRedirects] == 0);
  CHECK(r->details[kBodyBytes] == 14);  // "hello netmond\n"
  CHECK(r->details[kBodyTruncated] == false);
  REQUIRE(r->details[kTimings].is_object());
  for (const char* key : kTimingKeys) {
    INFO(key);
    REQUIRE(r->details[kTimings][key].is_number());
    CHECK(r->details[kTimings][key].get<double>() >= 0);
  }
  CHECK(r->details[kTimings]["total_ms"].get<double>() >=
        r->details[kTimings]["ttfb_ms"].get<double>());
  CHECK(r->details[kTimings]["total_ms"].get<double>() > 0);
  CHECK_FALSE(r->details[kTimings].contains(kTlsTiming));
  CHECK_FALSE(r->details.contains(kTlsVersion));
  CHECK_FALSE(r->details.contains(kCertExpiry));
}

TEST_CASE("http (nginx): the probe lives across runs", "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    auto probe = http_probe(h, http_spec(nginx().http_url("/target")));
    for (int i = 0; i < 3; ++i) {
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      INFO(i << ": " << describe(*r));
      CHECK(r->status == Status::Ok);
      CHECK(r->details[kBodyBytes] == 10);  // "target ok\n"
    }
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("http (nginx): a status outside expect_status is Unexpected", "[http]") {
  SECTION("404 against the default 200-399") {
    auto r = run_once(http_spec(nginx().http_url("/notfound")));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK(r->message == "expected status 200-399, got 404");
    CHECK(r->details[kStatusCode] == 404);
  }
  SECTION("404 when 404 is expected") {
    HttpSpec spec = http_spec(nginx().http_url("/notfound"));
    spec.expect_status = {StatusRange{404, 404}};
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK_THAT(r->message, Catch::StartsWith("HTTP 404 in "));
  }
  SECTION("503 against a list of ranges") {
    HttpSpec spec = http_spec(nginx().http_url("/status/503"));
    spec.expect_status = {StatusRange{200, 200}, StatusRange{301, 302}};
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK(r->message == "expected status 200, 301-302, got 503");
    CHECK(r->details[kStatusCode] == 503);
  }
  SECTION("200 when only 404 is expected") {
    HttpSpec spec = http_spec(nginx().http_url("/"));
    spec.expect_status = {StatusRange{404, 404}};
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK(r->message == "expected status 404, got 200");
  }
}

TEST_CASE("http (nginx): redirects", "[http]") {
  const Nginx& n = nginx();
  SECTION("a relative Location is followed") {
    auto r = run_once(http_spec(n.http_url("/redirect")));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kStatusCode] == 200);
    CHECK(r->details[kRedirects] == 1);
    CHECK(r->details[kFinalUrl] == n.http_url("/target"));
    CHECK(r->details[kBodyBytes] == 10);  // the target's body, not the 302's
  }
  SECTION("two hops") {
    auto r = run_once(http_spec(n.http_url("/redirect2")));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kRedirects] == 2);
    CHECK(r->details[kFinalUrl] == n.http_url("/target"));
  }
  SECTION("an absolute Location is followed") {
    auto r = run_once(http_spec(n.http_url("/abs-redirect")));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kRedirects] == 1);
    CHECK(r->details[kFinalUrl] == n.http_url("/target"));
  }
  SECTION("over HTTPS, the hop stays on HTTPS") {
    auto r = run_once(https_spec(TlsSite::Valid, "/redirect"));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kRedirects] == 1);
    CHECK(r->details[kFinalUrl] == n.https_url(TlsSite::Valid, "/target"));
  }
  SECTION("follow_redirects false: the 302 itself, in the default range") {
    HttpSpec spec = http_spec(n.http_url("/redirect"));
    spec.follow_redirects = false;
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK_THAT(r->message, Catch::StartsWith("HTTP 302 in "));
    CHECK(r->details[kStatusCode] == 302);
    CHECK(r->details[kRedirects] == 0);
    CHECK(r->details[kFinalUrl] == n.http_url("/redirect"));
  }
  SECTION("more hops than max_redirects is BadResponse") {
    HttpSpec spec = http_spec(n.http_url("/redirect2"));
    spec.max_redirects = 1;
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::BadResponse);
    CHECK_THAT(r->message, Catch::Contains("redirect"));
  }
}

TEST_CASE("http (nginx): expect_body and expect_body_absent", "[http]") {
  const Nginx& n = nginx();
  SECTION("a match is Ok") {
    HttpSpec spec = http_spec(n.http_url("/"));
    spec.expect_body = "^hello [a-z]+$";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("no match is Unexpected") {
    HttpSpec spec = http_spec(n.http_url("/"));
    spec.expect_body = "goodbye";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK(r->message == "body did not match /goodbye/");
    CHECK(r->details[kStatusCode] == 200);
  }
  SECTION("an absent pattern that is absent is Ok") {
    HttpSpec spec = http_spec(n.http_url("/"));
    spec.expect_body_absent = "error|exception";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("an absent pattern that is present is Unexpected") {
    HttpSpec spec = http_spec(n.http_url("/"));
    spec.expect_body_absent = "netmond";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK_THAT(r->message, Catch::Contains("/netmond/"));
  }
  SECTION("the body is the redirect target's") {
    HttpSpec spec = http_spec(n.http_url("/redirect"));
    spec.expect_body = "^target ok$";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("a gzipped text is matched as text") {
    HttpSpec spec = http_spec(n.http_url("/text"));
    spec.expect_body = "(?s)^line 0 of the netmond text\\n.*the end\\n$";
    spec.user_agent = "netmond-gzip-test";  // to find this request in the access log
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kBodyBytes] == Nginx::kTextBytes);  // decoded
    // It did come gzipped: otherwise this would test nothing.
    CHECK_THAT(access_log_with(n, "netmond-gzip-test"),
               Catch::Contains("\"gzip\" \"netmond-gzip-test\""));
  }
}

// `(.|\n)*` is the classic way to span lines without (?s); over a 64 KiB body it backtracks
// once per byte, which PCRE2's JIT runs out of stack for at its default 32 KiB.
TEST_CASE("http (nginx): a backtracking pattern over a 64 KiB body still matches", "[http]") {
  HttpSpec spec = http_spec(nginx().http_url("/text"));
  spec.expect_body = "line 0 of the netmond text\\n(.|\\n)*the end\\n$";
  auto r = run_once(spec);
  REQUIRE(r);
  INFO(describe(*r));
  CHECK(r->status == Status::Ok);
}

TEST_CASE("http (nginx): headers and user_agent reach the server", "[http]") {
  const Nginx& n = nginx();
  SECTION("custom") {
    HttpSpec spec = http_spec(n.http_url("/headers"));
    spec.headers = {{"X-Netmond", "probe-42"}, {"Accept", "text/plain"}};
    spec.user_agent = "netmond-test/1.0";
    // /headers echoes them; the body expectation is the only way to see the echo.
    spec.expect_body = "^x-netmond=probe-42\nuser-agent=netmond-test/1\\.0\n$";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("the default user agent") {
    HttpSpec spec = http_spec(n.http_url("/headers"));
    spec.expect_body = "^x-netmond=\nuser-agent=netmond/\\S+\n$";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
}

TEST_CASE("http (nginx): POST and HEAD", "[http]") {
  const Nginx& n = nginx();
  SECTION("POST sends its body") {
    HttpSpec spec = http_spec(n.http_url("/post"));
    spec.method = "POST";
    spec.body = "a=1&b=2";
    spec.expect_body = "^method=POST length=7\n$";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("POST with an empty body") {
    HttpSpec spec = http_spec(n.http_url("/post"));
    spec.method = "POST";
    spec.expect_body = "^method=POST length=0\n$";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("HEAD gets no body") {
    HttpSpec spec = http_spec(n.http_url("/"));
    spec.method = "HEAD";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kStatusCode] == 200);
    CHECK(r->details[kBodyBytes] == 0);
    CHECK_THAT(access_log_with(n, "\"HEAD / HTTP/1.1\" 200"),
               Catch::Contains("\"HEAD / HTTP/1.1\" 200"));
  }
}

TEST_CASE("http (nginx): max_body_bytes cuts a large body", "[http]") {
  const Nginx& n = nginx();
  SECTION("a small limit") {
    HttpSpec spec = http_spec(n.http_url("/big"));
    spec.max_body_bytes = 64 * 1024;
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kBodyBytes] == 64 * 1024);
    CHECK(r->details[kBodyTruncated] == true);
  }
  SECTION("the default limit (1 MiB) on 4 MiB") {
    auto r = run_once(http_spec(n.http_url("/big")));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kBodyBytes] == kHttpDefaultMaxBody);
    CHECK(r->details[kBodyTruncated] == true);
  }
  SECTION("a limit above the size reads it all") {
    HttpSpec spec = http_spec(n.http_url("/big"));
    spec.max_body_bytes = 2 * Nginx::kBigBytes;
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kBodyBytes] == Nginx::kBigBytes);
    CHECK(r->details[kBodyTruncated] == false);
  }
}

TEST_CASE("http (nginx): IPv6 ::1", "[http]") {
  SECTION("http") {
    auto r = run_once(http_spec(nginx().http6_url("/target")), "::1");
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kFinalUrl] == nginx().http6_url("/target"));
  }
  SECTION("http, with a relative redirect") {
    auto r = run_once(http_spec(nginx().http6_url("/redirect")), "::1");
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kFinalUrl] == nginx().http6_url("/target"));
  }
  SECTION("https, verified against the IP in the certificate") {
    HttpsSpec spec;
    spec.url = nginx().https6_url("/");
    spec.ca_file = pki().ca_cert;
    auto r = run_once(spec, "::1");
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
}

// ---- TLS ----------------------------------------------------------------------------------

TEST_CASE("https (nginx): a valid certificate, its expiry and the TLS version", "[http]") {
  auto r = run_once(https_spec(TlsSite::Valid));
  REQUIRE(r);
  INFO(describe(*r));
  CHECK(r->status == Status::Ok);
  CHECK_THAT(r->message, Catch::StartsWith("HTTP 200 in "));
  CHECK_THAT(r->details[kTlsVersion].get<std::string>(), Catch::StartsWith("TLSv1."));
  CHECK(r->details[kCertExpiry] == test::rfc3339(pki().valid.not_after));
  CHECK(r->details[kCertChainExpiry] == test::rfc3339(pki().valid.chain_not_after));
  REQUIRE(r->details[kTimings][kTlsTiming].is_number());
  CHECK(r->details[kTimings][kTlsTiming].get<double>() > 0);
}

TEST_CASE("https (nginx): leaf expiry and earliest chain expiry differ", "[http]") {
  auto r = run_once(https_spec(TlsSite::Chained));
  REQUIRE(r);
  INFO(describe(*r));
  CHECK(r->status == Status::Ok);
  CHECK(r->details[kCertExpiry] == test::rfc3339(pki().chained.not_after));
  CHECK(r->details[kCertChainExpiry] == test::rfc3339(pki().chained.chain_not_after));
}

TEST_CASE("https (nginx): keepalive reuses the TLS connection, and still knows the certificate",
          "[http]") {
  LoopFixture fixture;
  {
    ProbeHarness h(fixture.loop());
    HttpsSpec spec = https_spec(TlsSite::Chained, "/target");
    spec.keepalive = true;
    spec.user_agent = "netmond-keepalive-test";  // to find these requests in the access log
    auto probe = http_probe(h, spec);
    for (int i = 0; i < 2; ++i) {
      auto r = test::run_probe(fixture, *probe);
      REQUIRE(r);
      INFO(i << ": " << describe(*r));
      CHECK(r->status == Status::Ok);
      CHECK(r->details[kCertExpiry] == test::rfc3339(pki().chained.not_after));
      CHECK(r->details[kCertChainExpiry] == test::rfc3339(pki().chained.chain_not_after));
    }
  }
  REQUIRE(fixture.finish() == 0);
  // nginx saw two requests on one connection. It logs a request after sending its response,
  // so under load the second line may come a moment after the probe's result.
  std::string log;
  std::vector<std::string> connections;
  for (int wait = 0; wait < 40 && connections.size() < 2; ++wait) {
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = nginx().access_log();
    connections.clear();
    for (std::size_t at = 0;
         (at = log.find("\"netmond-keepalive-test\" ", at)) != std::string::npos;) {
      auto eol = log.find('\n', at);
      connections.push_back(log.substr(at, eol - at));
      at = eol;
    }
  }
  INFO(log);
  REQUIRE(connections.size() == 2);
  auto serial = [](const std::string& line) {
    auto from = line.find("connection=");
    return line.substr(from, line.find(' ', from) - from);
  };
  CHECK(serial(connections[0]) == serial(connections[1]));
  CHECK_THAT(connections[1], Catch::EndsWith(" request=2"));
}

TEST_CASE("https (nginx): certificate failures are TlsError", "[http]") {
  SECTION("our CA is not among the system's") {
    HttpsSpec spec = https_spec(TlsSite::Valid);
    spec.ca_file = "";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::TlsError);
    CHECK_THAT(r->message, Catch::StartsWith("TLS: "));
  }
  SECTION("expired") {
    auto r = run_once(https_spec(TlsSite::Expired));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::TlsError);
    CHECK_THAT(r->message, Catch::StartsWith("TLS: ") && Catch::Contains("expired"));
  }
  SECTION("for another name") {
    auto r = run_once(https_spec(TlsSite::OtherName));
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::TlsError);
    CHECK_THAT(r->message, Catch::StartsWith("TLS: "));
  }
  SECTION("a ca_file that does not exist") {
    HttpsSpec spec = https_spec(TlsSite::Valid);
    spec.ca_file = "/nonexistent/ca.pem";
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status != Status::Ok);
  }
}

TEST_CASE("https (nginx): tls_verify false accepts what verification rejects", "[http]") {
  for (TlsSite site : {TlsSite::Expired, TlsSite::OtherName}) {
    HttpsSpec spec = https_spec(site);
    spec.ca_file = "";
    spec.tls_verify = false;
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(static_cast<int>(site) << ": " << describe(*r));
    CHECK(r->status == Status::Ok);
    CHECK(r->details[kStatusCode] == 200);
  }
}

TEST_CASE("https (nginx): cert_expiry_min", "[http]") {
  SECTION("a certificate ending in 3 days, 14 days required") {
    HttpsSpec spec = https_spec(TlsSite::Expiring);
    spec.cert_expiry_min = std::chrono::hours(14 * 24);
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK_THAT(r->message,
               Catch::StartsWith("certificate expires in ") && Catch::Contains("(minimum 14d)"));
    CHECK(r->details[kCertExpiry] == test::rfc3339(pki().expiring.not_after));
  }
  SECTION("a certificate ending in 3 days, 1 day required") {
    HttpsSpec spec = https_spec(TlsSite::Expiring);
    spec.cert_expiry_min = std::chrono::hours(24);
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
  SECTION("a valid leaf whose intermediate ends in 30 days, 60 days required") {
    // The chain's earliest expiry decides: the leaf alone has a year left.
    HttpsSpec spec = https_spec(TlsSite::Chained);
    spec.cert_expiry_min = std::chrono::hours(60 * 24);
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Unexpected);
    CHECK_THAT(r->message, Catch::StartsWith("certificate 'CN = netmond test intermediate' in "
                                             "the chain expires in ") &&
                               Catch::EndsWith("(minimum 60d)"));
  }
  SECTION("a certificate with two years left, 14 days required") {
    HttpsSpec spec = https_spec(TlsSite::Valid);
    spec.cert_expiry_min = std::chrono::hours(14 * 24);
    auto r = run_once(spec);
    REQUIRE(r);
    INFO(describe(*r));
    CHECK(r->status == Status::Ok);
  }
}

// ---- Many at once -------------------------------------------------------------------------

TEST_CASE("http (nginx): 200 probes at once on one loop, in one thread", "[http]") {
  const Nginx& n = nginx();
  constexpr int kProbes = 200;
  // The test process's own threads (the main one, and support/hang_report.cpp's watcher):
  // the probes must add none.
  const int baseline = threads_now();
  LoopFixture fixture;
  // Sampled after every poll of the loop while the transfers run. Declared before the
  // block: the handle must outlive its uv_close until finish() runs the close.
  struct Sampler {
    int max_threads = 0;
    int samples = 0;
  } sampler;
  uv_check_t check;
  uv_check_init(fixture.loop(), &check);
  check.data = &sampler;
  uv_check_start(&check, [](uv_check_t* c) {
    auto* s = static_cast<Sampler*>(c->data);
    s->max_threads = std::max(s->max_threads, threads_now());
    ++s->samples;
  });
  {
    ProbeHarness h(fixture.loop());
    std::vector<std::unique_ptr<Probe>> probes;
    for (int i = 0; i < kProbes; ++i) {
      // Half plain, half TLS: both paths run concurrently on the one multi handle.
      if (i % 2 == 0) {
        probes.push_back(http_probe(h, http_spec(n.http_url("/target"))));
      } else {
        probes.push_back(http_probe(h, https_spec(TlsSite::Valid, "/target")));
      }
    }

    std::vector<std::optional<Result>> results(kProbes);
    int done = 0;
    for (int i = 0; i < kProbes; ++i) {
      probes[i]->start(10s, [&results, &done, i](Result r) {
        results[i] = std::move(r);
        ++done;
      });
    }
    sampler.max_threads = std::max(sampler.max_threads, threads_now());
    bool all = fixture.run_until([&] { return done == kProbes; }, 20s);
    if (!all)
      for (auto& p : probes) p->cancel();

    CHECK(all);
    CHECK(done == kProbes);
    int ok = 0;
    for (int i = 0; i < kProbes; ++i) {
      if (results[i] && results[i]->status == Status::Ok) {
        ++ok;
      } else if (results[i]) {
        UNSCOPED_INFO("probe " << i << ": " << describe(*results[i]));
      } else {
        UNSCOPED_INFO("probe " << i << ": no result");
      }
    }
    CHECK(ok == kProbes);
    CHECK(h.curl.transfers() == 0);
    CHECK(sampler.samples > 1);
    CHECK(sampler.max_threads == baseline);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  REQUIRE(fixture.finish() == 0);
}
