#include "icmp.h"

#include "base/random.h"
#include "base/uv.h"
#include "icmp_packet.h"
#include "icmp_socket.h"
#include "network_probe.h"

#include <linux/errqueue.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace netmond {

bool parse(Params& p, IcmpSpec* out) {
  p.get("count", &out->count, 1, 100);
  if (p.get_duration("spacing", &out->spacing, std::chrono::minutes(1)) &&
      out->spacing < std::chrono::milliseconds(1))
    p.error("spacing", "spacing must be at least 1ms");
  p.get("size", &out->size, icmp::kMinPayload, icmp::kMaxPayload);  // the cookie takes 8
  p.get("ttl", &out->ttl, 1, 255);
  if (p.get_duration("max_rtt", &out->max_rtt, std::chrono::minutes(1)) &&
      out->max_rtt.count() == 0)
    p.error("max_rtt", "max_rtt must be more than 0 (leave it out for no limit)");
  p.get("max_loss", &out->max_loss, 0, 100);
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const IcmpSpec&) { return e.host; }

namespace {

// getrandom(2): a std::random_device made per run cost ~20 µs here (libstdc++ probes the
// CPU at each construction), a fifth of the probe's CPU (bench/run-icmp.sh, perf).
std::uint64_t random64() { return random_u64(); }

// One run: resolve the host (NetworkProbe), open an ICMP socket, send `count` requests
// `spacing` apart, and match what comes back until every request is settled or the deadline.
class IcmpProbe final : public NetworkProbe {
 public:
  IcmpProbe(ProbeContext& ctx, Endpoint endpoint, IcmpSpec spec)
      : NetworkProbe(ctx, std::move(endpoint), 0),
        spec_(spec),
        raw_sockets_(ctx.icmp),
        next_seq_(static_cast<std::uint16_t>(random64())),
        send_timer_(ctx.loop) {}
  ~IcmpProbe() override { close_io(); }

 private:
  void on_target() override;
  Result expire_io() override;
  void close_io() override;
  void add_details(Result& r) const override;

  void send_next();
  void on_datagram(const IcmpDatagram& d);
  void on_socket_error(const SocketError& e);
  // Ends the run when nothing is left to send and every request is settled.
  void maybe_done();
  std::pair<Status, std::string> verdict() const;

