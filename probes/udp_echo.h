// udp_echo: does an RFC 862 echo service send back exactly what it was sent?
//
// Two layers, shared by the daemon's probe and `netmonctl echo`:
//  - EchoExchange, the engine: sends `count` requests from one connected socket (UDP, or
//    TCP for the client's --tcp), each one the user's message followed by a trailer that
//    carries a per-run random nonce, a sequence number and the send time; matches every
//    reply byte for byte against the request of that sequence number; reports each event
//    (echo, duplicate, out of order, mismatch, late, stale, timeout, ICMP error) and keeps
//    the statistics (RTT min/avg/max/mdev, jitter, loss).
//  - UdpEchoProbe (make_probe): one exchange per run, the check's deadline as its bound.
//      every request echoed           -> Ok, "echoed 27 bytes in 0.18 ms"
//      ICMP port unreachable          -> Refused, "port unreachable"
//      other ICMP unreachables        -> Unreachable, with the ICMP type and the sender
//      only wrong payloads came back  -> BadResponse, "payload mismatch (got 12 bytes, expected
//      27)" silence until the deadline     -> Timeout, "no echo within 2s"
//    A wrong or stale datagram never ends a run early: it is counted and the run keeps
//    waiting for the right one until the deadline (keepalived, chrony).
#pragma once

#include "base/address.h"
#include "base/datagram.h"
#include "base/uv.h"
#include "params.h"
#include "probe.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netmond {

// netmond-echo's port, the seed's.
inline constexpr std::uint16_t kEchoDefaultPort = 10100;

struct UdpEchoSpec {
  static constexpr std::string_view kType = "udp_echo";
  std::uint16_t port = kEchoDefaultPort;
  std::string message = "netmond echo check";  // sent before the trailer
  unsigned count = 1;                          // requests per run, 1..100
  std::chrono::milliseconds spacing{200};      // between the requests of one run
  unsigned size = 0;      // pad every request to this many bytes; 0: message + trailer
  unsigned max_loss = 0;  // percent of the requests that may go unechoed (count > 1)
  bool operator==(const UdpEchoSpec&) const = default;
  std::string name_suffix() const;  // "udp_echo:10100"
};

bool parse(Params& p, UdpEchoSpec* out);
std::string describe_target(const Endpoint& e, const UdpEchoSpec& s);
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const UdpEchoSpec& s);

// ---- The request payload (pure) ----------------------------------------------------------
//
// A request is MESSAGE, then padding up to the requested size, then the trailer
//   " #netmond NNNNNNNNNNNNNNNN SSSSSSSS TTTTTTTTTTTTTTTT"
// with the run's nonce, the sequence number and the sender's monotonic send time in
// nanoseconds, in fixed-width lower-case hex. Plain text of a fixed size: it survives any
// RFC 862 server (inetd, socat) and reads well in tcpdump. The trailer sits at the end so
// that a reply can be attributed whatever the message contains.

struct EchoStamp {
  std::uint64_t nonce = 0;
  std::uint32_t seq = 0;
  std::uint64_t sent_ns = 0;
  bool operator==(const EchoStamp&) const = default;
};

inline constexpr std::size_t kEchoTrailerSize = 52;
// The largest UDP payload over IPv4.
inline constexpr std::size_t kEchoMaxSize = 65507;

// The size of every request for `message` padded to `size` (0: no padding).
std::size_t echo_request_size(std::string_view message, std::size_t size);
// Why `message` with `size` cannot be sent ("size 40 is below the 70 bytes ..."), or "".
std::string echo_size_problem(std::string_view message, std::size_t size);
// The request for `stamp`. `size` must be 0 or at least message + trailer.
std::string encode_echo_request(std::string_view message, const EchoStamp& stamp,
                                std::size_t size = 0);
// The stamp at the end of `payload`; nullopt when there is no well-formed trailer.
std::optional<EchoStamp> parse_echo_stamp(std::string_view payload);

// ---- Statistics (pure) -------------------------------------------------------------------

// Round-trip times as ping reports them: min/avg/max/mdev (mdev: the population standard
// deviation, as iputils computes it), plus jitter, the mean absolute difference of
// consecutive RTTs in the order they were measured (RFC 3550 §6.4.1 without its 1/16
// smoothing).
class RttStats {
 public:
  void add(std::chrono::nanoseconds rtt);
  unsigned count() const { return count_; }
  double min_ms() const { return count_ ? min_ms_ : 0; }
  double max_ms() const { return count_ ? max_ms_ : 0; }
  double avg_ms() const;
  double mdev_ms() const;
  double jitter_ms() const;  // 0 with fewer than two RTTs

