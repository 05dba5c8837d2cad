#include "udp_echo.h"

#include "base/duration.h"
#include "base/random.h"
#include "network_probe.h"

#include <fmt/compile.h>
#include <fmt/format.h>
#include <linux/errqueue.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <iterator>
#include <span>
#include <utility>

namespace netmond {

namespace {

constexpr std::string_view kTrailerTag = " #netmond ";
constexpr std::string_view kPadding = "abcdefghijklmnopqrstuvwxyz";
// Requests remembered after they settled, to tell a duplicate or a late echo from a
// mismatch. Pending requests are always remembered.
constexpr std::size_t kWindow = 1024;
constexpr std::size_t kReceiveBuffer = 65536;

// One receive buffer for every exchange on this thread: each datagram or read is handled
// before the next is read into it, so no exchange needs its own (a 64 KiB buffer each
// made 1,000 udp_echo checks cost 64 MiB of resident memory).
std::span<char> receive_buffer() {
  thread_local std::array<char, kReceiveBuffer> buffer;
  return buffer;
}

// Fixed-width lower-case hex, as the trailer writes it: exactly one spelling per value, so
// that a stamp read back and written again gives the same bytes (is_request relies on it).
template <typename T>
bool parse_hex(std::string_view text, T* out) {
  T v = 0;
  for (char c : text) {
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else
      return false;
    v = static_cast<T>(v << 4 | digit);
  }
  *out = v;
  return true;
}

// Writes the trailer for `stamp` into `out` (kEchoTrailerSize bytes). By hand rather than
// through fmt: this runs for every request sent, and fmt's format-string parse cost more
// than the rest of the run.
void write_trailer(char* out, const EchoStamp& stamp) {
  char* p = std::copy(kTrailerTag.begin(), kTrailerTag.end(), out);
  auto hex = [&p](std::uint64_t v, int digits) {
    for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4)
      *p++ = "0123456789abcdef"[(v >> shift) & 0xf];
  };
  hex(stamp.nonce, 16);
  *p++ = ' ';
  hex(stamp.seq, 8);
  *p++ = ' ';
  hex(stamp.sent_ns, 16);
}

// MESSAGE and its padding up to `size`: everything of a request before the trailer.
std::string request_prefix(std::string_view message, std::size_t size) {
  std::string out(message);
  const std::size_t total = echo_request_size(message, size);
  for (std::size_t i = 0; out.size() + kEchoTrailerSize < total; ++i)
    out += kPadding[i % kPadding.size()];
  return out;
}

std::optional<std::size_t> first_difference(std::string_view a, std::string_view b) {
  auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (ia == a.end() && ib == b.end()) return std::nullopt;
  return static_cast<std::size_t>(ia - a.begin());
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace

// ---- Payload ---------------------------------------------------------------------------------

std::size_t echo_request_size(std::string_view message, std::size_t size) {
  return std::max(message.size() + kEchoTrailerSize, size);
}

std::string echo_size_problem(std::string_view message, std::size_t size) {
  const std::size_t need = message.size() + kEchoTrailerSize;
  if (need > kEchoMaxSize)
    return fmt::format(
        "the message is too long: with netmond's {}-byte trailer a request would be {} bytes, "
        "more than the {} a UDP datagram can carry",
        kEchoTrailerSize, need, kEchoMaxSize);
  if (size > kEchoMaxSize)
    return fmt::format("size {} is more than the {} bytes a UDP datagram can carry", size,
                       kEchoMaxSize);
  if (size != 0 && size < need)
    return fmt::format(
        "size {} is too small: the message and netmond's {}-byte trailer need {} bytes", size,
        kEchoTrailerSize, need);
  return "";
}

std::string encode_echo_request(std::string_view message, const EchoStamp& stamp,
                                std::size_t size) {
  std::string out = request_prefix(message, size);
  const std::size_t prefix = out.size();
  out.resize(prefix + kEchoTrailerSize);
  write_trailer(out.data() + prefix, stamp);
  return out;
}

std::optional<EchoStamp> parse_echo_stamp(std::string_view payload) {
  if (payload.size() < kEchoTrailerSize) return std::nullopt;
  std::string_view t = payload.substr(payload.size() - kEchoTrailerSize);
  if (!t.starts_with(kTrailerTag)) return std::nullopt;
  t.remove_prefix(kTrailerTag.size());
  // "NNNNNNNNNNNNNNNN SSSSSSSS TTTTTTTTTTTTTTTT"
  if (t[16] != ' ' || t[25] != ' ') return std::nullopt;
  EchoStamp s;
  if (!parse_hex(t.substr(0, 16), &s.nonce) || !parse_hex(t.substr(17, 8), &s.seq) ||
      !parse_hex(t.substr(26, 16), &s.sent_ns))
    return std::nullopt;
  return s;
}

// ---- Statistics --------------------------------------------------------------------------------

void RttStats::add(std::chrono::nanoseconds rtt) {
  const double ms = to_ms(rtt);
  if (count_ == 0) {
    min_ms_ = max_ms_ = ms;
  } else {
    min_ms_ = std::min(min_ms_, ms);
    max_ms_ = std::max(max_ms_, ms);
    jitter_sum_ms_ += std::abs(ms - last_ms_);
  }
  last_ms_ = ms;
  sum_ms_ += ms;
  sum_sq_ms_ += ms * ms;
  ++count_;
}

double RttStats::avg_ms() const { return count_ ? sum_ms_ / count_ : 0; }

double RttStats::mdev_ms() const {
  if (count_ == 0) return 0;
  const double avg = avg_ms();
  // Rounding can make the difference of two nearly equal sums slightly negative.
  return std::sqrt(std::max(0.0, sum_sq_ms_ / count_ - avg * avg));
}

double RttStats::jitter_ms() const { return count_ > 1 ? jitter_sum_ms_ / (count_ - 1) : 0; }

std::string format_rtt(std::chrono::nanoseconds rtt) { return format_rtt(to_ms(rtt)); }

std::string format_rtt(double ms) {
  std::string out;
  append_rtt(out, ms);
  return out;
}

void append_rtt(std::string& out, double ms) {
  // Compiled format strings: every echo and ping result is worded with one of these, and
  // parsing the format string at run time cost as much as the rest of the wording.
  auto to = std::back_inserter(out);
  if (ms < 1)
    fmt::format_to(to, FMT_COMPILE("{:.3f} ms"), ms);
  else if (ms < 10)
    fmt::format_to(to, FMT_COMPILE("{:.2f} ms"), ms);
  else if (ms < 100)
    fmt::format_to(to, FMT_COMPILE("{:.1f} ms"), ms);
  else
    fmt::format_to(to, FMT_COMPILE("{:.0f} ms"), ms);
}

// ---- The TCP transport -----------------------------------------------------------------------

// A non-blocking TCP connection watched by the loop: writes are queued and flushed when
// the socket can take them, reads are handed on as they come. Callbacks run only from the
// loop (never inside write()), and may destroy the Stream.
class EchoExchange::Stream {
 public:
  using DataFn = std::function<bool(std::string_view)>;  // false: the owner stopped
  using FailFn = std::function<void(Status, std::string)>;

  int open(uv_loop_t* loop, const SockAddr& target, const EchoExchangeOptions& o, Step* step,
           DataFn on_data, FailFn on_fail);
  void write(std::string_view bytes);

 private:
  void on_poll(int status, int events);
  bool flush();
  void watch();
  void failed(int err);

  // The poll must be closed before the fd: fd_ is declared first, destroyed last.
  Fd fd_;
  uv::Poll poll_;
  bool connected_ = false;
  std::string out_;
  std::size_t out_done_ = 0;
  DataFn on_data_;
  FailFn on_fail_;
};

int EchoExchange::Stream::open(uv_loop_t* loop, const SockAddr& target,
                               const EchoExchangeOptions& o, Step* step, DataFn on_data,
                               FailFn on_fail) {
  auto fail = [&](Step s) {
    int err = -errno;
    *step = s;
    fd_.reset();
    return err;
  };
  fd_.reset(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd_) return fail(Step::Socket);
  if (!o.interface.empty() &&
      setsockopt(fd_.get(), SOL_SOCKET, SO_BINDTODEVICE, o.interface.c_str(),
                 static_cast<socklen_t>(o.interface.size())) != 0)
    return fail(Step::Device);
  if (o.source && ::bind(fd_.get(), o.source->get(), o.source->length) != 0)
    return fail(Step::Bind);
  if (::connect(fd_.get(), target.get(), target.length) == 0)
    connected_ = true;
  else if (errno != EINPROGRESS)
    return fail(Step::Connect);
  on_data_ = std::move(on_data);
  on_fail_ = std::move(on_fail);
  if (int rc = poll_.init(loop, fd_.get()); rc != 0) {
    *step = Step::Socket;
    fd_.reset();
    return rc;
  }
  watch();
  return 0;
}

void EchoExchange::Stream::write(std::string_view bytes) {
  out_.append(bytes);
  watch();  // sent from the loop, so that a failure is never reported inside write()
}

void EchoExchange::Stream::watch() {
  int events = UV_READABLE;
  if (!connected_ || out_done_ < out_.size()) events |= UV_WRITABLE;
  poll_.start(events, [this](int status, int ev) { on_poll(status, ev); });
}

void EchoExchange::Stream::on_poll(int status, int events) {
  if (status < 0) {  // POLLERR: the connection failed (libuv stopped watching)
    int err = socket_error(fd_.get());
    return failed(err != 0 ? err : ECONNRESET);
  }
  if (!connected_) {
    if (int err = socket_error(fd_.get()); err != 0) return failed(err);
    connected_ = true;
  }
  if (events & UV_READABLE) {
    for (;;) {
      std::span<char> buffer = receive_buffer();
      ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n > 0) {
        DataFn fn = on_data_;  // it may destroy this Stream
        if (!fn(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) return;
        continue;
      }
      if (n == 0) {
        FailFn fn = on_fail_;
        return fn(Status::BadResponse, "connection closed by the server");
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return failed(errno);
    }
  }
  if (!flush()) return;
  watch();
}

bool EchoExchange::Stream::flush() {
  while (out_done_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_done_, out_.size() - out_done_,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      out_done_ += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    failed(errno);
    return false;
  }
  out_.clear();
  out_done_ = 0;
  return true;
}

void EchoExchange::Stream::failed(int err) {
  Status status = Status::LocalError;
  std::string text;
  switch (err) {
    case ECONNREFUSED: status = Status::Refused, text = "connection refused"; break;
    case ENETUNREACH: status = Status::Unreachable, text = "network unreachable"; break;
    case EHOSTUNREACH: status = Status::Unreachable, text = "host unreachable"; break;
    case ETIMEDOUT: status = Status::Timeout, text = "connection timed out"; break;
    case ECONNRESET: status = Status::BadResponse, text = "connection reset by the server"; break;
    case EPIPE: status = Status::BadResponse, text = "connection closed by the server"; break;
    default: text = "connection failed: " + uv::error_text(-err); break;
  }
  FailFn fn = on_fail_;
  fn(status, std::move(text));
}

// ---- The engine -----------------------------------------------------------------------------

EchoExchange::EchoExchange(uv_loop_t* loop)
    : loop_(loop), send_timer_(loop), timeout_timer_(loop) {}

EchoExchange::~EchoExchange() { close(); }

int EchoExchange::start(const SockAddr& target, EchoExchangeOptions options, EventFn on_event,
                        DoneFn on_done) {
  stop();
  options_ = std::move(options);
  // An endless exchange with no spacing would never yield to the loop.
  if (options_.count == 0 && options_.spacing <= std::chrono::nanoseconds(0))
    options_.spacing = std::chrono::milliseconds(1);
  stats_ = EchoStats{};
  requests_.clear();
  pending_ = 0;
  next_seq_ = first_seq_ = 1;
  highest_echoed_ = 0;
  stream_expect_.clear();
  stream_front_.clear();
  stream_matched_ = 0;
  failed_step_ = Step::None;
  nonce_ = random_u64();
  send_failure_.reset();
  // Every request is this prefix and a trailer: the prefix is written once (and again only
  // when the message or size change), each request rewrites only the trailer.
  if (options_.message != prefix_message_ || options_.size != prefix_size_ ||
      send_buffer_.empty()) {
    prefix_message_ = options_.message;
    prefix_size_ = options_.size;
    send_buffer_ = request_prefix(options_.message, options_.size);
    prefix_length_ = send_buffer_.size();
    send_buffer_.resize(prefix_length_ + kEchoTrailerSize);
  }

  int rc = 0;
  if (options_.tcp) {
    tcp_ = std::make_unique<Stream>();
    rc = tcp_->open(
        loop_, target, options_, &failed_step_,
        [this](std::string_view data) { return on_stream_data(data); },
        [this](Status status, std::string text) { fail(status, std::move(text)); });
    if (rc != 0) tcp_.reset();
  } else {
    rc = open_udp(target);
  }
  if (rc != 0) return rc;
  on_event_ = std::move(on_event);
  on_done_ = std::move(on_done);
  running_ = true;
  alive_ = std::make_shared<char>();
  // The first request goes at once (a loop turn later would cost a timer and a wake-up
  // on every run); what goes wrong with it is reported from the loop, as the contract
  // says no callback runs inside start().
  if (more_to_send()) send_failure_ = send_next();
  if (send_failure_ || more_to_send()) {
    const auto spacing = std::max(options_.spacing, std::chrono::nanoseconds(0));
    send_timer_.start(
        send_failure_ ? std::chrono::nanoseconds(0) : spacing, [this] { on_send_tick(); },
        std::max(spacing, std::chrono::nanoseconds(std::chrono::milliseconds(1))));
  }
  return 0;
}

int EchoExchange::open_udp(const SockAddr& target) {
  auto on_readable = [this] { on_datagrams(); };
  auto on_error = [this](const SocketError& e) { on_socket_error(e); };
  const bool same_source =
      options_.source ? udp_source_ && udp_source_->same_endpoint(*options_.source) : !udp_source_;
  if (options_.keep_socket && udp_.connected_to(target) && same_source &&
      udp_interface_ == options_.interface) {
    // What arrived since the last run is dropped unread: it cannot be this run's.
    udp_.resume(std::move(on_readable), std::move(on_error));
    return 0;
  }
  udp_source_ = options_.source;
  udp_interface_ = options_.interface;
  int rc = udp_.open(loop_, target.family(), options_.source ? &*options_.source : nullptr,
                     options_.interface, std::move(on_readable), std::move(on_error));
  if (rc != 0) {
    failed_step_ = udp_.failed_step();
    return rc;
  }
  if ((rc = udp_.connect(target)) != 0) {
    failed_step_ = Step::Connect;
    udp_.close();
    return rc;
  }
  return 0;
}

void EchoExchange::drain() {
  if (!running_) return;
  draining_ = true;
  // A failed first send is still to be reported, from the timer (not inside drain()).
  if (send_failure_) return;
  send_timer_.stop();
  maybe_done();
}

void EchoExchange::stop() {
  running_ = false;
  draining_ = false;
  receiving_ = false;
  alive_.reset();
  send_failure_.reset();
  send_timer_.stop();
  timeout_timer_.stop();
  if (options_.keep_socket)
    udp_.idle();
  else
    udp_.close();
  tcp_.reset();
  on_event_ = nullptr;
  on_done_ = nullptr;
}

void EchoExchange::close() {
  stop();
  udp_.close();
}

bool EchoExchange::more_to_send() const {
  return running_ && !draining_ && (options_.count == 0 || next_seq_ <= options_.count);
}

void EchoExchange::on_send_tick() {
  bool send = true;
  if (send_failure_) {
    EchoEvent failure = std::move(*send_failure_);
    send_failure_.reset();
    if (!report_send_failure(std::move(failure))) return;
    // The next request keeps its spacing after the one that failed.
    send = options_.spacing <= std::chrono::nanoseconds(0);
  }
  while (send && more_to_send()) {
    if (auto failure = send_next(); failure && !report_send_failure(std::move(*failure))) return;
    if (options_.spacing > std::chrono::nanoseconds(0)) break;
  }
  if (!more_to_send()) {
    send_timer_.stop();
    maybe_done();
  }
}

bool EchoExchange::report_send_failure(EchoEvent failure) {
  if (failure.kind == EchoEvent::Kind::Error) {
    fail(failure.status, std::move(failure.text));
    return false;
  }
  return emit(std::move(failure));
}

EchoExchange::Request* EchoExchange::find(std::uint32_t seq) {
  if (seq < first_seq_ || seq - first_seq_ >= requests_.size()) return nullptr;
  return &requests_[seq - first_seq_];
}

std::string EchoExchange::request_bytes(std::uint32_t seq, std::chrono::nanoseconds sent) const {
  std::string out(send_buffer_, 0, prefix_length_);
  out.resize(send_buffer_.size());
  write_trailer(out.data() + prefix_length_,
                {nonce_, seq, static_cast<std::uint64_t>(sent.count())});
  return out;
}

bool EchoExchange::is_request(std::string_view payload, const EchoStamp& stamp,
                              std::chrono::nanoseconds sent) const {
  // The trailer has one spelling per stamp (parse_echo_stamp takes nothing else), so equal
  // stamps are equal trailers: only the prefix is left to compare byte for byte.
  return payload.size() == send_buffer_.size() && stamp.nonce == nonce_ &&
         stamp.sent_ns == static_cast<std::uint64_t>(sent.count()) &&
         payload.substr(0, prefix_length_) ==
             std::string_view(send_buffer_).substr(0, prefix_length_);
}

std::optional<EchoEvent> EchoExchange::send_next() {
  const std::uint32_t seq = next_seq_++;
  const auto now = uv::now();
  requests_.push_back(Request{now, State::Pending});
  ++pending_;
  ++stats_.sent;
  while (requests_.size() > kWindow && requests_.front().state != State::Pending) {
    requests_.pop_front();
    ++first_seq_;
  }
  if (options_.timeout > std::chrono::nanoseconds(0) && !timeout_timer_.active()) arm_timeout();

  write_trailer(send_buffer_.data() + prefix_length_,
                {nonce_, seq, static_cast<std::uint64_t>(now.count())});
  if (tcp_) {
    tcp_->write(send_buffer_);
    stream_expect_.emplace_back(seq, now);
    return std::nullopt;
  }
  long n = udp_.send(send_buffer_.data(), send_buffer_.size());
  if (n >= 0) return std::nullopt;
  EchoEvent e;
  e.kind = EchoEvent::Kind::Unreachable;
  e.seq = seq;
  switch (-n) {
    // An ICMP error for an earlier request can surface on send(): the port is closed.
    case ECONNREFUSED: e.status = Status::Refused, e.text = "port unreachable"; break;
    case ENETUNREACH:
    case EADDRNOTAVAIL: e.status = Status::Unreachable, e.text = "network unreachable"; break;
    case EHOSTUNREACH: e.status = Status::Unreachable, e.text = "host unreachable"; break;
    default:
      e.kind = EchoEvent::Kind::Error;
      e.status = Status::LocalError;
      e.text = "cannot send: " + uv::error_text(static_cast<int>(n));
      return e;
  }
  requests_.back().state = State::Failed;
  --pending_;
  ++stats_.errors;
  return e;
}

void EchoExchange::on_datagrams() {
  // Everything already queued is read before the exchange may end, so that a duplicate
  // that arrived with the last echo is counted as one.
  std::weak_ptr<char> alive = alive_;
  receiving_ = true;
  while (running_) {
    std::span<char> buffer = receive_buffer();
    auto n = udp_.receive(buffer.data(), buffer.size());
    if (!n) break;  // nothing more, or an error that went to on_socket_error
    if (!on_datagram(std::string_view(buffer.data(), std::min(*n, buffer.size())))) return;
  }
  if (alive.expired()) return;  // on_socket_error's callback stopped or destroyed it
  receiving_ = false;
  maybe_done();
}

bool EchoExchange::on_datagram(std::string_view payload) {
  std::optional<EchoStamp> stamp = parse_echo_stamp(payload);
  // Another run's echo (an earlier run of this check, or another check or client on the
  // same port): proof of nothing about this run.
  if (stamp && (stamp->nonce != nonce_ || (stamp->seq != 0 && stamp->seq < first_seq_))) {
    ++stats_.stale;
    EchoEvent e;
    e.kind = EchoEvent::Kind::Stale;
    e.bytes = payload.size();
    return emit(std::move(e));
  }
  Request* r = stamp ? find(stamp->seq) : nullptr;
  if (r != nullptr && is_request(payload, *stamp, r->sent))
    return on_reply(stamp->seq, r, r->sent, payload.size());
  std::string expected;
  if (r != nullptr) {
    expected = request_bytes(stamp->seq, r->sent);
  } else {
    // Not attributable to a request: compare with the oldest one in flight (or the last
    // one sent) to say where it differs.
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i].state == State::Pending || i + 1 == requests_.size()) {
        expected = request_bytes(first_seq_ + static_cast<std::uint32_t>(i), requests_[i].sent);
        break;
      }
    }
  }
  ++stats_.mismatched;
  EchoEvent e;
  e.kind = EchoEvent::Kind::Mismatch;
  if (r != nullptr) e.seq = stamp->seq;
  e.bytes = payload.size();
  e.expected = send_buffer_.size();
  if (payload.size() == expected.size()) e.first_difference = first_difference(payload, expected);
  return emit(std::move(e));
}

