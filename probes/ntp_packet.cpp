#include "ntp_packet.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace netmond {

namespace {

constexpr double kTwo32 = 4294967296.0;
constexpr std::uint64_t kNanosPerSecond = 1'000'000'000;

std::uint32_t get32(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

std::uint64_t get64(std::string_view b, std::size_t at) {
  return static_cast<std::uint64_t>(get32(b, at)) << 32 | get32(b, at + 4);
}

void put32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void put64(std::string& out, std::uint64_t v) {
  put32(out, static_cast<std::uint32_t>(v >> 32));
  put32(out, static_cast<std::uint32_t>(v));
}

// The four bytes of a reference id, without trailing NULs and spaces, if all printable.
std::optional<std::string> ascii_id(std::uint32_t id) {
  std::string s;
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(id >> shift));
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c < 0x7f; }))
    return std::nullopt;
  return s;
}

struct Kiss {
  std::string_view code;
  std::string_view meaning;
};

// RFC 5905 §7.4, figure 13.
constexpr std::array kKisses = {
    Kiss{"ACST", "the association belongs to a unicast server"},
    Kiss{"AUTH", "server authentication failed"},
    Kiss{"AUTO", "autokey sequence failed"},
    Kiss{"BCST", "the association belongs to a broadcast server"},
    Kiss{"CRYP", "cryptographic authentication or identification failed"},
    Kiss{"DENY", "access denied by the server"},
    Kiss{"DROP", "lost peer in symmetric mode"},
    Kiss{"RSTR", "access denied due to local policy"},
    Kiss{"INIT", "the association has not yet synchronized for the first time"},
    Kiss{"MCST", "the association belongs to a dynamically discovered server"},
    Kiss{"NKEY", "no key found"},
    Kiss{"RATE", "rate exceeded"},
    Kiss{"RMOT", "alteration of association from a remote host running ntpdc"},
    Kiss{"STEP", "a step change in system time has occurred"},
};

NtpResponse bogus(std::string reason, std::optional<NtpPacket> packet = std::nullopt) {
  NtpResponse r;
  r.kind = NtpResponse::Kind::Bogus;
  r.reason = std::move(reason);
  r.packet = std::move(packet);
  return r;
}

