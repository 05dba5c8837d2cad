#include "http.h"

#include "base/duration.h"
#include "curl_multi.h"
#include "netmond/version.h"
#include "network_probe.h"
#include "regex.h"
#include "resolver.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>
#include <utility>

namespace netmond {

namespace {

constexpr std::size_t kMaxBodyLimit = 256 * 1024 * 1024;
constexpr unsigned kMaxRedirectsLimit = 50;
constexpr auto kMaxCertExpiryMin = std::chrono::hours(24 * 3650);

// ---- URLs (parsed by libcurl's URL API, never by hand) ------------------------------------

struct Url {
  std::string text;    // normalised, as libcurl will request it
  std::string scheme;  // "http", "https", ...
  std::string host;    // without IPv6 brackets
  std::uint16_t port = 0;
};

struct CurlUrlDeleter {
  void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};

std::string url_part(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, flags) != CURLUE_OK || value == nullptr) return "";
  std::string s(value);
  curl_free(value);
  return s;
}

std::optional<Url> parse_url(const std::string& text, std::string* error) {
  std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
  if (!u) {
    *error = "out of memory";
    return std::nullopt;
  }
  if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK) {
    *error = fmt::format("'{}' is not a valid URL ({})", text, curl_url_strerror(rc));
    return std::nullopt;
  }
  Url url;
  url.text = url_part(u.get(), CURLUPART_URL);
  url.scheme = url_part(u.get(), CURLUPART_SCHEME);
  url.host = url_part(u.get(), CURLUPART_HOST);
  if (url.host.size() > 2 && url.host.front() == '[')
    url.host = url.host.substr(1, url.host.size() - 2);
  if (url.scheme != "http" && url.scheme != "https") {
    *error = fmt::format("'{}' is not an http:// or https:// URL", text);
    return std::nullopt;
  }
  if (url.host.empty()) {
    *error = fmt::format("no host in '{}'", text);
    return std::nullopt;
  }
  std::string port = url_part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
    *error = fmt::format("bad port in '{}'", text);
    return std::nullopt;
  }
  url.port = static_cast<std::uint16_t>(p);
  return url;
}

bool valid_header_name(std::string_view name) {
  // RFC 9110 token characters.
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c);
  });
}

std::string rfc3339(std::int64_t epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "3d", "2d 23h", "5h 10m", "42m", "30s": how long until (or since) a certificate date.
std::string format_span(std::int64_t seconds) {
  seconds = std::abs(seconds);
  const std::int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60;
  if (d > 0) return h > 0 ? fmt::format("{}d {}h", d, h) : fmt::format("{}d", d);
  if (h > 0) return m > 0 ? fmt::format("{}h {}m", h, m) : fmt::format("{}h", h);
  if (m > 0) return fmt::format("{}m", m);
  return fmt::format("{}s", seconds);
}

std::int64_t now_epoch() { return static_cast<std::int64_t>(std::time(nullptr)); }

// ---- Parameters --------------------------------------------------------------------------

void parse_headers(Params& p, HttpSpec* out) {
  const YAML::Node* n = p.node("headers");
  if (n == nullptr) return;
  if (!n->IsMap()) {
    p.error("headers", "expected a map of header names to values, e.g. {X-Token: abc}");
    return;
  }
  for (auto it = n->begin(); it != n->end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar() || !valid_header_name(key.Scalar())) {
      p.error_at(key, "headers", "",
                 fmt::format("'{}' is not a valid header name",
                             key.IsScalar() ? key.Scalar() : std::string("(not a string)")));
      continue;
    }
    const std::string suffix = "." + key.Scalar();
    if (!value.IsScalar()) {
      p.error_at(value, "headers", suffix, "expected a header value (a string)");
      continue;
    }
    // A line break would let a value inject headers of its own.
    if (value.Scalar().find_first_of("\r\n") != std::string::npos) {
      p.error_at(value, "headers", suffix, "a header value cannot contain a line break");
      continue;
    }
    out->headers.emplace_back(key.Scalar(), value.Scalar());
  }
}