bool EchoExchange::on_reply(std::uint32_t seq, Request* r, std::chrono::nanoseconds sent,
                            std::size_t bytes) {
  EchoEvent e;
  e.seq = seq;
  e.bytes = bytes;
  e.rtt = uv::now() - sent;
  if (r == nullptr) {  // long forgotten (TCP only): it timed out long ago
    e.kind = EchoEvent::Kind::Late;
    ++stats_.late;
    return emit(std::move(e));
  }
  switch (r->state) {
    case State::Pending: {
      r->state = State::Echoed;
      --pending_;
      ++stats_.echoed;
      stats_.rtt.add(e.rtt);
      e.kind = EchoEvent::Kind::Echo;
      if (seq < highest_echoed_) {
        e.reordered = true;
        ++stats_.reordered;
      }
      highest_echoed_ = std::max(highest_echoed_, seq);
      if (!emit(std::move(e))) return false;
      std::weak_ptr<char> alive = alive_;
      maybe_done();
      return !alive.expired();
    }
    case State::Echoed:
    case State::LateEchoed:
      e.kind = EchoEvent::Kind::Duplicate;
      ++stats_.duplicates;
      return emit(std::move(e));
    case State::TimedOut:
    case State::Failed:
      r->state = State::LateEchoed;
      e.kind = EchoEvent::Kind::Late;
      ++stats_.late;
      return emit(std::move(e));
  }
  return true;
}

