// ICMP echo as pure functions, for the icmp probe (icmp.h) and its tests: building echo
// requests, parsing what an ICMP socket returns (echo replies and ICMP errors, for IPv4 raw
// sockets with the IP header, IPv4 ping sockets without it, and ICMPv6), matching replies
// and errors to the requests of a run, and judging a run. No I/O, no clock: times are given.
#pragma once

#include "base/address.h"
#include "base/datagram.h"
#include "result.h"
#include "udp_echo.h"  // RttStats, format_rtt

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netmond::icmp {

inline constexpr std::uint8_t kEchoRequestV4 = 8;
inline constexpr std::uint8_t kEchoReplyV4 = 0;
inline constexpr std::uint8_t kEchoRequestV6 = 128;
inline constexpr std::uint8_t kEchoReplyV6 = 129;
inline constexpr std::size_t kHeaderSize = 8;  // type, code, checksum, identifier, sequence
// Every payload starts with the run's random cookie (8 bytes, big-endian).
inline constexpr std::size_t kCookieSize = 8;
inline constexpr unsigned kMinPayload = kCookieSize;
// The largest echo payload over IPv4: 65535 - 20 (IP header) - 8 (ICMP header).
inline constexpr unsigned kMaxPayload = 65507;

// The RFC 1071 Internet checksum of `bytes` (an odd length is padded with a zero byte).
std::uint16_t internet_checksum(std::string_view bytes);

// The payload of every request of a run: `cookie`, then the bytes 0x08, 0x09, ... (as
// iputils fills its payload) up to `size` bytes. `size` must be at least kCookieSize.
std::string echo_payload(std::uint64_t cookie, std::size_t size);

// An echo request (header + payload) for `family`. IPv4 gets its checksum; ICMPv6 leaves
// it 0, since the kernel computes it over the pseudo-header for every ICMPv6 socket.
std::string echo_request(int family, std::uint16_t id, std::uint16_t seq, std::string_view payload);

// How a datagram read from an ICMP socket starts.
enum class Framing : std::uint8_t {
  Ipv4Raw,    // an IPv4 header, then ICMP (raw sockets)
  Ipv4Dgram,  // ICMP (ping sockets)
  Ipv6,       // ICMPv6 (raw and ping sockets alike)
};

// What one datagram is.
struct Packet {
  enum class Kind : std::uint8_t {
    EchoReply,  // id, seq, payload, and for Ipv4Raw the TTL
    Error,      // an ICMP error quoting an echo request: type, code, and the quoted id,
                // seq and destination
    Other,      // well-formed, but neither (an echo request, another ICMP type, an error
                // quoting something else)
    Malformed,  // too short, a bad IPv4 checksum, not ICMP
  };
  Kind kind = Kind::Malformed;
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t id = 0;
  std::uint16_t seq = 0;
  std::string_view payload;                    // EchoReply: the echoed data
  std::optional<int> ttl;                      // EchoReply on Ipv4Raw: the IP header's TTL
  std::optional<SockAddr> quoted_destination;  // Error: where the quoted request went
};

Packet parse_packet(Framing framing, std::string_view bytes);

// An echo request header: what the kernel returns with an error-queue entry of a ping
// socket (the start of the datagram the error is about). nullopt when it is not a request.
struct EchoHeader {
  std::uint16_t id = 0;
  std::uint16_t seq = 0;
};
std::optional<EchoHeader> parse_request_header(int family, std::string_view bytes);

// An ICMP error in words: "host unreachable", "time to live exceeded", "hop limit exceeded",
// "administratively prohibited", ... (`e.origin` says IPv4 or IPv6).
std::string error_text(const SocketError& e);

// ---- Times -------------------------------------------------------------------------------

// When a request was sent: both clocks, read right before sendto().
struct SendTime {
  std::chrono::nanoseconds realtime{};   // CLOCK_REALTIME, comparable to kernel stamps
  std::chrono::nanoseconds monotonic{};  // uv_hrtime
};
// When a reply was received: the kernel's software receive stamp (CLOCK_REALTIME) when the
// socket delivered one, and the monotonic time it was read.
struct ReceiveTime {
  std::optional<std::chrono::nanoseconds> kernel;
  std::chrono::nanoseconds monotonic{};
};
// The round-trip time: kernel stamp minus send time, so that loop latency does not inflate
// it; the monotonic difference when there is no stamp or the wall clock stepped in between
// (the stamp then falls outside [send, read]).
std::chrono::nanoseconds round_trip(const SendTime& sent, const ReceiveTime& received);

// ---- One run -------------------------------------------------------------------------------

struct Stats {
  unsigned sent = 0;                 // requests handed to the kernel
  unsigned received = 0;             // requests whose reply came back (first copy)
  unsigned duplicates = 0;           // further copies of a reply already counted
  unsigned reordered = 0;            // replies that came after the reply to a later request
  unsigned errors = 0;               // requests answered by an ICMP error
  unsigned ignored = 0;              // replies with our identifier that are not this run's
  RttStats rtt;                      // of the replies counted, in arrival order
  std::optional<int> reply_ttl;      // of the last reply counted
  std::optional<SocketError> error;  // the last ICMP error for one of our requests

  unsigned lost() const { return sent - received; }
  double loss_percent() const { return sent ? 100.0 * lost() / sent : 0; }
};

// The requests of one run and what came back for them. A reply counts when it comes from
// the target, carries the check's identifier and the sequence number of a request of this
// run, and echoes this run's payload (its cookie) exactly; anything else is ignored.
class Tracker {
 public:
  enum class Match : std::uint8_t {
    Reply,      // the first reply to one of our requests
    Duplicate,  // another copy of a reply already counted
    Error,      // an ICMP error for one of our requests that was still waiting
    Ignored,    // not ours, not this run's, or about a request already settled
  };

  // Starts a run: replies must come from `target`, with `id` and `payload`.
  void begin(const SockAddr& target, std::uint16_t id, std::string payload);
  // Request `seq` was handed to the kernel at `at`.
  void on_sent(std::uint16_t seq, SendTime at);
  // An echo reply (`p` parsed as Packet::Kind::EchoReply) from `from`. `ttl` is the reply's
  // TTL or hop limit when the socket said (else the packet's own, for IPv4 raw).
  Match on_reply(const SockAddr& from, const Packet& p, ReceiveTime at, std::optional<int> ttl);
  // An ICMP error `e` about the request (id, seq) sent to `destination` (nullopt: the
  // socket only reports errors about its own requests, as ping sockets do).
  Match on_error(std::uint16_t id, std::uint16_t seq, const std::optional<SockAddr>& destination,
                 const SocketError& e);

  // Every request sent has its reply or its error.
  bool settled() const { return waiting_ == 0; }
  const Stats& stats() const { return stats_; }
  const std::string& payload() const { return payload_; }

 private:
  enum class State : std::uint8_t { Waiting, Replied, Failed };
  struct Request {
    std::uint16_t seq = 0;
    SendTime sent;
    State state = State::Waiting;
  };
  // The request of this run with sequence number `seq`, or nullptr.
  Request* find(std::uint16_t seq);

  SockAddr target_;
  std::uint16_t id_ = 0;
  std::string payload_;
  std::vector<Request> requests_;  // in send order
  unsigned waiting_ = 0;
  std::size_t highest_replied_ = 0;  // index + 1 of the latest request replied to
  Stats stats_;
};

// ---- The verdict ---------------------------------------------------------------------------

struct Limits {
  unsigned max_loss = 100;              // percent of the requests that may go unanswered
  std::chrono::milliseconds max_rtt{};  // the highest average RTT; 0: none
};

// What a run's statistics mean (at its end, or at the deadline):
//   no reply, some ICMP error   -> Unreachable, "host unreachable from 10.200.0.2"
//   no reply                    -> Timeout, "0/3 replies (100% loss)"
//   loss above max_loss         -> Unexpected, "1/3 replies (67% loss, above max_loss 20%)"
//   average RTT above max_rtt   -> Unexpected, "3/3 replies, rtt ...; average above max_rtt 5ms"
//   otherwise                   -> Ok, "3/3 replies, rtt min/avg/max 0.031/0.040/0.052 ms"
std::pair<Status, std::string> verdict(const Stats& s, const Limits& limits);

}  // namespace netmond::icmp