void parse_expect_status(Params& p, HttpSpec* out) {
  const YAML::Node* n = p.node("expect_status");
  if (n == nullptr) return;
  std::vector<YAML::Node> items;
  if (n->IsScalar()) {
    items.push_back(*n);
  } else if (n->IsSequence() && n->size() > 0) {
    for (const auto& item : *n) items.push_back(item);
  } else {
    p.error("expect_status", "expected a status code, a range such as \"200-299\", or a list");
    return;
  }
  std::vector<StatusRange> ranges;
  for (std::size_t i = 0; i < items.size(); ++i) {
    StatusRange r;
    std::string error;
    const std::string suffix = n->IsSequence() ? fmt::format("[{}]", i) : "";
    if (!items[i].IsScalar()) {
      p.error_at(items[i], "expect_status", suffix, "expected a status code or a range");
    } else if (!parse_status_range(items[i].Scalar(), &r, &error)) {
      p.error_at(items[i], "expect_status", suffix, error);
    } else {
      ranges.push_back(r);
    }
  }
  if (ranges.size() == items.size()) out->expect_status = std::move(ranges);
}

void parse_regex(Params& p, std::string_view key, std::string* out) {
  std::string pattern;
  if (!p.get(key, &pattern)) return;
  std::string error;
  if (pattern.empty())
    p.error(key, "the pattern is empty");
  else if (!Regex::compile(pattern, &error))
    p.error(key, fmt::format("bad regular expression /{}/: {}", pattern, error));
  else
    *out = std::move(pattern);
}

}  // namespace

bool parse_status_range(std::string_view text, StatusRange* out, std::string* error) {
  auto number = [](std::string_view t, int* v) {
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), *v);
    return ec == std::errc() && end == t.data() + t.size() && !t.empty();
  };
  int first = 0, last = 0;
  auto dash = text.find('-');
  bool ok = dash == std::string_view::npos
                ? number(text, &first) && (last = first, true)
                : number(text.substr(0, dash), &first) && number(text.substr(dash + 1), &last);
  if (!ok) {
    *error = fmt::format("'{}' is not a status code or a range such as 200-299", text);
    return false;
  }
  if (first < 100 || last > 599 || first > 599 || last < 100) {
    *error = fmt::format("'{}': HTTP status codes are 100 to 599", text);
    return false;
  }
  if (first > last) {
    *error = fmt::format("'{}': the range is empty (first code above the last)", text);
    return false;
  }
  *out = StatusRange{first, last};
  return true;
}

std::string format_status_ranges(const std::vector<StatusRange>& ranges) {
  std::string s;
  for (const auto& r : ranges) {
    if (!s.empty()) s += ", ";
    s += r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
  }
  return s;
}

bool parse_cert_time(std::string_view text, std::int64_t* out) {
  // OpenSSL's ASN1_TIME_print: "Jan  2 15:04:05 2027 GMT".
  std::string s(text);
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%b %d %H:%M:%S %Y GMT", &tm);
  if (end == nullptr || *end != '\0') return false;
  *out = static_cast<std::int64_t>(timegm(&tm));
  return true;
}

static bool parse_common(Params& p, HttpSpec* out) {
  std::string s;
  if (p.get("url", &s)) {
    std::string error;
    if (parse_url(s, &error))
      out->url = s;
    else
      p.error("url", error);
  }
  if (p.get_choice("method", {"get", "head", "post"}, &s)) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out->method = s;
  }
  if (p.get("body", &s)) {
    if (out->method != "POST")
      p.error("body", "a body is only sent with method: POST");
    else
      out->body = s;
  }
  parse_headers(p, out);
  parse_expect_status(p, out);
  parse_regex(p, "expect_body", &out->expect_body);
  parse_regex(p, "expect_body_absent", &out->expect_body_absent);
  if ((!out->expect_body.empty() || !out->expect_body_absent.empty()) && out->method == "HEAD")
    p.error(out->expect_body.empty() ? "expect_body_absent" : "expect_body",
            "a HEAD response has no body to match");
  p.get("follow_redirects", &out->follow_redirects);
  p.get("max_redirects", &out->max_redirects, 0, kMaxRedirectsLimit);
  p.get("tls_verify", &out->tls_verify);
  if (p.get("ca_file", &s)) {
    if (s.empty())
      p.error("ca_file", "ca_file is empty");
    else if (access(s.c_str(), R_OK) != 0)
      p.error("ca_file", fmt::format("cannot read '{}': {}", s, std::strerror(errno)));
    else
      out->ca_file = s;
  }
  p.get_duration("cert_expiry_min", &out->cert_expiry_min, kMaxCertExpiryMin);
  unsigned bytes = 0;
  if (p.get("max_body_bytes", &bytes, 1, kMaxBodyLimit)) out->max_body_bytes = bytes;
  p.get("user_agent", &out->user_agent);
  p.get("keepalive", &out->keepalive);
  return !p.failed();
}

