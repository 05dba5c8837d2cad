// The http and https check types as the configuration writes them, and the pure helpers
// behind them (status ranges, certificate dates, URLs, body patterns). No I/O here: the
// probe against real nginx is in http_nginx_test.cpp, against faulty peers in
// http_faults_test.cpp.
#include "config.h"
#include "http.h"
#include "regex.h"
#include "support/config_text.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;

namespace {

using Loaded = test::ConfigText;
Loaded load(std::string yaml) { return test::parse_config_text(std::move(yaml)); }

const HttpSpec& http_of(const CheckConfig& c) {
  if (const auto* s = std::get_if<HttpSpec>(&c.spec)) return *s;
  return std::get<HttpsSpec>(c.spec);
}

}  // namespace

TEST_CASE("http: status ranges parse, and bad ones say why", "[http][config]") {
  StatusRange r;
  std::string error;
  REQUIRE(parse_status_range("200", &r, &error));
  CHECK(r == StatusRange{200, 200});
  REQUIRE(parse_status_range("300-399", &r, &error));
  CHECK(r == StatusRange{300, 399});
  CHECK(r.contains(300));
  CHECK(r.contains(399));
  CHECK_FALSE(r.contains(400));
  CHECK_FALSE(parse_status_range("2xx", &r, &error));
  CHECK(error == "'2xx' is not a status code or a range such as 200-299");
  CHECK_FALSE(parse_status_range("99", &r, &error));
  CHECK(error == "'99': HTTP status codes are 100 to 599");
  CHECK_FALSE(parse_status_range("200-600", &r, &error));
  CHECK_FALSE(parse_status_range("399-300", &r, &error));
  CHECK(error == "'399-300': the range is empty (first code above the last)");
  CHECK_FALSE(parse_status_range("200-", &r, &error));
  CHECK_FALSE(parse_status_range("", &r, &error));
  CHECK(format_status_ranges({{200, 399}}) == "200-399");
  CHECK(format_status_ranges({{200, 200}, {301, 302}}) == "200, 301-302");
}

TEST_CASE("http: certificate dates as OpenSSL prints them", "[http]") {
  std::int64_t t = 0;
  REQUIRE(parse_cert_time("Jan  2 15:04:05 2027 GMT", &t));
  CHECK(t == 1798902245);
  REQUIRE(parse_cert_time("Dec 31 23:59:59 2049 GMT", &t));
  CHECK(t == 2524607999);
  CHECK_FALSE(parse_cert_time("2027-01-02T15:04:05Z", &t));
  CHECK_FALSE(parse_cert_time("Jan  2 15:04:05 2027 GMT trailing", &t));
  CHECK_FALSE(parse_cert_time("", &t));
}

TEST_CASE("http: the URL comes from url, else the address", "[http][config]") {
  Endpoint e;
  e.host = "example.com";
  e.address = "example.com";
  HttpSpec http;
  HttpsSpec https;
  CHECK(effective_url(e, http) == "http://example.com/");
  CHECK(effective_url(e, https) == "https://example.com/");
  e.host = "::1";
  e.address = "::1";
  CHECK(effective_url(e, https) == "https://[::1]/");
  e.host = "example.com";
  e.address = "https://example.com/health?x=1";
  CHECK(effective_url(e, http) == "https://example.com/health?x=1");  // a URL is used as is
  http.url = "http://127.0.0.1:8080/status";
  CHECK(effective_url(e, http) == "http://127.0.0.1:8080/status");
}

TEST_CASE("http: body patterns are PCRE2, with errors that point at the problem", "[http]") {
  std::string error;
  auto ok = Regex::compile("hello\\s+net(mond)?", &error);
  REQUIRE(ok);
  CHECK(ok->search("say hello   netmond!", &error) == Regex::Match::Found);
  CHECK(ok->search("hello world", &error) == Regex::Match::NotFound);
  CHECK_FALSE(Regex::compile("(unclosed", &error));
  CHECK(error == "missing closing parenthesis at offset 9");
  // A pathological pattern on a large subject stops at the match limit instead of hanging.
  auto evil = Regex::compile("(a+)+$", &error);
  REQUIRE(evil);
  std::string subject(64, 'a');
  subject += 'b';
  CHECK(evil->search(subject, &error) == Regex::Match::Error);
  CHECK(error == "match limit exceeded");
}

