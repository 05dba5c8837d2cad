// http, https: one HTTP(S) request per run on the daemon's CurlMulti, with assertions on
// the status, the body and the TLS certificate, and curl's phase timings.
//
// A run: resolve the URL's host with netmond's Resolver (c-ares) -> hand libcurl the
// address with CURLOPT_CONNECT_TO, so libcurl never resolves a name itself (its threaded
// resolver would put a thread in the daemon) -> one transfer on a fresh connection (unless
// keepalive) -> redirects are followed by netmond, one hop at a time, each hop resolved the
// same way -> the status, body and certificate expectations are judged.
//
//   HTTP 200, expectations met                -> Ok, "HTTP 200 in 23.4ms"
//   status outside expect_status              -> Unexpected, "expected status 200-399, got 503"
//   body (first max_body_bytes) does not match -> Unexpected, "body did not match /ok/"
//   certificate expires within cert_expiry_min -> Unexpected,
//                                                "certificate expires in 3d (minimum 14d)"
//   certificate/handshake failure             -> TlsError, "TLS: certificate has expired"
//   refused, unreachable, resolve failure      -> Refused, Unreachable, ResolveFailed
//   malformed HTTP, too many redirects, ...    -> BadResponse
//   netmond's deadline                         -> Timeout, "timeout after 5s (connected, no
//                                                 response)"
#pragma once

#include "params.h"
#include "probe.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netmond {

// An inclusive range of HTTP status codes: 200-299, or one code as 404-404.
struct StatusRange {
  int first = 200;
  int last = 399;
  bool operator==(const StatusRange&) const = default;
  bool contains(int code) const { return code >= first && code <= last; }
};

inline constexpr std::size_t kHttpDefaultMaxBody = 1024 * 1024;

struct HttpSpec {
  static constexpr std::string_view kType = "http";
  std::string url;  // "" = from the server's address (a URL as is, a host as scheme://host/)
  std::string method = "GET";                                            // GET, HEAD, POST
  std::string body;                                                      // POST only
  std::vector<std::pair<std::string, std::string>> headers;              // in config order
  std::vector<StatusRange> expect_status = std::vector<StatusRange>(1);  // 200-399
  std::string expect_body;         // PCRE2 pattern that must match; "" = none
  std::string expect_body_absent;  // PCRE2 pattern that must not match; "" = none
  bool follow_redirects = true;
  unsigned max_redirects = 5;
  bool tls_verify = true;
  std::string ca_file;                           // "" = the system's CA bundle
  std::chrono::milliseconds cert_expiry_min{0};  // 0 = no expiry check
  std::size_t max_body_bytes = kHttpDefaultMaxBody;
  std::string user_agent;  // "" = netmond/<version>
  bool keepalive = false;  // reuse the connection across runs
  // The scheme a bare host gets: "http" for type http, "https" for https.
  std::string_view default_scheme = "http";
  bool operator==(const HttpSpec&) const = default;
  std::string name_suffix() const { return std::string(default_scheme); }  // "http"
  // Why the server's `address` cannot give this check its URL ("" when it can).
  std::string address_problem(const std::string& address) const;
};

// Type https: the same keys; a bare host becomes https://host/.
struct HttpsSpec : HttpSpec {
  static constexpr std::string_view kType = "https";
  HttpsSpec() { default_scheme = "https"; }
  bool operator==(const HttpsSpec&) const = default;
};

bool parse(Params& p, HttpSpec* out);
bool parse(Params& p, HttpsSpec* out);

// The URL a check requests: spec.url, else the server's address when it is a URL, else
// default_scheme://host/ (IPv6 literals bracketed).
std::string effective_url(const Endpoint& e, const HttpSpec& s);

std::string describe_target(const Endpoint& e, const HttpSpec& s);  // the URL
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const HttpSpec& s);

// ---- Pure helpers, tested without I/O ---------------------------------------------------------

// "200", "300-399" -> StatusRange; false with *error on anything else.
bool parse_status_range(std::string_view text, StatusRange* out, std::string* error);
// "200-399", "200, 301-302"
std::string format_status_ranges(const std::vector<StatusRange>& ranges);
// A certificate date as OpenSSL prints it in CURLINFO_CERTINFO ("Jan  2 15:04:05 2027 GMT"),
// as seconds since the epoch; false when it is not one.
bool parse_cert_time(std::string_view text, std::int64_t* out);

}  // namespace netmond
