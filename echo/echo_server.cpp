#include "echo_server.h"

#include "tcp_echo.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace netmond {

namespace {

// libuv's recvmmsg cuts the receive buffer into 64 KiB chunks (one datagram each, so
// nothing that fits in UDP is truncated) and reads at most 20 of them per call.
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kBatch = 20;
constexpr int kBacklog = 128;
constexpr auto kRefreshInterval = std::chrono::minutes(1);

std::optional<SockAddr> sockname(int fd) {
  SockAddr a;
  a.length = sizeof a.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) return std::nullopt;
  if (a.family() != AF_INET && a.family() != AF_INET6) return std::nullopt;
  return a;
}

std::optional<SockAddr> peername(int fd) {
  SockAddr a;
  a.length = sizeof a.storage;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) return std::nullopt;
  return a;
}

int sockopt(int fd, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) return -1;
  return value;
}

}  // namespace

std::uint64_t EchoCounters::dropped() const {
  return low_port + bad_source + spoofed_loopback + not_allowed + too_large + rate_limited +
         would_block + send_failed;
}

std::string EchoCounters::format(bool tcp) const {
  std::string s = fmt::format("udp received={} echoed={} dropped={}", received, echoed, dropped());
  std::string reasons;
  auto reason = [&](const char* name, std::uint64_t n) {
    if (n != 0) reasons += fmt::format("{}{}={}", reasons.empty() ? "" : " ", name, n);
  };
  reason("low_port", low_port);
  reason("bad_source", bad_source);
  reason("spoofed_loopback", spoofed_loopback);
  reason("not_allowed", not_allowed);
  reason("too_large", too_large);
  reason("rate_limited", rate_limited);
  reason("would_block", would_block);
  reason("send_failed", send_failed);
  if (!reasons.empty()) s += " (" + reasons + ")";
  if (recv_errors != 0) s += fmt::format(" recv_errors={}", recv_errors);
  if (tcp)
    s += fmt::format("; tcp accepted={} bytes={} rejected={} not_allowed={} idle_closed={}",
                     tcp_accepted, tcp_bytes, tcp_rejected, tcp_not_allowed, tcp_idle_closed);
  return s;
}

std::string EchoListener::describe() const {
  return fmt::format("{} {}{}", tcp ? "tcp" : "udp", address.with_port(),
                     inherited ? " (socket activation)" : "");
}

EchoServer::EchoServer(uv_loop_t* loop, EchoConfig config)
    : loop_(loop),
      config_(std::move(config)),
      filter_(config_.allow_low_ports, config_.allow),
      limiter_(config_.rate, config_.burst, config_.max_sources),
      slab_(std::make_unique<char[]>(kChunk * kBatch)),
      refresh_(loop) {
  filter_.set_broadcasts(local_broadcasts());
  refresh_.start(
      kRefreshInterval, [this] { filter_.set_broadcasts(local_broadcasts()); }, kRefreshInterval);
}

// Out of line: TcpEchoConnection is complete here.
EchoServer::~EchoServer() = default;

bool EchoServer::listen(const SockAddr& addr, std::string* err) {
  // With port 0 the kernel picks a free UDP port; the same TCP port may be taken, so pick
  // again a few times.
  const int attempts = config_.tcp && addr.port() == 0 ? 8 : 1;
  for (int attempt = 1;; ++attempt) {
    int rc = try_listen(addr, err);
    if (rc != UV_EADDRINUSE || attempt == attempts) return rc == 0;
  }
}

