// Asynchronous name resolution for every probe type, on c-ares driven by the loop.
//
// IP literals never touch c-ares. Names go through ares_getaddrinfo on one shared channel
// (hosts file, then DNS servers from /etc/resolv.conf or the ones given). Results are
// always delivered on a later loop turn. Destroying the returned Request, or the
// Resolver, drops the callback: a late answer is discarded.
#pragma once

#include "base/address.h"
#include "probe.h"

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace netmond {

struct ResolveResult {
  bool ok = false;
  std::string error;                // "no such host (NXDOMAIN)", "timeout", ...
  std::vector<SockAddr> addresses;  // resolver order; port 0
};

struct ResolverOptions {
  std::vector<std::string> servers;         // "ip" or "ip:port" / "[v6]:port"; empty = system
  std::chrono::milliseconds timeout{5000};  // per c-ares try (backstop only)
  int tries = 2;
};

class Resolver {
 public:
  using Fn = std::function<void(ResolveResult)>;

  class Request {
   public:
    Request() = default;
    ~Request() { reset(); }
    Request(Request&&) noexcept;
    Request& operator=(Request&&) noexcept;
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;
    void reset();  // drop the callback; the query may still complete and is ignored
    bool pending() const;

   private:
    friend class Resolver;
    struct Pending;
    std::shared_ptr<Pending> pending_;
  };

  Resolver(uv_loop_t* loop, ResolverOptions options = {});
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Resolves `host` for `version`; `fn` runs on a later loop turn exactly once, unless
  // the request is reset or destroyed first.
  Request resolve(const std::string& host, IpVersion version, Fn fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netmond