void EchoExchange::on_socket_error(const SocketError& err) {
  if (!running_) return;
  const bool port = err.port_unreachable();
  const bool route = !err.icmp() && (err.error == ENETUNREACH || err.error == EHOSTUNREACH);
  // Anything else (time exceeded, a local error) says nothing sure about the server: keep
  // waiting for the echo or the deadline.
  if (!port && !err.destination_unreachable() && !route) return;
  EchoEvent e;
  e.kind = EchoEvent::Kind::Unreachable;
  // The request it answers: the one quoted in the ICMP error, else the last one sent. An
  // error that quotes another run's request (on a kept socket) says nothing of this run.
  std::uint32_t seq = next_seq_ - 1;
  if (auto s = parse_echo_stamp(err.payload)) {
    if (s->nonce != nonce_) return;
    seq = s->seq;
  }
  e.seq = seq;
  if (port) {
    e.status = Status::Refused;
    e.text = "port unreachable";
  } else if (route) {
    e.status = Status::Unreachable;
    e.text = err.error == ENETUNREACH ? "network unreachable" : "host unreachable";
  } else {
    e.status = Status::Unreachable;
    e.text = err.unreachable_text() + " (" + err.describe() + ")";
  }
  if (err.icmp()) e.icmp = err;
  if (Request* r = find(seq); r != nullptr && r->state == State::Pending) {
    r->state = State::Failed;
    --pending_;
    ++stats_.errors;
  }
  if (!emit(std::move(e))) return;
  maybe_done();
}

