#include "resolver.h"

#include "ares_channel.h"
#include "base/uv.h"

#include <ares.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <deque>
#include <optional>
#include <utility>

namespace netmond {

// The shared state between a Request and its answer: the answer finds the callback here,
// so dropping the Request (the only owner) is all it takes to detach.
struct Resolver::Request::Pending {
  Fn fn;
};

Resolver::Request::Request(Request&&) noexcept = default;
Resolver::Request& Resolver::Request::operator=(Request&&) noexcept = default;
void Resolver::Request::reset() { pending_.reset(); }
bool Resolver::Request::pending() const { return pending_ != nullptr && pending_->fn != nullptr; }

namespace {

int family_for(IpVersion v) {
  switch (v) {
    case IpVersion::V4: return AF_INET;
    case IpVersion::V6: return AF_INET6;
    case IpVersion::Any: break;
  }
  return AF_UNSPEC;
}

std::string_view family_name(int family) { return family == AF_INET6 ? "IPv6" : "IPv4"; }

// "ip", "ip:port", "[v6]" or "[v6]:port" -> an address with its port (53 by default).
std::optional<SockAddr> parse_server(const std::string& text) {
  if (auto a = parse_ip(text, 53)) return a;  // also a bare IPv6 literal, colons and all
  HostPortText parts;
  if (split_host_port(text, &parts) != SplitError::None) return std::nullopt;
  std::string host(parts.host);
  std::string port(parts.port.value_or(""));
  unsigned long p = 53;
  if (!port.empty()) {
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
      return std::nullopt;
    p = std::stoul(port);
    if (p == 0 || p > 65535) return std::nullopt;
  }
  return parse_ip(host, static_cast<std::uint16_t>(p));
}

}  // namespace

struct Resolver::Impl {
  // One answer waiting for its loop turn. The weak pointer is how a reset Request (or a
  // destroyed one) makes the answer fall on the floor.
  struct Ready {
    std::weak_ptr<Request::Pending> pending;
    ResolveResult result;
  };
  // What c-ares carries through ares_getaddrinfo's `arg` (owned by c-ares until its callback).
  struct Query {
    Impl* impl;
    std::weak_ptr<Request::Pending> pending;
  };

  Impl(uv_loop_t* loop, const ResolverOptions& options);
  ~Impl();

  void post(std::weak_ptr<Request::Pending> pending, ResolveResult result);
  void deliver();

  static void on_addrinfo(void* arg, int status, int timeouts, ares_addrinfo* info) noexcept;