TEST_CASE("http: the seed's two HTTP checks load", "[http][config]") {
  Loaded l = load(R"(
servers:
  - address: http://example.com
    interval: 120
    services: [HTTP]
  - address: https://example.com
    interval: 180
    services: [https]
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  REQUIRE(l.config->checks.size() == 2);
  const CheckConfig& a = l.config->checks[0];
  CHECK(a.name == "http://example.com/http");
  CHECK(a.type() == "http");
  CHECK(a.endpoint.host == "example.com");
  CHECK(a.target() == "http://example.com");
  CHECK(http_of(a) == HttpSpec{});
  const CheckConfig& b = l.config->checks[1];
  CHECK(b.name == "https://example.com/https");
  CHECK(b.type() == "https");
  CHECK(b.target() == "https://example.com");
}

TEST_CASE("http: every key, read into the spec", "[http][config]") {
  Loaded l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - type: https
        url: https://127.0.0.1:8443/health
        method: post
        body: '{"ping": 1}'
        headers: {X-Token: abc, Accept: application/json}
        expect_status: [200, "300-302"]
        expect_body: '"ok":\s*true'
        expect_body_absent: error
        follow_redirects: false
        max_redirects: 2
        tls_verify: false
        cert_expiry_min: 14d
        max_body_bytes: 4096
        user_agent: probe/1
        keepalive: true
)");
  INFO(l.errors.size());
  REQUIRE(l.errors.empty());
  const HttpSpec& s = http_of(l.config->checks.at(0));
  CHECK(s.url == "https://127.0.0.1:8443/health");
  CHECK(s.method == "POST");
  CHECK(s.body == R"({"ping": 1})");
  CHECK(s.headers == std::vector<std::pair<std::string, std::string>>{
                         {"X-Token", "abc"}, {"Accept", "application/json"}});
  CHECK(s.expect_status == std::vector<StatusRange>{{200, 200}, {300, 302}});
  CHECK(s.expect_body == R"("ok":\s*true)");
  CHECK(s.expect_body_absent == "error");
  CHECK_FALSE(s.follow_redirects);
  CHECK(s.max_redirects == 2);
  CHECK_FALSE(s.tls_verify);
  CHECK(s.cert_expiry_min == 14 * 24h);
  CHECK(s.max_body_bytes == 4096);
  CHECK(s.user_agent == "probe/1");
  CHECK(s.keepalive);
  CHECK(l.config->checks[0].name == "127.0.0.1/https");
  CHECK(l.config->checks[0].target() == "https://127.0.0.1:8443/health");
}

TEST_CASE("http: defaults", "[http][config]") {
  HttpSpec s;
  CHECK(s.method == "GET");
  CHECK(s.expect_status == std::vector<StatusRange>{{200, 399}});
  CHECK(s.follow_redirects);
  CHECK(s.max_redirects == 5);
  CHECK(s.tls_verify);
  CHECK(s.cert_expiry_min == 0ms);
  CHECK(s.max_body_bytes == 1024 * 1024);
  CHECK_FALSE(s.keepalive);
}

TEST_CASE("http: bad values name file:line:column and the key", "[http][config]") {
  Loaded l = load(R"(
servers:
  - address: 127.0.0.1
    services:
      - type: http
        url: ftp://127.0.0.1/
        method: PUT
        expect_status: [200, "5xx", 700]
        expect_body: "(unclosed"
        max_redirects: 99
        max_body_bytes: -1
        cert_expiry_min: forever
        ca_file: /nonexistent/ca.pem
        headers: {"Bad Name": x, X-Ok: "a\r\nInjected: 1"}
      - {type: http, body: x}
  - address: gopher://127.0.0.1/
    services: [http]
)");
  CHECK_FALSE(l.config);
  CHECK(l.errors == std::vector<std::string>{
                        "t.yaml:5:14: servers[0].services[0].url: 'ftp://127.0.0.1/' is not an "
                        "http:// or https:// URL",
                        "t.yaml:6:17: servers[0].services[0].method: 'put' is not one of: get, "
                        "head, post",
                        "t.yaml:7:30: servers[0].services[0].expect_status[1]: '5xx' is not a "
                        "status code or a range such as 200-299",
                        "t.yaml:7:37: servers[0].services[0].expect_status[2]: '700': HTTP "
                        "status codes are 100 to 599",
                        "t.yaml:8:22: servers[0].services[0].expect_body: bad regular expression "
                        "/(unclosed/: missing closing parenthesis at offset 9",
                        "t.yaml:9:24: servers[0].services[0].max_redirects: 99 is out of range "
                        "(0..50)",
                        "t.yaml:10:25: servers[0].services[0].max_body_bytes: expected a whole "
                        "number, got '-1'",
                        "t.yaml:11:26: servers[0].services[0].cert_expiry_min: bad duration "
                        "'forever' (use seconds or a number with ms, s, m, h or d: 250ms, 30s, "
                        "5m, 1h, 14d; at most 3650d)",
                        "t.yaml:12:18: servers[0].services[0].ca_file: cannot read "
                        "'/nonexistent/ca.pem': No such file or directory",
                        "t.yaml:13:19: servers[0].services[0].headers: 'Bad Name' is not a valid "
                        "header name",
                        "t.yaml:13:40: servers[0].services[0].headers.X-Ok: a header value cannot "
                        "contain a line break",
                        "t.yaml:14:28: servers[0].services[1].body: a body is only sent with "
                        "method: POST",
                        "t.yaml:16:16: servers[1].services[0]: address 'gopher://127.0.0.1/': "
                        "'gopher://127.0.0.1/' is not an http:// or https:// URL; give the check "
                        "a url",
                    });
}