bool EchoExchange::on_stream_data(std::string_view data) {
  while (!data.empty()) {
    if (stream_expect_.empty()) {
      ++stats_.mismatched;
      EchoEvent e;
      e.kind = EchoEvent::Kind::Mismatch;
      e.bytes = data.size();
      if (!emit(std::move(e))) return false;
      fail(Status::BadResponse,
           fmt::format("the server sent {} bytes more than it was sent", data.size()));
      return false;
    }
    const auto [seq, sent] = stream_expect_.front();
    if (stream_front_.empty()) stream_front_ = request_bytes(seq, sent);
    const std::size_t n = std::min(stream_front_.size() - stream_matched_, data.size());
    if (auto diff = first_difference(data.substr(0, n),
                                     std::string_view(stream_front_).substr(stream_matched_, n))) {
      ++stats_.mismatched;
      EchoEvent e;
      e.kind = EchoEvent::Kind::Mismatch;
      e.seq = seq;
      e.bytes = e.expected = send_buffer_.size();
      e.first_difference = stream_matched_ + *diff;
      if (!emit(std::move(e))) return false;
      // The rest of the stream cannot be lined up with the requests any more.
      fail(Status::BadResponse, "payload mismatch: the echoed stream differs from what was sent");
      return false;
    }
    stream_matched_ += n;
    data.remove_prefix(n);
    if (stream_matched_ == stream_front_.size()) {
      stream_expect_.pop_front();
      stream_front_.clear();
      stream_matched_ = 0;
      if (!on_reply(seq, find(seq), sent, send_buffer_.size())) return false;
    }
  }
  return true;
}