 private:
  unsigned count_ = 0;
  double min_ms_ = 0, max_ms_ = 0, sum_ms_ = 0, sum_sq_ms_ = 0;
  double last_ms_ = 0, jitter_sum_ms_ = 0;
};

// An RTT as ping writes one, three significant digits: "0.143 ms", "12.3 ms", "105 ms".
std::string format_rtt(double ms);
std::string format_rtt(std::chrono::nanoseconds rtt);
// format_rtt's text, appended to `out`.
void append_rtt(std::string& out, double ms);

struct EchoStats {
  unsigned sent = 0;        // requests handed to the kernel
  unsigned echoed = 0;      // requests whose exact payload came back in time
  unsigned mismatched = 0;  // replies that differ from what was sent (datagrams; TCP: requests)
  unsigned duplicates = 0;  // further copies of an echo already counted
  unsigned reordered = 0;   // echoes that arrived after the echo of a later request
  unsigned late = 0;        // echoes that arrived after their request had timed out
  unsigned stale = 0;       // echoes of another run (another nonce): ignored
  unsigned errors = 0;      // requests answered by an ICMP error, or that could not be sent
  RttStats rtt;             // of the echoed requests, in arrival order
  // Requests not echoed correctly in time (while running, those in flight too).
  unsigned lost() const { return sent - echoed; }
};

// ---- The engine ----------------------------------------------------------------------------

struct EchoEvent {
  enum class Kind : std::uint8_t {
    Echo,         // a request's exact payload came back (reordered: after a later one's)
    Duplicate,    // another copy of an echo already counted
    Late,         // the exact payload came back after the request had timed out
    Mismatch,     // a reply that is not what was sent (seq set when it can be attributed)
    Stale,        // a well-formed echo of another run: ignored
    Timeout,      // the request's own timeout passed without its echo
    Unreachable,  // an ICMP error or a refused/failed connection answered the request
    Error,        // the exchange cannot go on (send failed, TCP stream closed or out of step)
  };
  Kind kind = Kind::Echo;
  std::optional<std::uint32_t> seq;
  std::size_t bytes = 0;     // the reply's size (Echo, Duplicate, Late, Mismatch, Stale)
  std::size_t expected = 0;  // the request's size (Mismatch)
  std::optional<std::size_t> first_difference;  // Mismatch of equal sizes: the first byte off
  std::chrono::nanoseconds rtt{};               // Echo, Duplicate, Late
  bool reordered = false;                       // Echo
  Status status = Status::Ok;                   // Unreachable, Error: Refused, Unreachable, ...
  std::string text;                             // Unreachable, Error: "port unreachable", ...
  std::optional<SocketError> icmp;              // Unreachable from an ICMP error
};

struct EchoExchangeOptions {
  std::string message;
  std::size_t size = 0;                // see encode_echo_request
  unsigned count = 1;                  // 0: until drain() or stop()
  std::chrono::nanoseconds spacing{};  // between requests
  std::chrono::nanoseconds timeout{};  // per request; 0: none, the owner's deadline bounds it
  bool tcp = false;                    // RFC 862 over TCP (one connection) instead of UDP
  std::optional<SockAddr> source;      // bind to this local address
  std::string interface;               // SO_BINDTODEVICE
  // UDP: stop() keeps the socket (reading and dropping what arrives), and the next start()
  // to the same target, source and interface reuses it. The nonce of each run tells its
  // echoes from a late one of an earlier run. close() closes it.
  bool keep_socket = false;
};

// One exchange of requests with an echo server. Single-threaded, on the loop it was given.
class EchoExchange {
 public:
  using EventFn = std::function<void(const EchoEvent&)>;
  using DoneFn = std::function<void()>;
  using Step = SocketStep;  // None, Socket, Option, Device, Bind, Connect or Watch

  explicit EchoExchange(uv_loop_t* loop);
  ~EchoExchange();
  EchoExchange(const EchoExchange&) = delete;
  EchoExchange& operator=(const EchoExchange&) = delete;

