// EchoServer: the RFC 862 echo service over UDP (and optionally TCP) on one libuv loop.
//
// UDP: each listener receives with recvmmsg into one preallocated slab shared by all
// listeners (callbacks run one at a time) and answers from the socket the datagram arrived
// on: the replies of one recvmmsg batch are staged and sent with one sendmmsg at the end of
// the batch (a syscall per reply cost ~20% of throughput, docs/benchmarks.md), a lone
// datagram with uv_udp_try_send. So the reply leaves from the address and port the request was
// sent to (for a wildcard listener the kernel picks the source address by routing). A
// datagram is answered only when SourceFilter says so, it is no larger than max_size, and
// its source's token bucket has a token; a reply the socket cannot take right now is
// dropped. Nothing is queued and nothing is allocated per datagram.
//
// TCP: TcpEchoConnection per connection (tcp_echo.h), at most max_connections.
//
// Every decision is counted in EchoCounters; the server itself logs nothing per datagram.
#pragma once

#include "base/address.h"
#include "base/uv.h"
#include "rate_limit.h"
#include "source_filter.h"

#include <sys/socket.h>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace netmond {

class TcpEchoConnection;

struct EchoConfig {
  bool tcp = false;
  size_t max_size = 1472;   // the largest IPv4 payload in one 1500-byte Ethernet frame
  double rate = 100;        // tokens per second per source; 0: no rate limit
  double burst = 200;       // bucket size
  std::vector<Cidr> allow;  // empty: everyone
  bool allow_low_ports = false;
  size_t max_sources = 4096;  // rate-limit table entries (48 bytes each)
  size_t max_connections = 256;
  std::chrono::milliseconds idle_timeout{30'000};  // TCP: close after this long without progress
  size_t tcp_buffer = 16 * 1024;                   // TCP: per-connection buffer
};

struct EchoCounters {
  // UDP
  std::uint64_t received = 0;
  std::uint64_t echoed = 0;
  std::uint64_t low_port = 0;
  std::uint64_t bad_source = 0;
  std::uint64_t spoofed_loopback = 0;
  std::uint64_t not_allowed = 0;
  std::uint64_t too_large = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t would_block = 0;  // the socket's send buffer was full: reply dropped
  std::uint64_t send_failed = 0;
  std::uint64_t recv_errors = 0;
  // TCP
  std::uint64_t tcp_accepted = 0;
  std::uint64_t tcp_bytes = 0;     // echoed
  std::uint64_t tcp_rejected = 0;  // over max_connections
  std::uint64_t tcp_not_allowed = 0;
  std::uint64_t tcp_idle_closed = 0;

  std::uint64_t dropped() const;
  // "udp received=5 echoed=3 dropped=2 (low_port=1 rate_limited=1)", then, with `tcp`,
  // "; tcp accepted=1 bytes=12 ..."; drop reasons appear only when non-zero.
  std::string format(bool tcp) const;
  bool operator==(const EchoCounters&) const = default;
};

struct EchoListener {
  bool tcp = false;
  SockAddr address;        // as bound (port 0 resolved)
  bool inherited = false;  // from systemd socket activation
  // "udp 127.0.0.1:10100", "tcp [::1]:10100 (socket activation)"
  std::string describe() const;
};

class EchoServer {
 public:
  EchoServer(uv_loop_t* loop, EchoConfig config);
  ~EchoServer();
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  // Binds a UDP listener on `addr`, and a TCP one on the same address and port when the
  // config says tcp. Port 0 lets the kernel pick (the TCP listener takes the same port).
  // IPv6 listeners are IPv6-only, so 0.0.0.0 and [::] may both be given. On failure
  // returns false with *err set.
  bool listen(const SockAddr& addr, std::string* err);
  // Adopts an inherited socket (systemd socket activation): a UDP socket, or a listening
  // TCP socket (served whatever config.tcp says). Accept=yes sockets are refused.
  bool adopt(int fd, std::string* err);

  const std::vector<EchoListener>& listeners() const { return listeners_; }
  const EchoCounters& counters() const { return counters_; }
  size_t connections() const { return connections_.size(); }
  const RateLimiter& rate_limiter() const { return limiter_; }

 private:
  struct UdpListener {
    uv::Udp udp;
    ListenerScope scope;
  };
  // Replies staged during one recvmmsg batch, sent with one sendmmsg at its end.
  struct Pending {
    sockaddr_storage to;
    iovec iov;
  };
  void stage(UdpListener& l, const char* data, size_t len, const sockaddr* to);
  void flush(UdpListener& l);
  std::array<Pending, 64> pending_{};
  std::array<mmsghdr, 64> mmsg_{};
  size_t npending_ = 0;
  std::uint64_t batch_now_ = 0;
  int try_listen(const SockAddr& addr, std::string* err);
  // Both return 0 or a libuv error.
  int start_udp(uv::Udp udp);
  int listen_tcp(uv::TcpServer& server);
  void on_datagram(UdpListener& l, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                   unsigned flags);
  void on_connection(uv::TcpServer* server);

  uv_loop_t* loop_;
  EchoConfig config_;
  SourceFilter filter_;
  RateLimiter limiter_;
  EchoCounters counters_;
  std::vector<EchoListener> listeners_;
  std::unique_ptr<char[]> slab_;  // before the handles that receive into it
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<uv::TcpServer>> tcp_;
  std::unordered_map<TcpEchoConnection*, std::unique_ptr<TcpEchoConnection>> connections_;
  uv::Timer refresh_;  // re-reads the local broadcast addresses now and then
};

}  // namespace netmond