bool parse(Params& p, HttpSpec* out) { return parse_common(p, out); }
bool parse(Params& p, HttpsSpec* out) { return parse_common(p, out); }

std::string effective_url(const Endpoint& e, const HttpSpec& s) {
  if (!s.url.empty()) return s.url;
  if (e.address.find("://") != std::string::npos) return e.address;
  const bool v6 = e.host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}/", s.default_scheme, v6 ? "[" : "", e.host, v6 ? "]" : "");
}

std::string HttpSpec::address_problem(const std::string& address) const {
  if (!url.empty() || address.find("://") == std::string::npos) return "";
  std::string error;
  if (parse_url(address, &error)) return "";
  return error + "; give the check a url";
}

std::string describe_target(const Endpoint& e, const HttpSpec& s) { return effective_url(e, s); }

namespace {

// ---- The probe -----------------------------------------------------------------------------

// One certificate's dates as libcurl's CERTINFO lists them.
struct CertDates {
  std::int64_t leaf_expiry = 0;
  std::int64_t chain_expiry = 0;  // the earliest notAfter among the certificates sent
  std::string chain_subject;      // whose it is
  bool known = false;
};

class HttpProbe final : public NetworkProbe {
 public:
  HttpProbe(ProbeContext& ctx, Endpoint endpoint, std::uint16_t port, HttpSpec spec,
            std::optional<Url> url, std::string url_error)
      : NetworkProbe(ctx, std::move(endpoint), port),
        curl_(ctx.curl),
        resolver_(ctx.resolver),
        spec_(std::move(spec)),
        first_url_(std::move(url)),
        url_error_(std::move(url_error)) {
    std::string unused;
    if (!spec_.expect_body.empty()) expect_body_ = Regex::compile(spec_.expect_body, &unused);
    if (!spec_.expect_body_absent.empty())
      expect_absent_ = Regex::compile(spec_.expect_body_absent, &unused);
  }
  ~HttpProbe() override { close_io(); }

 private:
  void on_target() override;
  Result expire_io() override;
  void close_io() override;
  void add_details(Result& r) const override;

  bool setup(std::string* error);
  void start_hop(const SockAddr& address);
  void on_hop_done(CURLcode rc);
  void follow(long code);
  void fail(CURLcode rc);
  void judge();
  void read_hop_info();
  void read_certificates();
  std::string phase_text() const;
  std::string target_text() const { return hop_address_.with_port(); }

  static size_t on_body(char* data, size_t size, size_t n, void* self) noexcept;
  static size_t on_header(char* data, size_t size, size_t n, void* self) noexcept;
  static int on_sockopt(void* self, curl_socket_t fd, curlsocktype purpose) noexcept;
  static curl_socket_t on_open_socket(void* self, curlsocktype purpose,
                                      curl_sockaddr* address) noexcept;

  bool keep_body() const { return expect_body_ || expect_absent_; }

  CurlMulti& curl_;
  Resolver& resolver_;
  const HttpSpec spec_;
  const std::optional<Url> first_url_;
  const std::string url_error_;
  std::optional<Regex> expect_body_, expect_absent_;
  CurlEasy easy_;
  CurlSlist headers_;
  CurlSlist connect_to_;
  char errbuf_[CURL_ERROR_SIZE] = {};