int EchoServer::try_listen(const SockAddr& addr, std::string* err) {
  const bool v6 = addr.family() == AF_INET6;
  uv::Udp udp;
  int rc = udp.init(loop_, static_cast<unsigned>(addr.family()) | UV_UDP_RECVMMSG);
  if (rc == 0) rc = udp.bind(addr.get(), v6 ? UV_UDP_IPV6ONLY : 0);
  std::optional<SockAddr> bound;
  if (rc == 0 && !(bound = sockname(udp.fileno()))) rc = UV_EINVAL;
  if (rc != 0) {
    *err = fmt::format("udp {}: {}", addr.with_port(), uv::error_text(rc));
    return rc;
  }
  std::unique_ptr<uv::TcpServer> tcp;
  if (config_.tcp) {
    SockAddr same = addr;
    same.set_port(bound->port());
    tcp = std::make_unique<uv::TcpServer>();
    rc = tcp->init(loop_, static_cast<unsigned>(addr.family()));
    if (rc == 0) rc = tcp->bind(same.get(), v6 ? UV_TCP_IPV6ONLY : 0);
    // libuv reports EADDRINUSE from listen, not bind.
    if (rc == 0) rc = listen_tcp(*tcp);
    if (rc != 0) {
      *err = fmt::format("tcp {}: {}", same.with_port(), uv::error_text(rc));
      return rc;
    }
  }
  if ((rc = start_udp(std::move(udp))) != 0) {
    *err = fmt::format("udp {}: {}", bound->with_port(), uv::error_text(rc));
    return rc;
  }
  listeners_.push_back({false, *bound, false});
  if (tcp) {
    tcp_.push_back(std::move(tcp));
    listeners_.push_back({true, *bound, false});
  }
  return 0;
}