  // Set to false by the destructor: a delivery callback that destroyed the Resolver must
  // not make the drain loop touch it again.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::deque<Ready> ready_;
  uv::Timer delivery_;
  std::string error_;  // why names cannot be resolved; "" when the channel is fine
  // Last, so destroyed first: its outstanding queries call back (ARES_EDESTRUCTION) while
  // the rest of the Impl is still whole. Absent when a configured server is invalid.
  std::optional<AresChannel> channel_;
};

Resolver::Impl::Impl(uv_loop_t* loop, const ResolverOptions& options) : delivery_(loop) {
  AresChannelOptions channel;
  channel.timeout = options.timeout;
  channel.tries = options.tries;
  // Parsed here rather than by ares_set_servers_ports_csv: a bare IPv6 literal needs no
  // brackets and a bad entry is named in the error.
  for (const auto& text : options.servers) {
    auto a = parse_server(text);
    if (!a) {
      // No channel at all: one without the configured servers would ask the system's.
      error_ = "invalid DNS server '" + text + "'";
      spdlog::error("{}", error_);
      return;
    }
    channel.servers.push_back(*a);
  }
  channel_.emplace(loop, channel);
  error_ = channel_->error();  // already logged by the channel
}

Resolver::Impl::~Impl() {
  // Then channel_ goes first: outstanding queries call back with ARES_EDESTRUCTION (ignored,
  // nobody is waiting any more) and every socket is reported closed.
  *alive_ = false;
}

void Resolver::Impl::post(std::weak_ptr<Request::Pending> pending, ResolveResult result) {
  ready_.push_back({std::move(pending), std::move(result)});
  if (!delivery_.active()) delivery_.start({}, [this] { deliver(); });
}

void Resolver::Impl::deliver() {
  // Answers posted by the callbacks below wait for the next turn of the timer.
  std::deque<Ready> batch;
  batch.swap(ready_);
  std::shared_ptr<bool> alive = alive_;
  for (auto& r : batch) {
    auto pending = r.pending.lock();
    if (!pending || !pending->fn) continue;  // reset or destroyed: discard
    Fn fn = std::move(pending->fn);
    pending->fn = nullptr;  // delivered: Request::pending() is false from here on
    fn(std::move(r.result));
    if (!*alive) return;  // the callback destroyed the Resolver
  }
}

void Resolver::Impl::on_addrinfo(void* arg, int status, int, ares_addrinfo* info) noexcept {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  std::unique_ptr<ares_addrinfo, decltype(&ares_freeaddrinfo)> owned(info, ares_freeaddrinfo);
  // ares_destroy is running: the Impl is half gone and nobody wants the answer.
  if (status == ARES_EDESTRUCTION) return;
  ResolveResult r;
  if (status == ARES_SUCCESS) {
    for (auto* n = info != nullptr ? info->nodes : nullptr; n != nullptr; n = n->ai_next) {
      if (n->ai_addr == nullptr || n->ai_addrlen > sizeof(sockaddr_storage)) continue;
      if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
      SockAddr a;
      std::memcpy(&a.storage, n->ai_addr, n->ai_addrlen);
      a.length = static_cast<socklen_t>(n->ai_addrlen);
      a.set_port(0);
      r.addresses.push_back(a);
    }
    r.ok = !r.addresses.empty();
    if (!r.ok) r.error = "no address returned";
  } else {
    r.error = ares_strerror(status);
  }
  // c-ares may call back from inside ares_getaddrinfo or ares_process_fd: never run the
  // caller's code here, post it.
  q->impl->post(std::move(q->pending), std::move(r));
}

Resolver::Resolver(uv_loop_t* loop, ResolverOptions options)
    : impl_(std::make_unique<Impl>(loop, options)) {}

Resolver::~Resolver() = default;

Resolver::Request Resolver::resolve(const std::string& host, IpVersion version, Fn fn) {
  Request req;
  req.pending_ = std::make_shared<Request::Pending>();
  req.pending_->fn = std::move(fn);
  std::weak_ptr<Request::Pending> weak = req.pending_;

  std::string name = host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);

  // IP literals never reach c-ares (which would answer them inline anyway).
  if (auto literal = parse_ip(name)) {
    ResolveResult r;
    int want = family_for(version);
    if (want != AF_UNSPEC && literal->family() != want) {
      r.error = "address family mismatch (" + name + " is " +
                std::string(family_name(literal->family())) + ", ip_version is " +
                (want == AF_INET ? "4" : "6") + ")";
    } else {
      r.ok = true;
      r.addresses.push_back(*literal);
    }
    impl_->post(std::move(weak), std::move(r));
    return req;
  }
  if (name.empty() || !impl_->channel_ || impl_->channel_->get() == nullptr ||
      !impl_->error_.empty()) {
    ResolveResult r;
    r.error = name.empty() ? "empty host name" : impl_->error_;
    impl_->post(std::move(weak), std::move(r));
    return req;
  }

  ares_addrinfo_hints hints{};
  hints.ai_family = family_for(version);
  // RFC 6724 ordering stays on (no ARES_AI_NOSORT): "the first address" should be the one
  // the system's getaddrinfo would pick, e.g. IPv4 first on a host without IPv6 routes.
  // c-ares calls on_addrinfo exactly once (perhaps before returning), which takes the
  // query back into a unique_ptr.
  auto* query = std::make_unique<Impl::Query>(Impl::Query{impl_.get(), weak}).release();
  ares_getaddrinfo(impl_->channel_->get(), name.c_str(), nullptr, &hints, &Impl::on_addrinfo,
                   query);
  impl_->channel_->after_submit();
  return req;
}

}  // namespace netmond
