// Peers for probe tests: listeners, closed ports, a UDP responder on the loop, a DNS
// responder's answer, and network namespaces the test creates itself. Loopback only, or
// inside those namespaces: nothing here sends a packet anywhere else.
#pragma once

#include "base/address.h"
#include "base/fd.h"
#include "base/uv.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netmond::test {

// A socket of `type` (SOCK_DGRAM, SOCK_STREAM, optionally | SOCK_NONBLOCK) bound to ip:0;
// *port is the port the kernel chose. Throws std::runtime_error when bind fails.
Fd bound_socket(const std::string& ip, int type, std::uint16_t* port);

// A TCP listener on `ip`, port chosen by the kernel; nobody accepts unless asked.
class TcpListener {
 public:
  explicit TcpListener(const std::string& ip, int backlog = 16);
  std::uint16_t port() const { return port_; }
  int fd() const { return fd_.get(); }
  // Accepts one queued connection without blocking; its peer address, or nullopt.
  std::optional<SockAddr> accept_peer();

 private:
  Fd fd_;
  std::uint16_t port_ = 0;
};

// Connects to `l` (backlog 0) until the kernel stops completing handshakes: from then on
// its accept queue is full and Linux drops further SYNs, so a connect stalls. Returns the
// client sockets to keep open; empty if the queue never filled (then the caller WARNs).
std::vector<Fd> fill_accept_queue(const TcpListener& l, const std::string& ip);

// A port on `ip` that nobody listens on: bound by the test, then closed.
std::uint16_t closed_tcp_port(const std::string& ip);
std::uint16_t closed_udp_port(const std::string& ip);

// Sends, from a raw socket, the ICMP port unreachable that `server` would send for a UDP
// datagram from `prober` carrying `quoted` (both IPv4 loopback addresses with ports): the
// kernel hands it to the prober's socket, quoted payload and all, whenever the test wants,
// as if it had been delayed on the way. Needs CAP_NET_RAW (tests run as root).
void send_icmp_port_unreachable(const SockAddr& prober, const SockAddr& server,
                                std::string_view quoted);

// A UDP socket bound to ip:0 and watched by the loop. For each datagram it calls
// `respond`; a returned string is sent back to the sender. No `respond`: silent.
class UdpPeer {
 public:
  using Respond = std::function<std::optional<std::string>(std::string_view request)>;
  UdpPeer(uv_loop_t* loop, const std::string& ip, Respond respond = {});
  std::uint16_t port() const { return port_; }
  int received() const { return received_; }
  // Who sent the last datagram.
  const std::optional<SockAddr>& last_sender() const { return last_sender_; }
  // Sends `payload` from the peer's address and port, unasked.
  void send(std::string_view payload, const SockAddr& to) const;

 private:
  void on_readable();

  Fd fd_;  // before poll_: the poll is closed first
  uv::Poll poll_;
  Respond respond_;
  std::uint16_t port_ = 0;
  int received_ = 0;
  std::optional<SockAddr> last_sender_;
};

// A DNS reply to `query` saying NXDOMAIN (the question echoed, no answers); nullopt when
// the query is too short to be one.
std::optional<std::string> nxdomain_reply(std::string_view query);

}  // namespace netmond::test