bool EchoServer::adopt(int fd, std::string* err) {
  auto bound = sockname(fd);
  if (!bound) {
    *err = fmt::format("inherited fd {}: not an IPv4 or IPv6 socket", fd);
    return false;
  }
  int type = sockopt(fd, SO_TYPE);
  if (type == SOCK_DGRAM) {
    uv::Udp udp;
    int rc = udp.init(loop_, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (rc == 0) rc = udp.open(fd);
    if (rc == 0) rc = start_udp(std::move(udp));
    if (rc != 0) {
      *err =
          fmt::format("inherited fd {} (udp {}): {}", fd, bound->with_port(), uv::error_text(rc));
      return false;
    }
    listeners_.push_back({false, *bound, true});
    return true;
  }
  if (type == SOCK_STREAM) {
    if (sockopt(fd, SO_ACCEPTCONN) != 1) {
      *err = fmt::format(
          "inherited fd {} (tcp {}): not a listening socket (Accept=yes is not supported)", fd,
          bound->with_port());
      return false;
    }
    auto tcp = std::make_unique<uv::TcpServer>();
    int rc = tcp->init(loop_, AF_UNSPEC);
    if (rc == 0) rc = tcp->open(fd);
    if (rc == 0) rc = listen_tcp(*tcp);
    if (rc != 0) {
      *err =
          fmt::format("inherited fd {} (tcp {}): {}", fd, bound->with_port(), uv::error_text(rc));
      return false;
    }
    tcp_.push_back(std::move(tcp));
    listeners_.push_back({true, *bound, true});
    return true;
  }
  *err = fmt::format("inherited fd {}: neither a datagram nor a stream socket", fd);
  return false;
}

int EchoServer::start_udp(uv::Udp udp) {
  auto l = std::make_unique<UdpListener>(UdpListener{std::move(udp), ListenerScope::Loopback});
  if (auto bound = sockname(l->udp.fileno())) l->scope = scope_of(bound->get());
  UdpListener* raw = l.get();
  int rc = raw->udp.recv_start(
      slab_.get(), kChunk * kBatch,
      [this, raw](ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) {
        on_datagram(*raw, nread, buf, from, flags);
      });
  if (rc == 0) udp_.push_back(std::move(l));
  return rc;
}

int EchoServer::listen_tcp(uv::TcpServer& server) {
  uv::TcpServer* raw = &server;  // stable: servers live in unique_ptrs
  return server.listen(kBacklog, [this, raw](int status) {
    if (status == 0) on_connection(raw);
  });
}

void EchoServer::on_datagram(UdpListener& l, ssize_t nread, const uv_buf_t* buf,
                             const sockaddr* from, unsigned flags) {
  if (nread < 0) {
    ++counters_.recv_errors;
    return;
  }
  // Nothing more to read, or the end of a recvmmsg batch: send the staged replies.
  if (from == nullptr) {
    flush(l);
    batch_now_ = 0;
    return;
  }
  ++counters_.received;
  switch (filter_.check(from, l.scope)) {
    case Verdict::Answer: break;
    case Verdict::BadSource: ++counters_.bad_source; return;
    case Verdict::SpoofedLoopback: ++counters_.spoofed_loopback; return;
    case Verdict::LowPort: ++counters_.low_port; return;
    case Verdict::NotAllowed: ++counters_.not_allowed; return;
  }
  if ((flags & UV_UDP_PARTIAL) != 0 || static_cast<size_t>(nread) > config_.max_size) {
    ++counters_.too_large;
    return;
  }
  if (limiter_.enabled() && batch_now_ == 0) batch_now_ = uv_hrtime();
  if (limiter_.enabled() && !limiter_.allow(*IpAddr::from(from), batch_now_)) {
    ++counters_.rate_limited;
    return;
  }
  // The reply is the request, byte for byte: never larger.
  if (flags & UV_UDP_MMSG_CHUNK) {
    stage(l, buf->base, static_cast<size_t>(nread), from);
    return;
  }
  int rc = l.udp.try_send(buf->base, static_cast<size_t>(nread), from);
  if (rc >= 0)
    ++counters_.echoed;
  else if (rc == UV_EAGAIN)
    ++counters_.would_block;
  else
    ++counters_.send_failed;
}

void EchoServer::stage(UdpListener& l, const char* data, size_t len, const sockaddr* to) {
  if (npending_ == pending_.size()) flush(l);
  Pending& p = pending_[npending_];
  std::memcpy(&p.to, to, to->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  p.iov = {const_cast<char*>(data), len};
  mmsghdr& m = mmsg_[npending_];
  m = {};
  m.msg_hdr.msg_name = &p.to;
  m.msg_hdr.msg_namelen = to->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  m.msg_hdr.msg_iov = &p.iov;
  m.msg_hdr.msg_iovlen = 1;
  ++npending_;
}

void EchoServer::flush(UdpListener& l) {
  size_t off = 0;
  int fd = l.udp.fileno();
  while (off < npending_) {
    int n = sendmmsg(fd, &mmsg_[off], static_cast<unsigned>(npending_ - off), MSG_DONTWAIT);
    if (n > 0) {
      counters_.echoed += static_cast<unsigned>(n);
      off += static_cast<size_t>(n);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      ++counters_.would_block;
    else
      ++counters_.send_failed;
    ++off;  // drop that one, as try_send would
  }
  npending_ = 0;
}

void EchoServer::on_connection(uv::TcpServer* server) {
  uv::TcpStream stream;
  if (server->accept(stream) != 0) return;
  // Accept then close when refusing: a connection left in the queue would stall libuv's
  // accepting for everyone else.
  if (connections_.size() >= config_.max_connections) {
    ++counters_.tcp_rejected;
    return;
  }
  auto peer = peername(stream.fileno());
  if (!peer || !filter_.allowed(peer->get())) {
    ++counters_.tcp_not_allowed;
    return;
  }
  ++counters_.tcp_accepted;
  std::string who = peer->with_port();
  spdlog::debug("tcp connection from {}", who);
  auto conn = std::make_unique<TcpEchoConnection>(
      loop_, std::move(stream), config_.tcp_buffer, config_.idle_timeout, &counters_.tcp_bytes,
      [this, who](TcpEchoConnection* c, TcpEchoConnection::End end) {
        if (end == TcpEchoConnection::End::Idle) ++counters_.tcp_idle_closed;
        spdlog::debug("tcp connection from {} closed ({})", who,
                      end == TcpEchoConnection::End::Idle    ? "idle"
                      : end == TcpEchoConnection::End::Error ? "error"
                                                             : "peer closed");
        connections_.erase(c);
      });
  TcpEchoConnection* raw = conn.get();
  connections_.emplace(raw, std::move(conn));
}

}  // namespace netmond
