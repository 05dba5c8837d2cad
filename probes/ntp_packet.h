// ntp_packet: the SNTP client's protocol logic as pure functions, without sockets or clocks
// (tested in test/probes/ntp_packet_test.cpp, as chrony tests ntp_core.c):
//  - the NTP time format and era-safe arithmetic on it;
//  - the 48-byte header, encoded and decoded;
//  - the client request: LI 0, version 4, mode 3, a random transmit timestamp as the nonce
//    and nothing else about the local clock (chrony's client mode);
//  - the judgement of a response, in chrony's order (RFC 4330 / RFC 5905 client mode);
//  - offset and delay from T1..T4, and the kiss-o'-death back-off.
//
// RFC 5905 header (all fields big-endian):
//   0 LI(2)|VN(3)|Mode(3)  1 stratum  2 poll  3 precision  4 root delay (16.16)
//   8 root dispersion (16.16)  12 reference id  16 reference ts  24 origin ts
//   32 receive ts  40 transmit ts
#pragma once

#include "result.h"

#include <time.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netmond {

// An NTP timestamp: seconds since 1900-01-01 in 32.32 fixed point, as on the wire. The
// era (a count of 2^32 s) is not part of it: compare timestamps only through ntp_diff.
using NtpTimestamp = std::uint64_t;

inline constexpr std::size_t kNtpHeaderSize = 48;
// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
inline constexpr std::uint64_t kNtpUnixOffset = 2'208'988'800;
// chrony's NTP_MAX_DISPERSION: a root distance (root delay / 2 + root dispersion) of this
// much or more says the server's time is worthless.
inline constexpr double kNtpMaxRootDistance = 16.0;
// chrony's MAX_SERVER_INTERVAL: a server that claims to have held the request longer is
// not believed.
inline constexpr double kNtpMaxServerInterval = 4.0;

// The NTP timestamp of a CLOCK_REALTIME reading, rounded to the nearest 2^-32 s.
NtpTimestamp ntp_from_timespec(const timespec& ts);
// a - b in seconds, as a signed 64-bit difference of the fixed-point values: right across
// an era rollover (2036) for any two times less than 68 years apart.
double ntp_diff(NtpTimestamp a, NtpTimestamp b);
// An NTP short-format (16.16) value in seconds: root delay, root dispersion.
double ntp_short_seconds(std::uint32_t v);

struct NtpPacket {
  std::uint8_t leap = 0;  // 0 no warning, 1 last minute has 61 s, 2 has 59 s, 3 unsynchronised
  std::uint8_t version = 4;
  std::uint8_t mode = 3;  // 3 client, 4 server
  std::uint8_t stratum = 0;
  std::int8_t poll = 0;               // log2 seconds
  std::int8_t precision = 0;          // log2 seconds
  std::uint32_t root_delay = 0;       // 16.16 seconds
  std::uint32_t root_dispersion = 0;  // 16.16 seconds
  std::uint32_t reference_id = 0;
  NtpTimestamp reference = 0;
  NtpTimestamp origin = 0;
  NtpTimestamp receive = 0;
  NtpTimestamp transmit = 0;
  bool operator==(const NtpPacket&) const = default;
};

// The 48-byte wire form of `p` (no extension fields, no MAC).
std::string encode_ntp(const NtpPacket& p);
// The header at the start of `bytes`; nullopt when there are fewer than 48 bytes.
std::optional<NtpPacket> decode_ntp(std::string_view bytes);
// A client request carrying `nonce` as its transmit timestamp. Everything that could tell
// the local clock's time or state is zero, except the precision, which is 32 (2^32 s, a
// value no real clock has), as chrony sends.
NtpPacket ntp_request(NtpTimestamp nonce);

// The kiss code of a stratum-0 reference id: its ASCII letters ("RATE"), or "0x..." when
// they are not printable ASCII.
std::string ntp_kiss_code(std::uint32_t reference_id);
// What a kiss code means (RFC 5905 §7.4), "" for codes it does not list.
std::string_view ntp_kiss_meaning(std::string_view code);
// The reference id as people read it: the kiss code for stratum 0, the source's ASCII
// name for stratum 1 ("GPS", "PPS"), a dotted IPv4 address from stratum 2 on (for IPv6
// references it is the start of a hash of the address, still written as dotted quad).
std::string ntp_reference_text(std::uint8_t stratum, std::uint32_t reference_id);

// What a kiss code asks of a client (RFC 4330 §8, RFC 5905 §7.4).
enum class NtpKissAction : std::uint8_t {
  None,      // informational (INIT, STEP, ...): this run fails, the next one asks again
  SlowDown,  // RATE: poll less often
  Stop,      // DENY, RSTR: stop querying the server
};
NtpKissAction ntp_kiss_action(std::string_view code);

// How long to send nothing after the `consecutive`-th RATE kiss in a row (1, 2, ...):
// NTP's default minimum poll (64 s) doubled for every further RATE, at most its default
// maximum poll (1024 s).
std::chrono::seconds ntp_rate_backoff(unsigned consecutive);

// The judgement of one datagram received on the request's connected socket (so already
// from the server's address and port), in chrony's order (RECIPES §2.6).
struct NtpResponse {
  enum class Kind : std::uint8_t {
    // Not a usable server reply: shorter than a header, a length that is not a multiple
    // of 4, a version other than 3 or 4, a mode other than 4 (server), or a zero transmit
    // timestamp. Ignored: the run keeps waiting.
    Bogus,
    // A server reply whose origin timestamp is not this request's nonce: a spoofed or a
    // stale answer. Ignored: the run keeps waiting.
    Stale,
    // Stratum 0: a kiss-o'-death, `kiss` holds the code.
    Kiss,
    // The answer to this request, but one that fails a test: `status` and `reason` say
    // which (BadResponse for impossible timestamps, Unexpected for an unsynchronised
    // server or a root distance of 16 s or more).
    Rejected,
    // A valid answer to this request: a sample.
    Good,
  };
  Kind kind = Kind::Bogus;
  std::optional<NtpPacket> packet;      // when it decoded
  std::string reason;                   // Bogus, Stale, Rejected: why, in words
  std::string kiss;                     // Kiss: the code, ntp_kiss_code()
  Status status = Status::BadResponse;  // Rejected: BadResponse or Unexpected
};
NtpResponse judge_ntp_response(std::string_view bytes, NtpTimestamp nonce);

// One measurement: the response to a request sent at local time T1 (origin), received by
// the server at T2 (receive), sent back at T3 (transmit) and received here at T4.
struct NtpSample {
  // ((T2 - T1) + (T3 - T4)) / 2 seconds: positive when the local clock is behind the
  // server's, negative when it is ahead (chrony's sign).
  double offset = 0;
  // (T4 - T1) - (T3 - T2) seconds, floored at the server's precision (as chrony floors
  // it): the round trip without the server's processing time.
  double delay = 0;
};
NtpSample ntp_sample(const NtpPacket& response, NtpTimestamp t1, NtpTimestamp t4);

// "+0.000123 s" / "-1.500000 s": seconds with sign and microseconds, as the probe's
// message writes offsets.
std::string format_ntp_offset(double seconds);

}  // namespace netmond
