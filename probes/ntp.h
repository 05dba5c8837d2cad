// ntp: how far is this host's clock from an NTP server's, and is the server fit to serve
// time? An SNTPv4 client (RFC 4330; RFC 5905 client mode) on the loop: each run sends
// `samples` requests from one connected UDP socket and reports the answer with the lowest
// delay, as ntpdate and chrony do. The socket is kept for the next run after a run that
// succeeded (as ntpd keeps port 123, or chrony an acquisitionport): each request's random
// 64-bit transmit timestamp, not the source port, is what ties an answer to it. After
// any other run the next one opens a fresh socket, with a fresh random source port.
//
//   a valid answer, within limits   -> Ok, "offset +0.000123 s, delay 0.000210 s, stratum 2,
//                                      ref 192.0.2.1"
//   |offset| > max_offset           -> Unexpected, "offset +5.000123 s exceeds max_offset 1s
//                                      (delay ..., stratum 2, ref ...)"
//   stratum > max_stratum           -> Unexpected, "stratum 9 exceeds max_stratum 8 (...)"
//   leap 3 / stratum 16, root distance of 16 s or more
//                                   -> Unexpected, "server unsynchronised (leap indicator 3)"
//   stratum 0 (kiss-o'-death)       -> KissOfDeath, "kiss code RATE (rate exceeded) from ..."
//   impossible timestamps           -> BadResponse
//   only bogus datagrams came back  -> BadResponse at the deadline, with the last one's fault
//   ICMP port unreachable           -> Refused; other ICMP unreachables -> Unreachable
//   silence                         -> Timeout, "no response from 127.0.0.1:123 within 5s"
//
// A datagram that is not a valid answer to its request (too short, wrong version or mode,
// zero transmit timestamp, or an origin timestamp that is not the request's random nonce)
// never ends a run: it is counted and the run keeps waiting until the deadline. Only the
// first valid answer to each request is taken.
//
// Kiss-o'-death state lives in the probe object, across runs: RATE holds off every query
// for ntp_rate_backoff() (64 s doubling to 1024 s while RATE keeps coming), DENY and RSTR
// stop querying the server until the next reload (reloaded(), or a reload that changes the
// check and so makes a new probe) or restart. A run in either state fails at once with KissOfDeath
// and says why, without sending anything.
#pragma once

#include "params.h"
#include "probe.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace netmond {

inline constexpr std::uint16_t kNtpDefaultPort = 123;

struct NtpSpec {
  static constexpr std::string_view kType = "ntp";
  std::string server;  // IP or hostname to query; "" = the server's address
  std::uint16_t port = kNtpDefaultPort;
  std::chrono::milliseconds max_offset{1000};  // |offset| above this fails (Unexpected)
  unsigned max_stratum = 15;                   // a higher stratum fails (Unexpected)
  unsigned samples = 1;                        // requests per run, 1..8; lowest delay wins
  std::chrono::milliseconds spacing{2000};     // between the requests of one run
  bool operator==(const NtpSpec&) const = default;
  std::string name_suffix() const;  // "ntp", or "ntp:1123" on another port
};

bool parse(Params& p, NtpSpec* out);
std::string describe_target(const Endpoint& e, const NtpSpec& s);  // "pool.ntp.org:123"
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const NtpSpec& s);

}  // namespace netmond
