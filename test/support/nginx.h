// A real web server for HTTP probe tests: the system's nginx (/usr/sbin/nginx), run as a
// child of the test on loopback ports the kernel chose, with its config, logs and files in a
// temporary directory. The test binds the listening sockets itself and nginx inherits them
// (the NGINX environment variable, as in its binary upgrade), so there is no window in
// which a parallel test could take a port between choosing and listening.
//
// Every server (plain HTTP and each TLS one) serves the same paths:
//   /               200 "hello netmond\n" (text/plain)
//   /notfound       404 (nginx's HTML page)
//   /redirect       302, relative Location "/target"
//   /redirect2      302 to /redirect (two hops to /target)
//   /abs-redirect   301, absolute Location scheme://host:port/target
//   /redirect-loop  302 to itself
//   /target         200 "target ok\n"
//   /status/503     503 "unavailable\n"
//   /post           200 "method=<method> length=<Content-Length>\n"
//   /headers        200 "x-netmond=<X-Netmond>\nuser-agent=<User-Agent>\n"
//   /big            kBigBytes of application/octet-stream (a static file)
//   /text           kTextBytes of text/plain ending in "the end\n" (gzipped when asked)
//   /slow           /big at 4 KiB/s: headers at once, then a body that takes ~17 minutes
#pragma once

#include "support/process.h"

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace netmond::test {

// The TLS servers, one per certificate of test_pki() (support/tls.h).
enum class TlsSite : std::uint8_t { Valid, Expired, Expiring, OtherName, Chained };
inline constexpr std::size_t kTlsSites = 5;

class Nginx {
 public:
  static constexpr std::size_t kBigBytes = 4 * 1024 * 1024;
  static constexpr std::size_t kTextBytes = 64 * 1024;

  // Starts nginx and returns once it answers HTTP. Throws std::runtime_error with nginx's
  // stderr and error log when it exits or does not answer within 10 s.
  Nginx();
  // SIGTERM (nginx stops its worker and exits), SIGKILL to both when that takes over 5 s.
  ~Nginx();
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  std::uint16_t http_port() const { return http_port_; }    // on 127.0.0.1
  std::uint16_t http6_port() const { return http6_port_; }  // on ::1
  std::uint16_t https_port(TlsSite site) const { return https_ports_[index(site)]; }  // 127.0.0.1
  std::uint16_t https6_port() const { return https6_port_; }  // ::1, TlsSite::Valid

  // "http://127.0.0.1:<port>/path", "http://[::1]:<port>/path", "https://..."
  std::string http_url(std::string_view path = "/") const;
  std::string http6_url(std::string_view path = "/") const;
  std::string https_url(TlsSite site, std::string_view path = "/") const;
  std::string https6_url(std::string_view path = "/") const;

  const std::string& dir() const { return dir_; }
  pid_t pid() const;
  // The logs so far. An access log line reads
  //   127.0.0.1 "GET /text HTTP/1.1" 200 1234 "gzip" "netmond/0.1" connection=7 request=1
  // (address, request line, status, body bytes sent, Content-Encoding, User-Agent, nginx's
  // connection serial number and the request's number on that connection).
  std::string error_log() const;
  std::string access_log() const;

 private:
  static std::size_t index(TlsSite site) { return static_cast<std::size_t>(site); }
  bool answers_http() const;
  [[noreturn]] void fail(const std::string& why);
  void stop();

  std::string dir_;
  std::uint16_t http_port_ = 0;
  std::uint16_t http6_port_ = 0;
  std::array<std::uint16_t, kTlsSites> https_ports_{};
  std::uint16_t https6_port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace netmond::test
