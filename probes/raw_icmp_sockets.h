// RawIcmpSockets: the raw ICMP sockets every icmp check on a loop shares, one per family and
// socket options (source address, interface, TTL), and the knowledge that ping sockets
// are refused, so that no run tries one again.
//
// Why shared: a raw socket sees every ICMP message of the host. With one per run, K runs in
// flight meant every reply copied to K sockets and run through K filters, and each run
// opened a socket, compiled its filter and closed it again (~20 system calls a run; the
// cost measured in docs/performance.md). One socket per family reads each message once
// and hands it to the run whose echo identifier it carries (an echo reply's own, an ICMP
// error's quoted request's); identifiers are unique per check (IcmpId), and every run still
// checks its sequence numbers, the target's address and its payload cookie.
//
// Ping sockets are not shared: the kernel binds each to one identifier and delivers only
// its replies, which is already the demultiplexing a shared socket does by hand.
//
// A socket opens with the first run that needs it and stays open while any check that used
// it lives (each IcmpSocket keeps a lease on the socket of its last run), so that checks
// running one at a time do not reopen it every run, and a socket whose checks are gone
// (a reload changed their ttl) closes. A socket that failed (its interface went away: the
// interface binding is an index, and a recreated interface has a new one) is replaced by
// the next run that subscribes.
#pragma once

#include "base/address.h"
#include "base/datagram.h"
#include "icmp_packet.h"

#include <linux/net_tstamp.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace netmond {

// One datagram read from an ICMP socket.
struct IcmpDatagram {
  std::string_view bytes;  // as the socket returned it: see icmp::Framing
  SockAddr from;
  icmp::ReceiveTime at;
  std::optional<int> ttl;  // IP_TTL / IPV6_HOPLIMIT control message
};

class RawIcmpSockets {
 public:
  using DatagramFn = std::function<void(const IcmpDatagram&)>;
  using DrainedFn = std::function<void()>;

  // What a socket is shared by: checks that differ in one of these get their own.
  struct Key {
    int family = AF_INET;
    std::optional<SockAddr> source;  // bound; nullopt: any
    std::string device;              // SO_BINDTODEVICE; "" for any
    unsigned ttl = 0;                // IP_TTL / IPV6_UNICAST_HOPS; 0: the system's default
    bool operator<(const Key& o) const;
  };

  class Socket;
  // A run's place on a shared socket: its datagrams come while this lives.
  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    // Sends one ICMP message to `to`, reading both clocks into `at` right before sendto().
    // Returns the bytes sent or a negative errno. ENODEV or ENXIO (the interface is gone)
    // marks the socket broken: the next subscription opens a new one.
    long send_to(const SockAddr& to, std::string_view message, icmp::SendTime* at);
    // Keeps the socket open after this subscription ends (see the header comment).
    std::shared_ptr<const void> lease() const { return socket_; }

   private:
    friend class RawIcmpSockets;
    friend class Socket;
    Subscription() = default;
    std::shared_ptr<Socket> socket_;
    std::uint16_t id_ = 0;
    DatagramFn on_datagram_;
    DrainedFn on_drained_;
    bool touched_ = false;  // got a datagram in the batch being read
  };

  explicit RawIcmpSockets(uv_loop_t* loop);
  ~RawIcmpSockets();
  RawIcmpSockets(const RawIcmpSockets&) = delete;
  RawIcmpSockets& operator=(const RawIcmpSockets&) = delete;

  // Subscribes to the datagrams about echo identifier `id` on the socket for `key`, opening
  // it when there is none: echo replies carrying `id`, and ICMP errors quoting an echo
  // request with it. `on_datagram` runs for each, `on_drained` once after a batch that
  // brought it any. Either may destroy the subscription. nullptr when the socket cannot be
  // opened: *err is the negative errno, *step where it failed (DatagramSocket's steps, or
  // Option for the socket options).
  std::unique_ptr<Subscription> subscribe(const Key& key, std::uint16_t id, DatagramFn on_datagram,
                                          DrainedFn on_drained, int* err,
                                          DatagramSocket::Step* step);

  // Ping sockets of `family` were refused with this errno (no permission, or no kernel
  // support; 0: not refused so far): later runs go straight to the raw sockets, and say
  // why when those fail too. Remembered while this object lives (netmond: until it
  // stops; a change of net.ipv4.ping_group_range takes a restart).
  int ping_refusal(int family) const;
  void set_ping_refusal(int family, int err);

  // How many shared sockets are open (for tests).
  std::size_t open_sockets() const;

 private:
  uv_loop_t* loop_;
  // Owned by the subscriptions and leases; an entry whose socket closed is replaced or
  // dropped by the next subscribe().
  std::map<Key, std::weak_ptr<Socket>> sockets_;
  int ping_refusal_v4_ = 0;
  int ping_refusal_v6_ = 0;
};

// Software receive stamps only (SO_TIMESTAMPING). Unlike SO_TIMESTAMPNS, which stamps a
// packet at recvmsg() when it came in while stamping was off (a loop-latency RTT that looks
// like a kernel one), these are either the time the packet was received or absent.
inline constexpr int kIcmpReceiveStamps = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;

// What every ICMP socket of a run asks for: kIcmpReceiveStamps, the reply's TTL or hop
// limit (IP_RECVTTL / IPV6_RECVHOPLIMIT), and the TTL to send with when `ttl` is not 0.
// Returns 0 or a negative errno.
int set_icmp_socket_options(int fd, int family, unsigned ttl);

// Sends one ICMP message on the ICMP socket `fd` to `to`, reading both clocks into `at`
// right before sendto(). Returns the bytes sent or a negative errno.
long send_icmp(int fd, const SockAddr& to, std::string_view message, icmp::SendTime* at);

// Reads the next datagram from the ICMP socket `fd` into `buffer` with its receive timestamp
// and TTL, without blocking, skipping any too long for `buffer` (not ours). False when
// nothing is waiting (EAGAIN) or the read failed.
bool next_icmp_datagram(int fd, std::span<char> buffer, IcmpDatagram* d);

}  // namespace netmond
