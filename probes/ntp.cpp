#include "ntp.h"

#include "base/address.h"
#include "base/datagram.h"
#include "base/duration.h"
#include "base/random.h"
#include "base/uv.h"
#include "network_probe.h"
#include "ntp_packet.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

namespace netmond {

namespace {

// The most requests one run may send: ntpdate's limit (its -p takes 1 to 8 samples).
constexpr unsigned kMaxSamples = 8;
constexpr std::chrono::milliseconds kMaxSpacing = std::chrono::minutes(1);
// A header with room for extension fields; a longer datagram is judged on its first bytes.
constexpr std::size_t kReceiveBuffer = 1024;

timespec realtime() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// A transmit timestamp nobody can guess (the kernel's randomness), never zero: the origin
// a server echoes back must prove it saw this very request.
// getrandom(2), not a std::random_device per request (~20 µs each to construct here).
NtpTimestamp random_nonce() {
  NtpTimestamp n = 0;
  while (n == 0) n = random_u64();
  return n;
}

// recv() of one datagram with its SO_TIMESTAMPNS kernel receive time in *stamp (left
// empty when the kernel gave none). Returns its full length or a negative errno.
long receive_stamped(int fd, char* buf, std::size_t size, std::optional<timespec>* stamp) {
  iovec iov{buf, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec)) + 64];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
        c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      *stamp = ts;
    }
  }
  return static_cast<long>(n);
}

std::string describe_kiss(const std::string& code) {
  std::string_view meaning = ntp_kiss_meaning(code);
  return meaning.empty() ? "kiss code " + code : fmt::format("kiss code {} ({})", code, meaning);
}

// One run: resolve the server (NetworkProbe), then `samples` requests, `spacing` apart, from
// one connected socket: the last run's when that run succeeded, else a fresh one. The run ends when
// every request has its answer, at the first answer that settles it (a kiss, an unsynchronised
// server, an ICMP error), or at the deadline, which reports the best answer so far.
class NtpProbe final : public NetworkProbe {
 public:
  NtpProbe(ProbeContext& ctx, Endpoint endpoint, NtpSpec spec)
      : NetworkProbe(ctx, std::move(endpoint), spec.port),
        spec_(std::move(spec)),
        spacing_timer_(ctx.loop) {}
  ~NtpProbe() override { close_io(); }

  // DENY and RSTR hold "until the next reload": the operator's way to say "try again".
  // RATE back-off is the server's to lift, so it stays.
  void reloaded() override {
    stop_code_.clear();
    stop_text_.clear();
  }

 private:
  struct Request {
    NtpTimestamp nonce = 0;
    NtpTimestamp t1 = 0;  // local time right before the send
    bool answered = false;
  };
  struct Answer {
    NtpPacket packet;
    NtpSample sample;
  };

  void on_target() override;
  Result expire_io() override;
  void close_io() override;
  void add_details(Result& r) const override;

  // Ends the run at once when a kiss-o'-death forbids querying now; true if it did.
  bool held_off();
  // Sends the requests due now and arms the timer for the next one.
  void send_due();
  // Opens the socket unless the last run's is kept; false when that failed (the run ended).
  bool open_socket();
  // Sends one request; false when that failed (the run ended).
  bool send_request();
  void fail_socket(int rc, DatagramSocket::Step step);
  void on_readable();
  // This run's request whose nonce is `origin`, or nullptr.
  Request* request_for(NtpTimestamp origin);
  // Judges one datagram; false when reading must stop (the run is settled).
  bool on_datagram(std::string_view bytes, NtpTimestamp t4);
  void on_kiss(const NtpResponse& response);
  void on_error(const SocketError& e);
  // What the answers so far say: the best sample judged against the limits, or why none.
  std::pair<Status, std::string> verdict() const;

  const NtpSpec spec_;

  // Kiss-o'-death state: kept across runs (DENY/RSTR until reloaded()).
  std::string stop_code_;     // DENY or RSTR received: no query until the next reload
  std::string stop_text_;     // "kiss code DENY (access denied by the server) from 127.0.0.1:123"
  unsigned rate_kisses_ = 0;  // RATE kisses in a row
  std::chrono::nanoseconds quiet_until_{};  // after RATE: no query before this (uv::now)
  std::string rate_text_;