void EchoExchange::arm_timeout() {
  for (const Request& r : requests_) {
    if (r.state != State::Pending) continue;
    timeout_timer_.start(r.sent + options_.timeout - uv::now(), [this] { on_timer(); });
    return;
  }
  timeout_timer_.stop();
}

void EchoExchange::on_timer() {
  const auto now = uv::now();
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    Request& r = requests_[i];
    if (r.state != State::Pending) continue;
    // All requests share one timeout, so the rest, sent later, are not due yet either.
    if (r.sent + options_.timeout > now) break;
    r.state = State::TimedOut;
    --pending_;
    EchoEvent e;
    e.kind = EchoEvent::Kind::Timeout;
    e.seq = first_seq_ + static_cast<std::uint32_t>(i);
    if (!emit(std::move(e))) return;
  }
  arm_timeout();
  maybe_done();
}

void EchoExchange::fail(Status status, std::string text) {
  EchoEvent e;
  e.kind = EchoEvent::Kind::Error;
  e.status = status;
  e.text = std::move(text);
  if (!emit(std::move(e))) return;
  DoneFn done = std::move(on_done_);
  stop();
  if (done) done();
}

bool EchoExchange::emit(EchoEvent e) {
  std::weak_ptr<char> alive = alive_;
  EventFn fn = on_event_;  // it may stop() this exchange, which drops on_event_
  if (fn) fn(e);
  return !alive.expired();
}

