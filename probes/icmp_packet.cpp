#include "icmp_packet.h"

#include "base/duration.h"

#include <fmt/format.h>
#include <linux/errqueue.h>
#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace netmond::icmp {

namespace {

constexpr std::size_t kIpv4MinHeader = 20;
constexpr std::size_t kIpv6Header = 40;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoIcmpv6 = 58;
// ICMP error types whose body quotes the datagram they are about.
constexpr std::uint8_t kV4DestUnreach = 3, kV4TimeExceeded = 11, kV4ParamProblem = 12;
constexpr std::uint8_t kV6DestUnreach = 1, kV6PacketTooBig = 2, kV6TimeExceeded = 3,
                       kV6ParamProblem = 4;

std::uint8_t byte_at(std::string_view b, std::size_t i) { return static_cast<std::uint8_t>(b[i]); }

std::uint16_t be16(std::string_view b, std::size_t i) {
  return static_cast<std::uint16_t>(byte_at(b, i) << 8 | byte_at(b, i + 1));
}

void put16(std::string& out, std::size_t i, std::uint16_t v) {
  out[i] = static_cast<char>(v >> 8);
  out[i + 1] = static_cast<char>(v & 0xff);
}

SockAddr address(int family, std::string_view raw) {
  SockAddr a;
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    v4->sin_family = AF_INET;
    std::memcpy(&v4->sin_addr, raw.data(), 4);
    a.length = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    v6->sin6_family = AF_INET6;
    std::memcpy(&v6->sin6_addr, raw.data(), 16);
    a.length = sizeof(sockaddr_in6);
  }
  return a;
}

// Same family and address; ports and scope ids are not compared.
bool same_ip(const SockAddr& a, const SockAddr& b) {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET)
    return std::memcmp(&reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr,
                       &reinterpret_cast<const sockaddr_in*>(&b.storage)->sin_addr, 4) == 0;
  if (a.family() == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&b.storage)->sin6_addr, 16) == 0;
  return false;
}

// The echo request quoted in the body of an IPv4 ICMP error: an IPv4 header, then at least
// the 8 bytes of the ICMP header.
void parse_quoted_v4(std::string_view quoted, Packet* p) {
  if (quoted.size() < kIpv4MinHeader || byte_at(quoted, 0) >> 4 != 4) return;
  const std::size_t ihl = (byte_at(quoted, 0) & 0x0f) * 4u;
  if (ihl < kIpv4MinHeader || quoted.size() < ihl + kHeaderSize) return;
  if (byte_at(quoted, 9) != kProtoIcmp || byte_at(quoted, ihl) != kEchoRequestV4) return;
  p->kind = Packet::Kind::Error;
  p->id = be16(quoted, ihl + 4);
  p->seq = be16(quoted, ihl + 6);
  p->quoted_destination = address(AF_INET, quoted.substr(16, 4));
}

// The same for ICMPv6: the quoted IPv6 header (no extension headers: netmond sends none).
void parse_quoted_v6(std::string_view quoted, Packet* p) {
  if (quoted.size() < kIpv6Header + kHeaderSize || byte_at(quoted, 0) >> 4 != 6) return;
  if (byte_at(quoted, 6) != kProtoIcmpv6 || byte_at(quoted, kIpv6Header) != kEchoRequestV6) return;
  p->kind = Packet::Kind::Error;
  p->id = be16(quoted, kIpv6Header + 4);
  p->seq = be16(quoted, kIpv6Header + 6);
  p->quoted_destination = address(AF_INET6, quoted.substr(24, 16));
}

std::string plural(unsigned n, std::string_view word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

}  // namespace

