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

// A network namespace made by the test (`ip netns add`), deleted on destruction. Bare: even
// lo stays down until the test brings it up (unlike support/netns.h's NetNs).
class BareNetns {
 public:
  BareNetns();  // a unique name; check ok() before use
  ~BareNetns();
  BareNetns(const BareNetns&) = delete;
  BareNetns& operator=(const BareNetns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// Moves the calling thread (and so the sockets it creates from now on) into `ns`, and back
// to the original namespace on destruction.
class EnterNetns {
 public:
  explicit EnterNetns(const BareNetns& ns);
  ~EnterNetns();
  EnterNetns(const EnterNetns&) = delete;
  EnterNetns& operator=(const EnterNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  Fd original_;
  bool ok_ = false;
};

// Runs /usr/sbin/ip with `args`; true when it exits 0 (its stderr is printed otherwise).
bool ip(std::vector<std::string> args);

// Two namespaces joined by a veth pair: the client (10.200.0.1/30, lo up, default route via
// the router) and a router (10.200.0.2/30, forwarding on) whose route to 198.51.100.0/24
// is "unreachable", so it answers packets for it with ICMP host unreachable.
struct RoutedNetwork {
  BareNetns client;
  BareNetns router;
  bool ok = false;
  RoutedNetwork();
};

}  // namespace netmond::test