void EchoExchange::maybe_done() {
  if (!running_ || receiving_ || pending_ != 0 || more_to_send()) return;
  DoneFn done = std::move(on_done_);
  stop();
  if (done) done();
}

// ---- The probe -------------------------------------------------------------------------------

std::string UdpEchoSpec::name_suffix() const { return "udp_echo:" + std::to_string(port); }

bool parse(Params& p, UdpEchoSpec* out) {
  p.get_port("port", &out->port);
  p.get("message", &out->message);
  p.get("count", &out->count, 1, 100);
  p.get_duration("spacing", &out->spacing);
  p.get("size", &out->size, 0, static_cast<unsigned>(kEchoMaxSize));
  p.get("max_loss", &out->max_loss, 0, 100);
  if (!p.failed()) {
    std::string problem = echo_size_problem(out->message, out->size);
    if (!problem.empty()) p.error(p.has("size") ? "size" : "message", problem);
  }
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const UdpEchoSpec& s) {
  return host_port(e.host, s.port);
}

namespace {

// One run: resolve the host (NetworkProbe), then one EchoExchange of `count` requests from
// a connected socket (the last run's when that run succeeded, else a fresh one). The run ends when
// every request is echoed, at the first ICMP unreachable, or at the deadline.
class UdpEchoProbe final : public NetworkProbe {
 public:
  UdpEchoProbe(ProbeContext& ctx, Endpoint endpoint, UdpEchoSpec spec)
      : NetworkProbe(ctx, std::move(endpoint), spec.port),
        spec_(std::move(spec)),
        exchange_(ctx.loop) {}
  ~UdpEchoProbe() override { close_io(); }