  const IcmpSpec spec_;
  const std::shared_ptr<const void> timestamps_ = hold_receive_timestamps();
  RawIcmpSockets& raw_sockets_;
  IcmpId id_;               // the check's identifier, for all its runs
  std::uint16_t next_seq_;  // continues across runs, so a late reply never fits a new run
  bool running_ = false;    // a run's socket is open; the tracker's stats are this run's
  unsigned to_send_ = 0;
  icmp::Tracker tracker_;
  // Declared after what their callbacks use, so they are closed first.
  IcmpSocket socket_;
  uv::Timer send_timer_;
};

void IcmpProbe::on_target() {
  IcmpSocket::Options o;
  o.family = target().family();
  o.source = source();
  o.device = endpoint().interface;
  o.ttl = spec_.ttl;
  o.payload = spec_.size;
  int rc = 0;
  for (int tries = 0;; ++tries) {
    o.id = id_.value();
    rc = socket_.open(
        loop(), raw_sockets_, o, [this](const IcmpDatagram& d) { on_datagram(d); },
        [this] { maybe_done(); }, [this](const SocketError& e) { on_socket_error(e); });
    // Another program's ping socket holds this identifier: draw another.
    if (rc != -EADDRINUSE || socket_.failed_step() != IcmpSocket::Step::Bind || tries == 8) break;
    id_.redraw();
  }
  if (rc != 0) return finish(Status::LocalError, socket_.error());
  running_ = true;
  tracker_.begin(target(), id_.value(), icmp::echo_payload(random64(), spec_.size));
  to_send_ = spec_.count;
  // Every request goes out within the first half of the timeout, so that each has at
  // least half of it to come back: the spacing shrinks when count x spacing would not fit.
  std::chrono::nanoseconds spacing = spec_.spacing;
  if (spec_.count > 1 && timeout() > std::chrono::milliseconds(0))
    spacing = std::min(spacing, std::chrono::nanoseconds(timeout()) / (2 * (spec_.count - 1)));
  spacing = std::max(spacing, std::chrono::nanoseconds(std::chrono::milliseconds(1)));
  send_next();
  if (running_ && to_send_ > 0)
    send_timer_.start(
        spacing, [this] { send_next(); }, spacing);
}

void IcmpProbe::send_next() {
  if (to_send_ == 0) return;
  if (--to_send_ == 0) send_timer_.stop();
  const std::uint16_t seq = next_seq_++;
  const std::string request =
      icmp::echo_request(target().family(), id_.value(), seq, tracker_.payload());
  icmp::SendTime at;
  const long n = socket_.send_to(target(), request, &at);
  const std::string to = target().ip();
  switch (n < 0 ? static_cast<int>(-n) : 0) {
    case 0:
    // The socket's buffer is full: the request is as good as lost.
    case EAGAIN:
    case ENOBUFS: tracker_.on_sent(seq, at); return;
    // The local routing table (an unreachable or prohibit route) or a local firewall said
    // no: every further request would meet the same.
    case EHOSTUNREACH:
      return finish(Status::Unreachable, "host unreachable (no route to " + to + ")");
    case ENETUNREACH:
      return finish(Status::Unreachable, "network unreachable (no route to " + to + ")");
    case EACCES:
    case EPERM:
      return finish(Status::Unreachable, "administratively prohibited (sending to " + to + ": " +
                                             uv::error_text(static_cast<int>(n)) + ")");
    default:
      return finish(Status::LocalError,
                    "cannot send to " + to + ": " + uv::error_text(static_cast<int>(n)));
  }
}

void IcmpProbe::on_datagram(const IcmpDatagram& d) {
  const icmp::Packet p = icmp::parse_packet(socket_.framing(), d.bytes);
  if (p.kind == icmp::Packet::Kind::EchoReply) {
    tracker_.on_reply(d.from, p, d.at, d.ttl);
  } else if (p.kind == icmp::Packet::Kind::Error) {
    // Raw sockets: the error itself, quoting our request; its sender is the offender.
    SocketError e;
    e.origin = target().family() == AF_INET6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
    e.type = p.type;
    e.code = p.code;
    e.offender = d.from;
    tracker_.on_error(p.id, p.seq, p.quoted_destination, e);
  }
  // Anything else is not ours (the shared raw socket passes only replies and errors with
  // our identifier, a ping socket only our replies: nothing else is expected). The run may
  // end once everything queued has been read (maybe_done, from the socket).
}

void IcmpProbe::on_socket_error(const SocketError& e) {
  // Ping sockets: an ICMP error about one of our requests, whose header comes with it.
  if (!e.icmp()) return;
  auto h = icmp::parse_request_header(target().family(), e.payload);
  if (!h) return;
  tracker_.on_error(h->id, h->seq, std::nullopt, e);
  maybe_done();
}

void IcmpProbe::maybe_done() {
  if (!running_ || to_send_ > 0 || !tracker_.settled()) return;
  auto [status, message] = verdict();
  finish(status, std::move(message));
}

std::pair<Status, std::string> IcmpProbe::verdict() const {
  return icmp::verdict(tracker_.stats(), icmp::Limits{spec_.max_loss, spec_.max_rtt});
}

Result IcmpProbe::expire_io() {
  // What came back by the deadline is the answer: replies within max_loss are a success.
  auto [status, message] = verdict();
  return make_result(status, std::move(message));
}

void IcmpProbe::close_io() {
  send_timer_.stop();
  socket_.close();
  running_ = false;
  to_send_ = 0;
}

void IcmpProbe::add_details(Result& r) const {
  if (!running_) return;
  const icmp::Stats& s = tracker_.stats();
  r.add("socket", socket_.kind() == IcmpSocket::Kind::Raw ? "raw" : "dgram");
  r.add("icmp_id", id_.value());
  r.add("bytes", spec_.size);
  r.add("sent", s.sent);
  r.add("received", s.received);
  r.add("loss", s.loss_percent());
  r.add("duplicates", s.duplicates);
  r.add("reordered", s.reordered);
  r.add("errors", s.errors);
  r.add("ignored", s.ignored);
  if (s.rtt.count() > 0) {
    r.add("rtt_ms", s.rtt.avg_ms());
    r.add("rtt_min_ms", s.rtt.min_ms());
    r.add("rtt_max_ms", s.rtt.max_ms());
    r.add("rtt_mdev_ms", s.rtt.mdev_ms());
    if (s.rtt.count() > 1) r.add("jitter_ms", s.rtt.jitter_ms());
  }
  if (s.reply_ttl) r.add("reply_ttl", *s.reply_ttl);
  if (s.error) {
    r.add("icmp_type", s.error->type);
    r.add("icmp_code", s.error->code);
    if (s.error->offender) r.add("icmp_from", s.error->offender->ip());
  }
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const IcmpSpec& s) {
  return std::make_unique<IcmpProbe>(ctx, e, s);
}

}  // namespace netmond