NtpResponse rejected(const NtpPacket& p, Status status, std::string reason) {
  NtpResponse r;
  r.kind = NtpResponse::Kind::Rejected;
  r.packet = p;
  r.status = status;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

NtpTimestamp ntp_from_timespec(const timespec& ts) {
  // Unsigned arithmetic: the shift drops the era, i.e. the seconds are taken mod 2^32.
  const std::uint64_t seconds = static_cast<std::uint64_t>(ts.tv_sec) + kNtpUnixOffset;
  const std::uint64_t fraction =
      ((static_cast<std::uint64_t>(ts.tv_nsec) << 32) + kNanosPerSecond / 2) / kNanosPerSecond;
  return (seconds << 32) + fraction;
}

double ntp_diff(NtpTimestamp a, NtpTimestamp b) {
  return static_cast<double>(static_cast<std::int64_t>(a - b)) / kTwo32;
}

double ntp_short_seconds(std::uint32_t v) { return v / 65536.0; }

std::string encode_ntp(const NtpPacket& p) {
  std::string out;
  out.reserve(kNtpHeaderSize);
  out.push_back(static_cast<char>((p.leap & 3) << 6 | (p.version & 7) << 3 | (p.mode & 7)));
  out.push_back(static_cast<char>(p.stratum));
  out.push_back(static_cast<char>(p.poll));
  out.push_back(static_cast<char>(p.precision));
  put32(out, p.root_delay);
  put32(out, p.root_dispersion);
  put32(out, p.reference_id);
  put64(out, p.reference);
  put64(out, p.origin);
  put64(out, p.receive);
  put64(out, p.transmit);
  return out;
}

std::optional<NtpPacket> decode_ntp(std::string_view b) {
  if (b.size() < kNtpHeaderSize) return std::nullopt;
  NtpPacket p;
  const auto first = static_cast<unsigned char>(b[0]);
  p.leap = first >> 6;
  p.version = (first >> 3) & 7;
  p.mode = first & 7;
  p.stratum = static_cast<std::uint8_t>(b[1]);
  p.poll = static_cast<std::int8_t>(b[2]);
  p.precision = static_cast<std::int8_t>(b[3]);
  p.root_delay = get32(b, 4);
  p.root_dispersion = get32(b, 8);
  p.reference_id = get32(b, 12);
  p.reference = get64(b, 16);
  p.origin = get64(b, 24);
  p.receive = get64(b, 32);
  p.transmit = get64(b, 40);
  return p;
}

NtpPacket ntp_request(NtpTimestamp nonce) {
  NtpPacket p;
  p.leap = 0;
  p.version = 4;
  p.mode = 3;
  p.precision = 32;
  p.transmit = nonce;
  return p;
}

std::string ntp_kiss_code(std::uint32_t reference_id) {
  if (auto s = ascii_id(reference_id)) return *s;
  return fmt::format("0x{:08x}", reference_id);
}

std::string_view ntp_kiss_meaning(std::string_view code) {
  for (const Kiss& k : kKisses)
    if (k.code == code) return k.meaning;
  return "";
}

std::string ntp_reference_text(std::uint8_t stratum, std::uint32_t reference_id) {
  if (stratum <= 1) return ntp_kiss_code(reference_id);
  return fmt::format("{}.{}.{}.{}", reference_id >> 24, (reference_id >> 16) & 0xff,
                     (reference_id >> 8) & 0xff, reference_id & 0xff);
}

NtpKissAction ntp_kiss_action(std::string_view code) {
  if (code == "RATE") return NtpKissAction::SlowDown;
  if (code == "DENY" || code == "RSTR") return NtpKissAction::Stop;
  return NtpKissAction::None;
}

std::chrono::seconds ntp_rate_backoff(unsigned consecutive) {
  constexpr unsigned kMaxDoublings = 4;  // 64 s * 2^4 = 1024 s
  const unsigned doublings = std::min(consecutive > 0 ? consecutive - 1 : 0, kMaxDoublings);
  return std::chrono::seconds(64) * (1u << doublings);
}

NtpResponse judge_ntp_response(std::string_view bytes, NtpTimestamp nonce) {
  std::optional<NtpPacket> decoded = decode_ntp(bytes);
  if (!decoded)
    return bogus(
        fmt::format("short packet ({} bytes, an NTP header has {})", bytes.size(), kNtpHeaderSize));
  const NtpPacket& p = *decoded;
  if (bytes.size() % 4 != 0)
    return bogus(fmt::format("length {} is not a multiple of 4", bytes.size()), p);
  if (p.version != 3 && p.version != 4)
    return bogus(fmt::format("version {} (expected 3 or 4)", p.version), p);
  if (p.mode != 4) return bogus(fmt::format("mode {} (expected 4, server)", p.mode), p);
  if (p.origin != nonce) {
    NtpResponse r;
    r.kind = NtpResponse::Kind::Stale;
    r.packet = p;
    r.reason = "origin timestamp is not the request's (spoofed or stale)";
    return r;
  }
  if (p.transmit == 0) return bogus("transmit timestamp is zero", p);

  if (p.stratum == 0) {
    NtpResponse r;
    r.kind = NtpResponse::Kind::Kiss;
    r.packet = p;
    r.kiss = ntp_kiss_code(p.reference_id);
    return r;
  }
  if (p.receive == 0) return rejected(p, Status::BadResponse, "receive timestamp is zero");
  if (p.leap == 3)
    return rejected(p, Status::Unexpected, "server unsynchronised (leap indicator 3)");
  if (p.stratum >= 16)
    return rejected(p, Status::Unexpected,
                    fmt::format("server unsynchronised (stratum {})", p.stratum));
  const double distance =
      ntp_short_seconds(p.root_delay) / 2 + ntp_short_seconds(p.root_dispersion);
  if (distance >= kNtpMaxRootDistance)
    return rejected(p, Status::Unexpected,
                    fmt::format("root distance {:.6f} s (root delay {:.6f} s / 2 + root "
                                "dispersion {:.6f} s) is not below {:.0f} s",
                                distance, ntp_short_seconds(p.root_delay),
                                ntp_short_seconds(p.root_dispersion), kNtpMaxRootDistance));
  const double held = ntp_diff(p.transmit, p.receive);
  if (held < 0)
    return rejected(
        p, Status::BadResponse,
        fmt::format("transmit timestamp is {:.6f} s before the receive timestamp", -held));
  if (held >= kNtpMaxServerInterval)
    return rejected(p, Status::BadResponse,
                    fmt::format("the server claims to have held the request {:.6f} s (at most "
                                "{:.0f} s is believed)",
                                held, kNtpMaxServerInterval));
  NtpResponse r;
  r.kind = NtpResponse::Kind::Good;
  r.packet = p;
  return r;
}

NtpSample ntp_sample(const NtpPacket& response, NtpTimestamp t1, NtpTimestamp t4) {
  const NtpTimestamp t2 = response.receive;
  const NtpTimestamp t3 = response.transmit;
  NtpSample s;
  // Each difference alone is era-safe; only their sum and halves are taken in floating point.
  s.offset = (ntp_diff(t2, t1) + ntp_diff(t3, t4)) / 2;
  s.delay = ntp_diff(t4, t1) - ntp_diff(t3, t2);
  const double precision = std::ldexp(1.0, std::clamp<int>(response.precision, -32, 0));
  s.delay = std::max(s.delay, precision);
  return s;
}

std::string format_ntp_offset(double seconds) { return fmt::format("{:+.6f} s", seconds); }

}  // namespace netmond