  // The run in flight.
  Url url_;               // this hop's
  SockAddr hop_address_;  // where this hop connects
  std::string method_;    // this hop's
  unsigned redirects_ = 0;
  bool in_flight_ = false;
  Resolver::Request redirect_request_;
  std::chrono::nanoseconds redirect_resolve_{};
  std::chrono::nanoseconds hop_started_{};
  std::string body_;
  std::size_t body_bytes_ = 0;
  bool truncated_ = false;
  bool headers_done_ = false;
  std::string tls_version_;
  std::string sockopt_error_;
  curl_socket_t socket_ = -1;   // this hop's new connection, while it is in flight
  nlohmann::ordered_json hop_;  // the last hop's facts (status, version, timings)
  CertDates certs_;             // kept across runs: a reused connection shows none
  bool certs_this_run_ = false;
};

void HttpProbe::on_target() {
  if (!first_url_) return finish(Status::LocalError, url_error_);
  url_ = *first_url_;
  method_ = spec_.method;
  redirects_ = 0;
  redirect_resolve_ = {};
  certs_this_run_ = false;
  hop_ = nlohmann::ordered_json::object();
  std::string error;
  if (!setup(&error)) return finish(Status::LocalError, "cannot set up the request: " + error);
  start_hop(target());
}

// The options every hop of every run shares. The handle lives with the probe: with
// keepalive its connection stays in the multi's pool between runs.
bool HttpProbe::setup(std::string* error) {
  if (easy_) return true;
  easy_.reset(curl_easy_init());
  if (!easy_) {
    *error = "curl_easy_init failed";
    return false;
  }
  CURL* e = easy_.get();
  headers_.reset();
  for (const auto& [name, value] : spec_.headers) {
    // "Name;" is libcurl's way to send a header with an empty value.
    if (!slist_append(headers_, value.empty() ? name + ";" : name + ": " + value)) {
      *error = "out of memory";
      return false;
    }
  }
  const std::string agent =
      spec_.user_agent.empty() ? std::string("netmond/") + kVersion : spec_.user_agent;
  bool ok =
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_PRIVATE, this) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpProbe::on_body) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_WRITEDATA, this) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpProbe::on_header) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_HEADERDATA, this) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, &HttpProbe::on_sockopt) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, this) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &HttpProbe::on_open_socket) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this) == CURLE_OK &&
      // netmond follows redirects itself, resolving each hop with its own resolver.
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L) == CURLE_OK &&
      // A monitor probes the target itself: no proxy from http_proxy and friends in
      // the environment (libcurl would also resolve the proxy's name on a thread).
      curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_USERAGENT, agent.c_str()) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get()) == CURLE_OK &&
      // Every encoding libcurl can decode; decoded bytes are what on_body caps.
      curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, spec_.tls_verify ? 1L : 0L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, spec_.tls_verify ? 2L : 0L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_CERTINFO, 1L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, spec_.keepalive ? 0L : 1L) == CURLE_OK &&
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, spec_.keepalive ? 0L : 1L) == CURLE_OK;
  if (ok && !spec_.ca_file.empty())
    ok = curl_easy_setopt(e, CURLOPT_CAINFO, spec_.ca_file.c_str()) == CURLE_OK;
  if (!ok) {
    *error = "libcurl rejected an option";
    easy_.reset();
    return false;
  }
  return true;
}

void HttpProbe::start_hop(const SockAddr& address) {
  CURL* e = easy_.get();
  // The address netmond resolved, for whatever host the URL names: libcurl connects there
  // and still sends the URL's host in Host and SNI and verifies the certificate against it.
  hop_address_ = address;
  hop_address_.set_port(url_.port);
  const std::string ip = address.family() == AF_INET6 ? "[" + address.ip() + "]" : address.ip();
  connect_to_.reset();
  if (!slist_append(connect_to_, fmt::format("::{}:{}", ip, url_.port)))
    return finish(Status::LocalError, "out of memory");
  // The backstop behind netmond's deadline, which normally ends the run first.
  const long backstop_ms = static_cast<long>(timeout().count()) + 1000;
  errbuf_[0] = '\0';
  body_.clear();
  body_bytes_ = 0;
  truncated_ = false;
  headers_done_ = false;
  tls_version_.clear();
  sockopt_error_.clear();
  socket_ = -1;
  curl_easy_setopt(e, CURLOPT_URL, url_.text.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECT_TO, connect_to_.get());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, backstop_ms);
  if (method_ == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (method_ == "POST") {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(spec_.body.size()));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, spec_.body.c_str());
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  hop_started_ = uv::now();
  std::string error;
  in_flight_ = curl_.add(
      e, [this](CURLcode rc) { on_hop_done(rc); }, &error);
  if (!in_flight_) finish(Status::LocalError, "cannot start the transfer: " + error);
}

