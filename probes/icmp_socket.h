// IcmpSocket: the ICMP socket of one run of one icmp check, and the identifiers checks use.
//
// A ping socket (SOCK_DGRAM with IPPROTO_ICMP / IPPROTO_ICMPV6) when
// net.ipv4.ping_group_range admits the process's group, else a raw socket (CAP_NET_RAW):
//  - ping socket, the run's own: bound to the check's identifier, so the kernel delivers
//    only replies carrying it; ICMP errors about our requests arrive on the error queue
//    (IP_RECVERR / IPV6_RECVERR), with the header of the request they are about;
//  - raw socket, shared by every check (raw_icmp_sockets.h): it sees every ICMP message of
//    the host, behind ICMP_FILTER / ICMP6_FILTER (replies and errors only), and hands each
//    run the echo replies with its check's identifier and the errors quoting a request
//    with it; errors arrive as ordinary datagrams quoting the request.
// Every datagram comes with the kernel's software receive timestamp (SO_TIMESTAMPING, see
// hold_receive_timestamps) and the reply's TTL or hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT).
// Callbacks run on the loop and may close or destroy the socket.
#pragma once

#include "base/address.h"
#include "base/datagram.h"
#include "icmp_packet.h"
#include "raw_icmp_sockets.h"

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netmond {

// An echo identifier for one check: random (never the pid), and unique among this process's
// checks while it lives, so that concurrent checks never share one.
class IcmpId {
 public:
  IcmpId();
  ~IcmpId();
  IcmpId(const IcmpId&) = delete;
  IcmpId& operator=(const IcmpId&) = delete;
  std::uint16_t value() const { return value_; }
  // Draws another one (another program's ping socket holds this one).
  void redraw();

 private:
  std::uint16_t value_ = 0;
};

class IcmpSocket {
 public:
  enum class Kind : std::uint8_t { Ping, Raw };
  // The step of open() that failed, for the caller's retry and message.
  enum class Step : std::uint8_t { None, Socket, Device, Bind, Option, Watch };
  using DatagramFn = std::function<void(const IcmpDatagram&)>;
  using ErrorFn = DatagramSocket::ErrorFn;
  using DrainedFn = std::function<void()>;

  struct Options {
    int family = AF_INET;
    std::uint16_t id = 0;  // the echo identifier: bound (ping socket) or filtered on (raw)
    std::optional<SockAddr> source;
    std::string device;                       // SO_BINDTODEVICE; "" for any
    unsigned ttl = 0;                         // IP_TTL / IPV6_UNICAST_HOPS; 0: the system's default
    std::size_t payload = icmp::kMinPayload;  // the largest echo payload expected
  };

  IcmpSocket() = default;
  ~IcmpSocket() = default;
  IcmpSocket(const IcmpSocket&) = delete;
  IcmpSocket& operator=(const IcmpSocket&) = delete;

  // Opens and watches a ping socket, else subscribes to `raw`'s shared raw socket (at once
  // when `raw` knows ping sockets are refused). `on_datagram` runs for every datagram read,
  // `on_drained` after the last one queued (so that a run can end with everything that
  // arrived together counted), `on_error` for every error-queue entry (ping sockets).
  // Returns 0 or a negative errno; then error() says what failed in a sentence and
  // failed_step() where (Bind with EADDRINUSE: another ping socket holds the identifier).
  int open(uv_loop_t* loop, RawIcmpSockets& raw, const Options& o, DatagramFn on_datagram,
           DrainedFn on_drained, ErrorFn on_error);
  // Sends one ICMP message to `to`, reading both clocks into `at` right before sendto().
  // Returns the bytes sent or a negative errno.
  long send_to(const SockAddr& to, std::string_view message, icmp::SendTime* at);
  // Stops watching and closes the socket (a ping socket) or leaves the shared one. Safe
  // when closed.
  void close();

  bool is_open() const { return socket_.is_open() || raw_ != nullptr; }
  Kind kind() const { return kind_; }
  icmp::Framing framing() const;
  Step failed_step() const { return failed_step_; }
  const std::string& error() const { return error_; }

 private:
  int open_ping(uv_loop_t* loop, const Options& o);
  int open_raw(RawIcmpSockets& raw, const Options& o, int ping_errno);
  int fail(Step step, int err, std::string text);
  void on_readable();

  int family_ = AF_INET;
  Kind kind_ = Kind::Ping;
  Step failed_step_ = Step::None;
  std::string error_;
  DatagramFn on_datagram_;
  DrainedFn on_drained_;
  ErrorFn on_error_;
  std::vector<char> buffer_;
  DatagramSocket socket_;                              // a ping socket
  std::unique_ptr<RawIcmpSockets::Subscription> raw_;  // or a place on a shared raw socket
  std::shared_ptr<const void> raw_lease_;              // keeps the last run's shared socket open
  // Expires when the object is destroyed, so code after a callback can tell.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

// Keeps the kernel's receive timestamping on while a holder lives. The kernel switches it
// on for the whole host when the first socket asks for stamps, and off when the last one
// closes, each time in a deferred work item: packets received in between carry no stamp.
// One socket of this process asks for as long as any holder lives; icmp checks hold it
// from their construction, so that the sockets of their runs find stamping on.
std::shared_ptr<const void> hold_receive_timestamps();

// Why no ICMP socket could be opened, for the operator: the ping socket's errno and the raw
// socket's, with the group the kernel checked and net.ipv4.ping_group_range as read. When
// both were refused for want of permission, says what to grant. Out of descriptors (EMFILE,
// ENFILE on either), says only that.
std::string icmp_open_problem(int ping_errno, int raw_errno, unsigned gid,
                              std::string_view ping_group_range);

}  // namespace netmond