  // Opens a fresh socket to `target` (bound as `options` say), or takes the kept one (see
  // keep_socket), with a new random nonce, and sends the first request at once (a failure
  // to send it is reported from the loop), then one every `spacing`. `on_event`
  // runs for every event, on the loop; `on_done` once, when no request is due any more and
  // every one sent has settled (echoed, timed out, answered by an error), or when an Error
  // ended the exchange. Either may stop() or destroy the exchange. Returns 0 or a negative
  // errno (failed_step() says which step); then neither callback ever runs.
  int start(const SockAddr& target, EchoExchangeOptions options, EventFn on_event, DoneFn on_done);
  // Sends no further request; on_done follows once those in flight have settled (at once,
  // inside drain(), when none is in flight).
  void drain();
  // Stops the timers and closes the socket, unless keep_socket asks to keep it; no
  // callback runs afterwards. Safe when idle. The statistics stay until the next start().
  void stop();
  // stop(), and closes a kept socket too.
  void close();

  bool running() const { return running_; }
  const EchoStats& stats() const { return stats_; }
  std::size_t request_size() const { return send_buffer_.size(); }
  Step failed_step() const { return failed_step_; }

 private:
  enum class State : std::uint8_t { Pending, Echoed, TimedOut, LateEchoed, Failed };
  struct Request {
    std::chrono::nanoseconds sent{};
    State state = State::Pending;
  };
  class Stream;  // the TCP transport

  int open_udp(const SockAddr& target);
  bool more_to_send() const;
  void on_send_tick();
  // Sends the next request; what to report when it could not be sent (an Unreachable
  // event, or an Error that ends the exchange).
  std::optional<EchoEvent> send_next();
  // Reports what send_next returned; false when the exchange ended or was stopped.
  bool report_send_failure(EchoEvent failure);
  Request* find(std::uint32_t seq);
  // The request `seq` sent at `sent`, byte for byte (regenerated: nothing is stored).
  std::string request_bytes(std::uint32_t seq, std::chrono::nanoseconds sent) const;
  // Whether `payload`, whose trailer parsed as `stamp`, is this run's request of stamp.seq
  // sent at `sent`, byte for byte.
  bool is_request(std::string_view payload, const EchoStamp& stamp,
                  std::chrono::nanoseconds sent) const;
  void on_datagrams();
  // These return false when a callback stopped or destroyed the exchange.
  bool on_datagram(std::string_view payload);
  bool on_stream_data(std::string_view data);
  bool on_reply(std::uint32_t seq, Request* r, std::chrono::nanoseconds sent, std::size_t bytes);
  bool emit(EchoEvent e);
  void on_socket_error(const SocketError& e);
  void arm_timeout();
  void on_timer();
  // Ends the exchange with an Error event, then on_done.
  void fail(Status status, std::string text);
  // Calls on_done when nothing is due and nothing is in flight.
  void maybe_done();

  uv_loop_t* loop_;
  EchoExchangeOptions options_;
  EventFn on_event_;
  DoneFn on_done_;
  bool running_ = false;
  bool draining_ = false;
  bool receiving_ = false;  // reading what is queued: on_done waits until all is read
  Step failed_step_ = Step::None;
  std::uint64_t nonce_ = 0;
  // The request being sent: the message and its padding (prefix_length_ bytes, kept from
  // run to run while prefix_message_ and prefix_size_ stay), then the trailer.
  std::string send_buffer_;
  std::size_t prefix_length_ = 0;
  std::string prefix_message_;
  std::size_t prefix_size_ = 0;
  // The first request's send failed inside start(): reported from the send timer.
  std::optional<EchoEvent> send_failure_;
  std::uint32_t next_seq_ = 1;   // the next request's sequence number
  std::uint32_t first_seq_ = 1;  // requests_[0]'s
  std::uint32_t highest_echoed_ = 0;
  std::deque<Request> requests_;  // recent requests by seq, pending ones all included
  unsigned pending_ = 0;
  EchoStats stats_;
  // TCP: the requests sent whose echo is still to come in full, in order (seq, send time);
  // the first one's bytes, and how many of them have come back.
  std::deque<std::pair<std::uint32_t, std::chrono::nanoseconds>> stream_expect_;
  std::string stream_front_;
  std::size_t stream_matched_ = 0;
  // Declared after what their callbacks use, so they are closed first.
  DatagramSocket udp_;
  // What udp_ was bound with, to tell whether a start() may reuse it.
  std::optional<SockAddr> udp_source_;
  std::string udp_interface_;
  std::unique_ptr<Stream> tcp_;
  uv::Timer send_timer_;
  uv::Timer timeout_timer_;
  // Reset by stop() and destruction, so that code after a callback can tell.
  std::shared_ptr<char> alive_;
};

}  // namespace netmond