size_t HttpProbe::on_body(char* data, size_t size, size_t n, void* self) noexcept {
  auto* p = static_cast<HttpProbe*>(self);
  const size_t bytes = size * n;
  const size_t room = p->spec_.max_body_bytes - p->body_bytes_;
  const size_t take = std::min(bytes, room);
  if (p->keep_body()) p->body_.append(data, take);
  p->body_bytes_ += take;
  if (take < bytes) {
    // Enough read: a short count makes libcurl stop with CURLE_WRITE_ERROR, which
    // on_hop_done takes for the end of the body it is.
    p->truncated_ = true;
    return take;
  }
  return bytes;
}

size_t HttpProbe::on_header(char* data, size_t size, size_t n, void* self) noexcept {
  auto* p = static_cast<HttpProbe*>(self);
  const std::string_view line(data, size * n);
  if (p->tls_version_.empty()) {
    // The TLS session exists only while the connection does: read its version now.
    curl_tlssessioninfo* info = nullptr;
    if (curl_easy_getinfo(p->easy_.get(), CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
        info->backend == CURLSSLBACKEND_OPENSSL && info->internals)
      p->tls_version_ = SSL_get_version(static_cast<SSL*>(info->internals));
  }
  if (line == "\r\n" || line == "\n") {
    long code = 0;
    curl_easy_getinfo(p->easy_.get(), CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) p->headers_done_ = true;  // not an interim 1xx
  }
  return size * n;
}

// Opens the connection's socket as libcurl would, keeping why it failed: libcurl reports a
// socket() that failed (out of descriptors, say) as a plain "Couldn't connect to server".
curl_socket_t HttpProbe::on_open_socket(void* self, curlsocktype /*purpose*/,
                                        curl_sockaddr* address) noexcept {
  auto* p = static_cast<HttpProbe*>(self);
  curl_socket_t fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd == CURL_SOCKET_BAD)
    p->sockopt_error_ = "cannot create a socket: " + uv::error_text(-errno);
  return fd;
}

// Binds the source address and the interface netmond was told to use, as the tcp probe
// does, before libcurl connects.
int HttpProbe::on_sockopt(void* self, curl_socket_t fd, curlsocktype /*purpose*/) noexcept {
  auto* p = static_cast<HttpProbe*>(self);
  p->socket_ = fd;
  const Endpoint& e = p->endpoint();
  if (!e.interface.empty() && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, e.interface.c_str(),
                                         static_cast<socklen_t>(e.interface.size())) != 0) {
    p->sockopt_error_ =
        fmt::format("cannot bind to interface '{}': {}", e.interface, std::strerror(errno));
    return CURL_SOCKOPT_ERROR;
  }
  if (p->source()) {
    SockAddr local = *p->source();
    local.set_port(0);
    if (bind(fd, local.get(), local.length) != 0) {
      p->sockopt_error_ =
          fmt::format("cannot bind to source address {}: {}", local.ip(), std::strerror(errno));
      return CURL_SOCKOPT_ERROR;
    }
  }
  return CURL_SOCKOPT_OK;
}

void HttpProbe::on_hop_done(CURLcode rc) {
  in_flight_ = false;
  socket_ = -1;
  if (rc == CURLE_WRITE_ERROR && truncated_) rc = CURLE_OK;  // our cap, not a failure
  read_hop_info();
  read_certificates();
  if (rc != CURLE_OK) return fail(rc);
  long code = 0;
  curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &code);
  if (spec_.follow_redirects &&
      (code == 301 || code == 302 || code == 303 || code == 307 || code == 308)) {
    char* location = nullptr;
    curl_easy_getinfo(easy_.get(), CURLINFO_REDIRECT_URL, &location);
    if (location != nullptr) return follow(code);
  }
  judge();
}