 private:
  void on_target() override;
  Result expire_io() override;
  void close_io() override;
  void add_details(Result& r) const override;

  void on_event(const EchoEvent& e);
  // What the run found so far: every request echoed, or why not.
  std::pair<Status, std::string> verdict() const;

  const UdpEchoSpec spec_;
  bool started_ = false;               // the exchange ran this run: its stats are ours
  std::optional<EchoEvent> mismatch_;  // the last reply that was not what was sent
  std::optional<SocketError> icmp_;    // the ICMP error that ended the run
  EchoExchange exchange_;
};

void UdpEchoProbe::on_target() {
  EchoExchangeOptions o;
  o.message = spec_.message;
  o.size = spec_.size;
  o.count = spec_.count;
  // Every request is sent within the first half of the timeout, so that each has at least
  // half of it to come back: the spacing shrinks when count x spacing would not fit.
  o.spacing = spec_.spacing;
  if (spec_.count > 1 && timeout() > std::chrono::milliseconds(0))
    o.spacing = std::min<std::chrono::nanoseconds>(o.spacing, timeout() / (2 * (spec_.count - 1)));
  if (source()) o.source = *source();
  o.interface = endpoint().interface;
  o.keep_socket = true;
  int rc = exchange_.start(
      target(), std::move(o), [this](const EchoEvent& e) { on_event(e); },
      [this] {
        auto [status, message] = verdict();
        finish(status, std::move(message));
      });
  if (rc == 0) {
    started_ = true;
    return;
  }
  const std::string to = target().with_port();
  const std::string why = uv::error_text(rc);
  if (finish_setup_failure(exchange_.failed_step(), rc, "a UDP socket")) return;
  switch (-rc) {
    case ENETUNREACH: return finish(Status::Unreachable, "network unreachable (" + to + ")");
    case EHOSTUNREACH: return finish(Status::Unreachable, "host unreachable (" + to + ")");
    case EADDRNOTAVAIL:
      return finish(Status::Unreachable, "network unreachable (" + to + ": " + why + ")");
    default: return finish(Status::LocalError, "cannot connect to " + to + ": " + why);
  }
}

void UdpEchoProbe::on_event(const EchoEvent& e) {
  switch (e.kind) {
    case EchoEvent::Kind::Mismatch: mismatch_ = e; break;
    case EchoEvent::Kind::Unreachable:
      // The server, or the way to it, said no: no point waiting for the deadline.
      icmp_ = e.icmp;
      return finish(e.status, e.text);
    case EchoEvent::Kind::Error: return finish(e.status, e.text);
    default: break;  // echoes, duplicates and stale echoes are counted in the stats
  }
}

std::pair<Status, std::string> UdpEchoProbe::verdict() const {
  const EchoStats& s = exchange_.stats();
  const unsigned count = spec_.count;
  const unsigned unechoed = count - std::min(count, s.echoed);
  const std::size_t bytes = exchange_.request_size();
  if (s.echoed > 0 && unechoed * 100 <= spec_.max_loss * count) {
    if (count == 1) {
      std::string m = fmt::format(FMT_COMPILE("echoed {} bytes in "), bytes);
      append_rtt(m, s.rtt.avg_ms());
      return {Status::Ok, std::move(m)};
    }
    std::string m = fmt::format("echoed {} of {} requests of {} bytes", s.echoed, count, bytes);
    if (unechoed > 0) m += fmt::format(" ({}% lost)", unechoed * 100 / count);
    m += fmt::format(", rtt min/avg/max {:.3f}/{:.3f}/{:.3f} ms", s.rtt.min_ms(), s.rtt.avg_ms(),
                     s.rtt.max_ms());
    return {Status::Ok, std::move(m)};
  }
  std::string m;
  Status status = Status::Timeout;
  if (mismatch_) {
    status = Status::BadResponse;
    m = fmt::format("payload mismatch (got {} bytes, expected {}", mismatch_->bytes,
                    mismatch_->expected);
    if (mismatch_->first_difference)
      m += fmt::format(", first difference at byte {}", *mismatch_->first_difference);
    m += ")";
    if (count > 1) m += fmt::format("; {} of {} requests not echoed", unechoed, count);
  } else if (s.echoed == 0) {
    m = "no echo within " + format_duration(timeout());
  } else {
    m = fmt::format("no echo for {} of {} requests within {}", unechoed, count,
                    format_duration(timeout()));
  }
  if (s.stale > 0)
    m +=
        fmt::format(" ({} stale echo{} of another run ignored)", s.stale, s.stale == 1 ? "" : "es");
  return {status, std::move(m)};
}

Result UdpEchoProbe::expire_io() {
  auto [status, message] = verdict();
  return make_result(status, std::move(message));
}

void UdpEchoProbe::close_io() {
  // The socket is kept for the next run only after a run that succeeded; any other run is
  // measured again from a fresh socket (and source address and port).
  if (ending_status() == Status::Ok)
    exchange_.stop();
  else
    exchange_.close();
  started_ = false;
  mismatch_.reset();
  icmp_.reset();
}

void UdpEchoProbe::add_details(Result& r) const {
  if (!started_) return;
  const EchoStats& s = exchange_.stats();
  r.add("bytes", exchange_.request_size());
  if (s.rtt.count() > 0) r.add("rtt_ms", s.rtt.avg_ms());
  if (spec_.count > 1 && s.rtt.count() > 0) {
    r.add("rtt_min_ms", s.rtt.min_ms());
    r.add("rtt_max_ms", s.rtt.max_ms());
    r.add("rtt_mdev_ms", s.rtt.mdev_ms());
    if (s.rtt.count() > 1) r.add("jitter_ms", s.rtt.jitter_ms());
  }
  r.add("sent", s.sent);
  r.add("echoed", s.echoed);
  r.add("lost", s.lost());
  // As icmp's: what `netmonctl probe --format nagios` reports as packet loss (pl).
  r.add("loss", s.sent ? 100.0 * s.lost() / s.sent : 0.0);
  r.add("mismatched", s.mismatched);
  r.add("duplicates", s.duplicates);
  r.add("reordered", s.reordered);
  r.add("stale", s.stale);
  if (icmp_) {
    r.add("icmp_type", icmp_->type);
    r.add("icmp_code", icmp_->code);
    if (icmp_->offender) r.add("icmp_from", icmp_->offender->ip());
  }
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const UdpEchoSpec& s) {
  return std::make_unique<UdpEchoProbe>(ctx, e, s);
}

}  // namespace netmond