std::uint16_t internet_checksum(std::string_view bytes) {
  std::uint32_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += be16(bytes, i);
  if (i < bytes.size()) sum += static_cast<std::uint32_t>(byte_at(bytes, i)) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::string echo_payload(std::uint64_t cookie, std::size_t size) {
  std::string out(std::max(size, kCookieSize), '\0');
  for (std::size_t i = 0; i < kCookieSize; ++i)
    out[i] = static_cast<char>(cookie >> (8 * (kCookieSize - 1 - i)));
  for (std::size_t i = kCookieSize; i < out.size(); ++i) out[i] = static_cast<char>(i & 0xff);
  return out;
}

std::string echo_request(int family, std::uint16_t id, std::uint16_t seq,
                         std::string_view payload) {
  std::string out(kHeaderSize, '\0');
  out[0] = static_cast<char>(family == AF_INET6 ? kEchoRequestV6 : kEchoRequestV4);
  put16(out, 4, id);
  put16(out, 6, seq);
  out.append(payload);
  if (family != AF_INET6) put16(out, 2, internet_checksum(out));
  return out;
}

Packet parse_packet(Framing framing, std::string_view bytes) {
  Packet p;
  std::string_view icmp = bytes;
  if (framing == Framing::Ipv4Raw) {
    if (bytes.size() < kIpv4MinHeader || byte_at(bytes, 0) >> 4 != 4) return p;
    const std::size_t ihl = (byte_at(bytes, 0) & 0x0f) * 4u;
    if (ihl < kIpv4MinHeader || bytes.size() < ihl || byte_at(bytes, 9) != kProtoIcmp) return p;
    p.ttl = byte_at(bytes, 8);
    icmp = bytes.substr(ihl);
  }
  if (icmp.size() < kHeaderSize) return p;
  const bool v6 = framing == Framing::Ipv6;
  // Raw IPv4 sockets see packets before the ICMP layer checks them; ICMPv6 checksums
  // cover a pseudo-header the socket does not show (the kernel checks them first).
  if (!v6 && internet_checksum(icmp) != 0) return p;
  p.kind = Packet::Kind::Other;
  p.type = byte_at(icmp, 0);
  p.code = byte_at(icmp, 1);
  if (p.type == (v6 ? kEchoReplyV6 : kEchoReplyV4)) {
    p.kind = Packet::Kind::EchoReply;
    p.id = be16(icmp, 4);
    p.seq = be16(icmp, 6);
    p.payload = icmp.substr(kHeaderSize);
    return p;
  }
  const std::string_view quoted = icmp.substr(kHeaderSize);
  if (!v6 && (p.type == kV4DestUnreach || p.type == kV4TimeExceeded || p.type == kV4ParamProblem))
    parse_quoted_v4(quoted, &p);
  if (v6 && (p.type == kV6DestUnreach || p.type == kV6PacketTooBig || p.type == kV6TimeExceeded ||
             p.type == kV6ParamProblem))
    parse_quoted_v6(quoted, &p);
  p.ttl.reset();  // only a reply's TTL means something
  return p;
}

std::optional<EchoHeader> parse_request_header(int family, std::string_view bytes) {
  if (bytes.size() < kHeaderSize) return std::nullopt;
  if (byte_at(bytes, 0) != (family == AF_INET6 ? kEchoRequestV6 : kEchoRequestV4))
    return std::nullopt;
  return EchoHeader{be16(bytes, 4), be16(bytes, 6)};
}

std::string error_text(const SocketError& e) {
  if (e.destination_unreachable()) return e.unreachable_text();
  const bool v6 = e.origin == SO_EE_ORIGIN_ICMP6;
  if (!v6 && e.type == kV4TimeExceeded)
    return e.code == 1 ? "fragment reassembly time exceeded" : "time to live exceeded";
  if (v6 && e.type == kV6TimeExceeded)
    return e.code == 1 ? "fragment reassembly time exceeded" : "hop limit exceeded";
  if (v6 && e.type == kV6PacketTooBig) return "packet too big";
  if ((!v6 && e.type == kV4ParamProblem) || (v6 && e.type == kV6ParamProblem))
    return "parameter problem";
  return fmt::format("{} type {} code {}", v6 ? "ICMPv6" : "ICMP", e.type, e.code);
}

std::chrono::nanoseconds round_trip(const SendTime& sent, const ReceiveTime& received) {
  const auto monotonic =
      std::max(received.monotonic - sent.monotonic, std::chrono::nanoseconds::zero());
  if (received.kernel) {
    // The stamp lies between the send and the read, so it is never longer than the
    // monotonic interval, give or take the clocks' rate difference while the wall clock is
    // slewed (at most 500 ppm): outside that, the wall clock stepped.
    const auto kernel = *received.kernel - sent.realtime;
    if (kernel >= std::chrono::nanoseconds::zero() && kernel <= monotonic + monotonic / 1000)
      return std::min(kernel, monotonic);
  }
  return monotonic;
}

// ---- Tracker ---------------------------------------------------------------------------------

void Tracker::begin(const SockAddr& target, std::uint16_t id, std::string payload) {
  target_ = target;
  id_ = id;
  payload_ = std::move(payload);
  requests_.clear();
  waiting_ = 0;
  highest_replied_ = 0;
  stats_ = Stats{};
}

void Tracker::on_sent(std::uint16_t seq, SendTime at) {
  requests_.push_back({seq, at, State::Waiting});
  ++waiting_;
  ++stats_.sent;
}

Tracker::Request* Tracker::find(std::uint16_t seq) {
  if (requests_.empty()) return nullptr;
  // Sequence numbers of a run are consecutive (modulo 2^16) from the first request's.
  const std::size_t i = static_cast<std::uint16_t>(seq - requests_.front().seq);
  if (i >= requests_.size() || requests_[i].seq != seq) return nullptr;
  return &requests_[i];
}

Tracker::Match Tracker::on_reply(const SockAddr& from, const Packet& p, ReceiveTime at,
                                 std::optional<int> ttl) {
  Request* r = p.id == id_ && same_ip(from, target_) ? find(p.seq) : nullptr;
  // A cookie of another run (a late reply to an earlier run, or another check that drew the
  // same identifier), or a corrupted payload.
  if (r == nullptr || p.payload != payload_ || r->state == State::Failed) {
    ++stats_.ignored;
    return Match::Ignored;
  }
  if (r->state == State::Replied) {
    ++stats_.duplicates;
    return Match::Duplicate;
  }
  r->state = State::Replied;
  --waiting_;
  ++stats_.received;
  stats_.rtt.add(round_trip(r->sent, at));
  if (ttl || p.ttl) stats_.reply_ttl = ttl ? ttl : p.ttl;
  const std::size_t index = static_cast<std::size_t>(r - requests_.data()) + 1;
  if (index < highest_replied_) ++stats_.reordered;
  highest_replied_ = std::max(highest_replied_, index);
  return Match::Reply;
}

Tracker::Match Tracker::on_error(std::uint16_t id, std::uint16_t seq,
                                 const std::optional<SockAddr>& destination, const SocketError& e) {
  Request* r = id == id_ && (!destination || same_ip(*destination, target_)) ? find(seq) : nullptr;
  if (r == nullptr || r->state != State::Waiting) {
    ++stats_.ignored;
    return Match::Ignored;
  }
  r->state = State::Failed;
  --waiting_;
  ++stats_.errors;
  stats_.error = e;
  return Match::Error;
}

// ---- Verdict ---------------------------------------------------------------------------------

std::pair<Status, std::string> verdict(const Stats& s, const Limits& limits) {
  const std::string counts = fmt::format("{}/{} replies", s.received, s.sent);
  std::string icmp_error;
  if (s.error) {
    icmp_error = error_text(*s.error);
    if (s.error->offender) icmp_error += " from " + s.error->offender->ip();
  }
  if (s.received == 0) {
    if (!s.error) return {Status::Timeout, counts + " (100% loss)"};
    if (s.sent <= 1) return {Status::Unreachable, icmp_error};
    return {Status::Unreachable,
            fmt::format("{} ({}, {})", icmp_error, counts, plural(s.errors, "ICMP error"))};
  }
  std::string rtt = s.rtt.count() == 1
                        ? "rtt " + format_rtt(s.rtt.avg_ms())
                        : fmt::format("rtt min/avg/max {:.3f}/{:.3f}/{:.3f} ms", s.rtt.min_ms(),
                                      s.rtt.avg_ms(), s.rtt.max_ms());
  const long loss = std::lround(s.loss_percent());
  std::string m = counts;
  const bool too_lossy =
      s.lost() * 100ull > static_cast<unsigned long long>(limits.max_loss) * s.sent;
  if (too_lossy)
    m += fmt::format(" ({}% loss, above max_loss {}%)", loss, limits.max_loss);
  else if (s.lost() > 0)
    m += fmt::format(" ({}% loss)", loss);
  m += ", " + rtt;
  if (s.duplicates > 0) m += ", " + plural(s.duplicates, "duplicate");
  if (too_lossy) {
    if (s.error) m += fmt::format("; {} ({})", plural(s.errors, "ICMP error"), icmp_error);
    return {Status::Unexpected, std::move(m)};
  }
  if (limits.max_rtt.count() > 0 && s.rtt.avg_ms() > static_cast<double>(limits.max_rtt.count()))
    return {Status::Unexpected, m + "; average above max_rtt " + format_duration(limits.max_rtt)};
  return {Status::Ok, std::move(m)};
}

}  // namespace netmond::icmp