void HttpProbe::follow(long code) {
  char* location = nullptr;
  curl_easy_getinfo(easy_.get(), CURLINFO_REDIRECT_URL, &location);
  const std::string next(location);
  if (redirects_ >= spec_.max_redirects)
    return finish(Status::BadResponse,
                  fmt::format("too many redirects (more than {}; the last to {})",
                              spec_.max_redirects, next));
  std::string error;
  std::optional<Url> url = parse_url(next, &error);
  if (!url) {
    const auto scheme_end = next.find("://");
    if (scheme_end != std::string::npos && !next.starts_with("http"))
      return finish(
          Status::BadResponse,
          fmt::format("HTTP {} redirect to {} not followed: only http and https", code, next));
    return finish(Status::BadResponse,
                  fmt::format("HTTP {} redirect to a bad URL: {}", code, error));
  }
  ++redirects_;
  url_ = std::move(*url);
  // As browsers and libcurl do: 303 turns any method into GET, and so do 301 and 302 for a
  // POST; 307 and 308 repeat the request as it was.
  if ((code == 303 && method_ != "HEAD") || ((code == 301 || code == 302) && method_ == "POST"))
    method_ = "GET";
  // Literals too go through the resolver, which applies ip_version to them.
  const auto started = uv::now();
  redirect_request_ =
      resolver_.resolve(url_.host, endpoint().ip_version, [this, started](ResolveResult r) {
        redirect_resolve_ += uv::now() - started;
        if (!r.ok)
          return finish(Status::ResolveFailed,
                        fmt::format("redirect to {}: cannot resolve '{}': {}", url_.text, url_.host,
                                    r.error));
        const SockAddr* pick = nullptr;
        for (const auto& a : r.addresses)
          if (!source() || a.family() == source()->family()) {
            pick = &a;
            break;
          }
        if (pick == nullptr)
          return finish(Status::LocalError,
                        fmt::format("redirect to {}: '{}' has no address of the source "
                                    "address's family",
                                    url_.text, url_.host));
        start_hop(*pick);
      });
}

std::string curl_error_text(CURLcode rc, const char* errbuf) {
  std::string s = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  while (!s.empty() && (s.back() == '\n' || s.back() == '.')) s.pop_back();
  return s;
}

void HttpProbe::fail(CURLcode rc) {
  CURL* e = easy_.get();
  const std::string why = curl_error_text(rc, errbuf_);
  long os_errno = 0;
  curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      if (!sockopt_error_.empty()) return finish(Status::LocalError, sockopt_error_);
      if (os_errno == ECONNREFUSED)
        return finish(Status::Refused, "connection refused by " + target_text());
      if (os_errno == ENETUNREACH)
        return finish(Status::Unreachable, "network unreachable (" + target_text() + ")");
      if (os_errno == EHOSTUNREACH)
        return finish(Status::Unreachable, "host unreachable (" + target_text() + ")");
      return finish(Status::Unreachable, "cannot connect: " + why);
    case CURLE_ABORTED_BY_CALLBACK:
      if (!sockopt_error_.empty()) return finish(Status::LocalError, sockopt_error_);
      break;
    case CURLE_OPERATION_TIMEDOUT: return finish(Status::Timeout, "timeout (" + phase_text() + ")");
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED: {
      // OpenSSL's own words for a chain that did not verify ("certificate has expired");
      // libcurl's for the rest (hostname mismatch, handshake failures).
      // (The verify result is meaningful only for a failed verification, and reads
      // "unspecified" for libcurl's own hostname check.)
      long verify = X509_V_OK;
      curl_easy_getinfo(e, CURLINFO_SSL_VERIFYRESULT, &verify);
      if (rc == CURLE_PEER_FAILED_VERIFICATION && verify != X509_V_OK &&
          verify != X509_V_ERR_UNSPECIFIED)
        return finish(Status::TlsError,
                      std::string("TLS: ") + X509_verify_cert_error_string(verify));
      std::string text = why;
      for (std::string_view prefix : {"SSL: ", "SSL certificate problem: "})
        if (text.starts_with(prefix)) text.erase(0, prefix.size());
      return finish(Status::TlsError, "TLS: " + text);
    }
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      if (rc != CURLE_UNSUPPORTED_PROTOCOL || why.find("HTTP/0.9") == std::string::npos)
        return finish(Status::LocalError, why);
      return finish(Status::BadResponse, "not an HTTP response (" + why + ")");
    case CURLE_GOT_NOTHING:
      return finish(Status::BadResponse,
                    "empty reply: the server closed the connection without "
                    "a response");
    default: break;
  }
  finish(Status::BadResponse, why);
}