  // This run.
  std::vector<Request> requests_;
  std::optional<Answer> best_;  // the answer with the lowest delay
  unsigned sent_ = 0;           // requests handed to the kernel
  unsigned answered_ = 0;
  unsigned stale_ = 0;  // replies with another origin timestamp
  unsigned bogus_ = 0;  // datagrams that were no usable reply
  std::string last_bogus_;
  std::optional<NtpPacket> settled_by_;  // the kiss or rejected answer that ended the run
  std::string kiss_;
  std::optional<SocketError> icmp_;
  uv::Timer spacing_timer_;
  // Kept across runs that succeed (close_io()); the poll inside points back here.
  DatagramSocket socket_;
};

void NtpProbe::on_target() {
  if (held_off() || !open_socket()) return;
  send_due();
}

bool NtpProbe::open_socket() {
  auto on_readable = [this] { this->on_readable(); };
  auto on_error = [this](const SocketError& e) { this->on_error(e); };
  if (socket_.connected_to(target())) {
    // The last run's socket. What reached it since is dropped unread (a late answer would
    // be stale anyway: every request carries a nonce of its own).
    socket_.resume(std::move(on_readable), std::move(on_error));
    return true;
  }
  int rc = socket_.open(loop(), target().family(), source() ? &*source() : nullptr,
                        endpoint().interface, std::move(on_readable), std::move(on_error));
  if (rc != 0) {
    fail_socket(rc, socket_.failed_step());
    return false;
  }
  // T4 from the kernel's receive stamp; without it, from the clock when the datagram is read.
  int on = 1;
  ::setsockopt(socket_.fd(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  if (rc = socket_.connect(target()); rc != 0) {
    fail_socket(rc, DatagramSocket::Step::Connect);
    return false;
  }
  return true;
}

bool NtpProbe::held_off() {
  if (!stop_code_.empty()) {
    kiss_ = stop_code_;
    finish(Status::KissOfDeath,
           "not queried: " + stop_text_ + "; no query until the next reload or restart");
    return true;
  }
  const auto now = uv::now();
  if (now >= quiet_until_) return false;
  kiss_ = "RATE";
  const auto left = std::chrono::ceil<std::chrono::seconds>(quiet_until_ - now);
  finish(Status::KissOfDeath,
         fmt::format("not queried: backing off after {} ({} in a row); next query in {}",
                     rate_text_, rate_kisses_, format_duration(left)));
  return true;
}

void NtpProbe::send_due() {
  do {
    if (!send_request()) return;
  } while (spec_.spacing.count() == 0 && requests_.size() < spec_.samples);
  if (requests_.size() < spec_.samples) spacing_timer_.start(spec_.spacing, [this] { send_due(); });
}

bool NtpProbe::send_request() {
  Request& r = requests_.emplace_back();
  r.nonce = random_nonce();
  const std::string request = encode_ntp(ntp_request(r.nonce));
  r.t1 = ntp_from_timespec(realtime());
  const long n = socket_.send(request.data(), request.size());
  if (n >= 0) {
    ++sent_;
    return true;
  }
  fail_socket(static_cast<int>(n), DatagramSocket::Step::Connect);
  return false;
}

void NtpProbe::fail_socket(int rc, DatagramSocket::Step step) {
  if (finish_setup_failure(step, rc, "a UDP socket")) return;
  const std::string to = target().with_port();
  const std::string why = uv::error_text(rc);
  switch (-rc) {
    case ENETUNREACH:
    case EADDRNOTAVAIL: return finish(Status::Unreachable, "network unreachable (" + to + ")");
    case EHOSTUNREACH: return finish(Status::Unreachable, "host unreachable (" + to + ")");
    // An ICMP error for an earlier request of this run can surface on send().
    case ECONNREFUSED: return finish(Status::Refused, "port unreachable (" + to + ")");
    default: return finish(Status::LocalError, "cannot send to " + to + ": " + why);
  }
}

void NtpProbe::on_readable() {
  char buf[kReceiveBuffer];
  for (;;) {
    std::optional<timespec> stamp;
    const long n = receive_stamped(socket_.fd(), buf, sizeof buf, &stamp);
    if (n == -EAGAIN || n == -EWOULDBLOCK) return;
    if (n < 0) {
      SocketError e;
      e.error = static_cast<int>(-n);
      return on_error(e);  // may end the run
    }
    const NtpTimestamp t4 = ntp_from_timespec(stamp ? *stamp : realtime());
    const auto size = std::min(static_cast<std::size_t>(n), sizeof buf);
    if (!on_datagram(std::string_view(buf, size), t4)) return;
  }
}

NtpProbe::Request* NtpProbe::request_for(NtpTimestamp origin) {
  for (Request& r : requests_)
    if (r.nonce == origin) return &r;
  return nullptr;
}

bool NtpProbe::on_datagram(std::string_view bytes, NtpTimestamp t4) {
  // The request it answers is the one whose nonce it carries as its origin timestamp;
  // judged against the last request sent when it names none, which makes it Stale (or
  // Bogus, for what fails before that test).
  if (requests_.empty()) return true;  // nothing asked yet: nothing can answer
  const std::optional<NtpPacket> peek = decode_ntp(bytes);
  Request* r = peek ? request_for(peek->origin) : nullptr;
  // Only the first answer to a request counts; a repeat is not read further.
  if (r != nullptr && r->answered) return true;
  NtpResponse response = judge_ntp_response(bytes, r ? r->nonce : requests_.back().nonce);
  switch (response.kind) {
    case NtpResponse::Kind::Bogus:
      ++bogus_;
      last_bogus_ = std::move(response.reason);
      return true;
    case NtpResponse::Kind::Stale: ++stale_; return true;
    case NtpResponse::Kind::Kiss: on_kiss(response); return false;
    case NtpResponse::Kind::Rejected:
      rate_kisses_ = 0;
      settled_by_ = response.packet;
      finish(response.status, response.reason);
      return false;
    case NtpResponse::Kind::Good: break;
  }
  rate_kisses_ = 0;
  r->answered = true;
  ++answered_;
  Answer a{*response.packet, ntp_sample(*response.packet, r->t1, t4)};
  if (!best_ || a.sample.delay < best_->sample.delay) best_ = a;
  if (answered_ == spec_.samples) {
    auto [status, message] = verdict();
    finish(status, std::move(message));
    return false;
  }
  return true;
}

void NtpProbe::on_kiss(const NtpResponse& response) {
  kiss_ = response.kiss;
  settled_by_ = response.packet;
  const std::string text = describe_kiss(response.kiss) + " from " + target().with_port();
  switch (ntp_kiss_action(response.kiss)) {
    case NtpKissAction::SlowDown: {
      ++rate_kisses_;
      const std::chrono::seconds hold = ntp_rate_backoff(rate_kisses_);
      quiet_until_ = uv::now() + hold;
      rate_text_ = text;
      return finish(Status::KissOfDeath, text + ": no query for " + format_duration(hold));
    }
    case NtpKissAction::Stop:
      stop_code_ = response.kiss;
      stop_text_ = text;
      return finish(Status::KissOfDeath, text + ": no query until the next reload or restart");
    case NtpKissAction::None: return finish(Status::KissOfDeath, text);
  }
}

void NtpProbe::on_error(const SocketError& e) {
  // An ICMP error quotes the request that caused it: one that is not this run's (on a kept
  // socket) says nothing of this run.
  if (auto quoted = decode_ntp(e.payload); quoted && request_for(quoted->transmit) == nullptr)
    return;
  if (e.icmp()) icmp_ = e;
  const std::string to = target().with_port();
  if (e.port_unreachable()) return finish(Status::Refused, "port unreachable (" + to + ")");
  if (e.destination_unreachable())
    return finish(Status::Unreachable, e.unreachable_text() + " (" + e.describe() + ")");
  if (!e.icmp() && (e.error == ENETUNREACH || e.error == EHOSTUNREACH))
    return finish(Status::Unreachable, std::string(e.error == ENETUNREACH ? "network" : "host") +
                                           " unreachable (" + to + ")");
  // Anything else (time exceeded, a local error) says nothing sure about the server: keep
  // waiting for an answer or the deadline.
}

std::pair<Status, std::string> NtpProbe::verdict() const {
  if (best_) {
    const NtpPacket& p = best_->packet;
    const NtpSample& s = best_->sample;
    const std::string offset = format_ntp_offset(s.offset);
    const std::string ref = ntp_reference_text(p.stratum, p.reference_id);
    const std::string of =
        spec_.samples > 1 ? fmt::format(", best of {}/{} samples", answered_, spec_.samples) : "";
    const double limit = std::chrono::duration<double>(spec_.max_offset).count();
    if (std::fabs(s.offset) > limit)
      return {Status::Unexpected,
              fmt::format("offset {} exceeds max_offset {} (delay {:.6f} s, stratum {}, ref {}{})",
                          offset, format_duration(spec_.max_offset), s.delay, p.stratum, ref, of)};
    if (p.stratum > spec_.max_stratum)
      return {Status::Unexpected,
              fmt::format("stratum {} exceeds max_stratum {} (offset {}, delay {:.6f} s, ref {}{})",
                          p.stratum, spec_.max_stratum, offset, s.delay, ref, of)};
    return {Status::Ok, fmt::format("offset {}, delay {:.6f} s, stratum {}, ref {}{}", offset,
                                    s.delay, p.stratum, ref, of)};
  }
  const std::string from = target().with_port();
  const std::string within = format_duration(timeout());
  if (bogus_ > 0)
    return {Status::BadResponse,
            fmt::format("no valid response from {} within {}: {} bogus datagram{}, the last: {}",
                        from, within, bogus_, bogus_ == 1 ? "" : "s", last_bogus_)};
  std::string m = fmt::format("no response from {} within {}", from, within);
  if (stale_ > 0)
    m += fmt::format(" ({} repl{} with a wrong origin timestamp ignored)", stale_,
                     stale_ == 1 ? "y" : "ies");
  return {Status::Timeout, std::move(m)};
}

Result NtpProbe::expire_io() {
  auto [status, message] = verdict();
  return make_result(status, std::move(message));
}

void NtpProbe::close_io() {
  spacing_timer_.stop();
  // The socket is kept for the next run only after a run that succeeded; any other run is
  // measured again from a fresh socket (and source address and port).
  if (ending_status() == Status::Ok)
    socket_.idle();
  else
    socket_.close();
  requests_.clear();
  best_.reset();
  sent_ = answered_ = stale_ = bogus_ = 0;
  last_bogus_.clear();
  settled_by_.reset();
  kiss_.clear();
  icmp_.reset();
}

void NtpProbe::add_details(Result& r) const {
  if (!kiss_.empty()) r.add("kiss_code", kiss_);
  if (best_) {
    r.add("offset_s", best_->sample.offset);
    r.add("delay_s", best_->sample.delay);
  }
  const NtpPacket* p = best_ ? &best_->packet : settled_by_ ? &*settled_by_ : nullptr;
  if (p != nullptr) {
    r.add("stratum", p->stratum);
    r.add("reference_id", ntp_reference_text(p->stratum, p->reference_id));
    r.add("leap", p->leap);
    r.add("root_delay_s", ntp_short_seconds(p->root_delay));
    r.add("root_dispersion_s", ntp_short_seconds(p->root_dispersion));
    r.add("poll", p->poll);
    r.add("precision", p->precision);
  }
  if (sent_ > 0) {
    r.add("sent", sent_);
    r.add("answered", answered_);
  }
  if (stale_ > 0) r.add("stale", stale_);
  if (bogus_ > 0) r.add("bogus", bogus_);
  if (icmp_) {
    r.add("icmp_type", icmp_->type);
    r.add("icmp_code", icmp_->code);
    if (icmp_->offender) r.add("icmp_from", icmp_->offender->ip());
  }
}

}  // namespace

std::string NtpSpec::name_suffix() const {
  return port == kNtpDefaultPort ? "ntp" : "ntp:" + std::to_string(port);
}

bool parse(Params& p, NtpSpec* out) {
  std::string s;
  if (p.get("server", &s)) {
    if (!s.empty() && (parse_ip(s) || valid_hostname(s)))
      out->server = s;
    else
      p.error("server", fmt::format("'{}' is not an IP address or a hostname", s));
  }
  p.get_port("port", &out->port);
  std::chrono::milliseconds d{};
  if (p.get_duration("max_offset", &d)) {
    if (d.count() <= 0)
      p.error("max_offset", "max_offset must be longer than 0");
    else
      out->max_offset = d;
  }
  p.get("max_stratum", &out->max_stratum, 1, 15);
  p.get("samples", &out->samples, 1, kMaxSamples);
  p.get_duration("spacing", &out->spacing, kMaxSpacing);
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const NtpSpec& s) {
  return host_port(s.server.empty() ? e.host : s.server, s.port);
}

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const NtpSpec& s) {
  Endpoint to = e;
  if (!s.server.empty()) to.host = s.server;
  return std::make_unique<NtpProbe>(ctx, std::move(to), s);
}

}  // namespace netmond