std::string HttpProbe::phase_text() const {
  CURL* e = easy_.get();
  curl_off_t connected = 0, tls = 0, first_byte = 0;
  curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
  curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &tls);
  curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
  // libcurl records the connect time only once TLS is up too: ask the socket itself.
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  const bool tcp_up =
      connected > 0 ||
      (socket_ >= 0 && getpeername(socket_, reinterpret_cast<sockaddr*>(&peer), &len) == 0);
  if (!tcp_up) return "connecting to " + target_text();
  if (url_.scheme == "https" && tls == 0) return "connected, TLS handshake not finished";
  if (first_byte == 0 && !headers_done_) return "connected, no response";
  if (!headers_done_) return "receiving the response headers";
  return fmt::format("receiving the body, {} bytes so far", body_bytes_);
}

Result HttpProbe::expire_io() {
  std::string phase = in_flight_ ? phase_text() : "resolving '" + url_.host + "'";
  if (in_flight_) {
    read_hop_info();
    hop_["timings"].erase("transfer_ms");  // libcurl sets it only when a transfer ends
  }
  Result r = make_result(Status::Timeout,
                         fmt::format("timeout after {} ({})", format_duration(timeout()), phase));
  r.details["phase"] = phase;
  return r;
}

void HttpProbe::close_io() {
  redirect_request_.reset();
  if (in_flight_) {
    // Outside any libcurl callback (deadline, reload, shutdown): safe to remove.
    curl_.remove(easy_.get());
    in_flight_ = false;
    socket_ = -1;
  }
}

void HttpProbe::read_hop_info() {
  CURL* e = easy_.get();
  long code = 0, version = 0, connects = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
  curl_off_t name = 0, connect = 0, tls = 0, first_byte = 0, total = 0;
  curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &name);
  curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
  curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &tls);
  curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
  auto ms = [](curl_off_t us) { return static_cast<double>(us) / 1000.0; };
  hop_ = nlohmann::ordered_json::object();
  if (code != 0) hop_["status_code"] = code;
  switch (version) {
    case CURL_HTTP_VERSION_1_0: hop_["http_version"] = "1.0"; break;
    case CURL_HTTP_VERSION_1_1: hop_["http_version"] = "1.1"; break;
    case CURL_HTTP_VERSION_2_0: hop_["http_version"] = "2"; break;
    case CURL_HTTP_VERSION_3: hop_["http_version"] = "3"; break;
    default: break;
  }
  hop_["new_connection"] = connects > 0;
  // Phases of the last hop, each on its own (curl's figures are cumulative).
  nlohmann::ordered_json t = nlohmann::ordered_json::object();
  if (connect > 0) t["connect_ms"] = ms(connect - name);
  if (tls > 0) t["tls_ms"] = ms(tls - connect);
  if (first_byte > 0) t["ttfb_ms"] = ms(first_byte);
  if (total > 0) t["transfer_ms"] = ms(total);
  hop_["timings"] = std::move(t);
}

// The certificates the server sent, from CURLINFO_CERTINFO: the leaf's notAfter and the
// earliest one in the chain, which are not the same thing when an intermediate expires
// first. A reused connection has no handshake and lists none: the last ones stay.
void HttpProbe::read_certificates() {
  if (url_.scheme != "https") return;
  curl_certinfo* info = nullptr;
  if (curl_easy_getinfo(easy_.get(), CURLINFO_CERTINFO, &info) != CURLE_OK || info == nullptr ||
      info->num_of_certs <= 0)
    return;
  CertDates dates;
  for (int i = 0; i < info->num_of_certs; ++i) {
    std::int64_t expiry = 0;
    std::string subject;
    bool have = false;
    for (curl_slist* f = info->certinfo[i]; f != nullptr; f = f->next) {
      std::string_view field(f->data);
      if (field.starts_with("Expire date:")) have = parse_cert_time(field.substr(12), &expiry);
      if (field.starts_with("Subject:")) subject = field.substr(8);
    }
    if (!have) continue;
    if (i == 0) dates.leaf_expiry = expiry;
    if (!dates.known || expiry < dates.chain_expiry) {
      dates.chain_expiry = expiry;
      dates.chain_subject = subject;
    }
    dates.known = true;
  }
  if (dates.known) {
    certs_ = dates;
    certs_this_run_ = true;
  }
}

void HttpProbe::judge() {
  const long code = hop_.value("status_code", 0L);
  if (!std::any_of(spec_.expect_status.begin(), spec_.expect_status.end(),
                   [&](const StatusRange& r) { return r.contains(static_cast<int>(code)); }))
    return finish(Status::Unexpected, fmt::format("expected status {}, got {}",
                                                  format_status_ranges(spec_.expect_status), code));
  std::string error;
  if (expect_body_) {
    switch (expect_body_->search(body_, &error)) {
      case Regex::Match::Found: break;
      case Regex::Match::NotFound:
        return finish(Status::Unexpected,
                      fmt::format("body did not match /{}/", expect_body_->pattern()));
      case Regex::Match::Error:
        return finish(Status::LocalError,
                      fmt::format("matching /{}/: {}", expect_body_->pattern(), error));
    }
  }
  if (expect_absent_) {
    switch (expect_absent_->search(body_, &error)) {
      case Regex::Match::NotFound: break;
      case Regex::Match::Found:
        return finish(Status::Unexpected,
                      fmt::format("body matched /{}/", expect_absent_->pattern()));
      case Regex::Match::Error:
        return finish(Status::LocalError,
                      fmt::format("matching /{}/: {}", expect_absent_->pattern(), error));
    }
  }
  if (spec_.cert_expiry_min.count() > 0 && url_.scheme == "https" && certs_.known) {
    const auto min_s = std::chrono::duration_cast<std::chrono::seconds>(spec_.cert_expiry_min);
    const std::int64_t left = certs_.chain_expiry - now_epoch();
    if (left < min_s.count()) {
      const bool leaf = certs_.chain_expiry == certs_.leaf_expiry;
      const std::string which =
          leaf ? "certificate" : fmt::format("certificate '{}' in the chain", certs_.chain_subject);
      const std::string when =
          left >= 0 ? "expires in " + format_span(left) : "expired " + format_span(left) + " ago";
      return finish(Status::Unexpected, fmt::format("{} {} (minimum {})", which, when,
                                                    format_duration(spec_.cert_expiry_min)));
    }
  }
  finish(Status::Ok, fmt::format("HTTP {} in {}", code, format_latency(uv::now() - started())));
}

void HttpProbe::add_details(Result& r) const {
  for (const auto& [key, value] : hop_.items())
    if (key != "timings") r.details[key] = value;
  if (!url_.text.empty()) r.details["final_url"] = url_.text;
  if (redirects_ > 0 && hop_address_.length != 0) {
    // The base reported the first hop's address; the result is about the last one.
    r.details["address"] = hop_address_.ip();
    r.details["port"] = url_.port;
  }
  r.details["redirects"] = redirects_;
  r.details["body_bytes"] = body_bytes_;
  r.details["body_truncated"] = truncated_;
  nlohmann::ordered_json timings = nlohmann::ordered_json::object();
  if (r.details.contains("resolve_ms"))
    timings["dns_ms"] = r.details["resolve_ms"].get<double>() + to_ms(redirect_resolve_);
  if (hop_.contains("timings"))
    for (const auto& [key, value] : hop_["timings"].items()) timings[key] = value;
  timings["total_ms"] = to_ms(r.latency);
  r.details["timings"] = std::move(timings);
  if (!tls_version_.empty()) r.details["tls_version"] = tls_version_;
  // Without keepalive every run has its own handshake: dates from an earlier run would
  // describe a certificate this run never saw (its handshake failed, say).
  if (certs_.known && url_.scheme == "https" && (certs_this_run_ || spec_.keepalive)) {
    const std::int64_t now = now_epoch();
    r.details["cert_expiry"] = rfc3339(certs_.leaf_expiry);
    r.details["cert_expires_in_s"] = certs_.leaf_expiry - now;
    r.details["cert_chain_expiry"] = rfc3339(certs_.chain_expiry);
    r.details["cert_chain_expires_in_s"] = certs_.chain_expiry - now;
    if (!certs_this_run_) r.details["cert_from_earlier_run"] = true;
  }
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const HttpSpec& s) {
  std::string error;
  std::optional<Url> url = parse_url(effective_url(e, s), &error);
  Endpoint target = e;
  std::uint16_t port = 0;
  if (url) {
    // The URL's host is the one to resolve (it may differ from the server's address).
    target.host = url->host;
    port = url->port;
  }
  return std::make_unique<HttpProbe>(ctx, std::move(target), port, s, std::move(url), error);
}

}  // namespace netmond
