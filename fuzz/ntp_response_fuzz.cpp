// NTP response validation (probes/ntp_packet.h): every datagram the ntp probe's socket
// receives is judged by judge_ntp_response, so its bytes are the server's (or anyone's
// who can reach the port). Input: the request's nonce (8 bytes, big-endian), then the
// datagram.
//
// Beyond "no crash": the encode/decode round trip, and the promises of each verdict kind
// that the probe relies on (a Good answer carries this request's nonce, is synchronised and
// was held less than kNtpMaxServerInterval), checked with __builtin_trap.
#include "check.h"
#include "ntp_packet.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace netmond;
using netmond::fuzzing::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  NtpTimestamp nonce = 0;
  for (int i = 0; i < 8; ++i) nonce = nonce << 8 | data[i];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 8, size - 8);

  // Decode, encode: the 48-byte header comes back bit for bit (every bit is a field).
  const std::optional<NtpPacket> decoded = decode_ntp(bytes);
  check(decoded.has_value() == (bytes.size() >= kNtpHeaderSize));
  if (decoded) {
    const std::string wire = encode_ntp(*decoded);
    check(wire == bytes.substr(0, kNtpHeaderSize));
    check(decode_ntp(wire) == decoded);
    // What the probe's messages and details show of any decoded reply.
    (void)ntp_reference_text(decoded->stratum, decoded->reference_id);
    (void)ntp_kiss_meaning(ntp_kiss_code(decoded->reference_id));
  }

  const NtpResponse r = judge_ntp_response(bytes, nonce);
  check(r.kind == NtpResponse::Kind::Bogus || r.packet.has_value());
  switch (r.kind) {
    case NtpResponse::Kind::Bogus: check(!r.reason.empty()); break;
    case NtpResponse::Kind::Stale: check(r.packet->origin != nonce); break;
    case NtpResponse::Kind::Kiss:
      check(r.packet->origin == nonce && r.packet->stratum == 0 && !r.kiss.empty());
      (void)ntp_kiss_action(r.kiss);
      break;
    case NtpResponse::Kind::Rejected:
      check(r.packet->origin == nonce && !r.reason.empty());
      check(r.status == Status::BadResponse || r.status == Status::Unexpected);
      break;
    case NtpResponse::Kind::Good: {
      const NtpPacket& p = *r.packet;
      check(bytes.size() % 4 == 0 && (p.version == 3 || p.version == 4) && p.mode == 4);
      check(p.origin == nonce && p.transmit != 0 && p.receive != 0);
      check(p.stratum >= 1 && p.stratum < 16 && p.leap != 3);
      const double held = ntp_diff(p.transmit, p.receive);
      check(held >= 0 && held < kNtpMaxServerInterval);
      // The sample the probe computes, with the nonce as T1 and the reply a little later:
      // finite whatever the server claims (its precision floors the delay).
      const NtpSample s = ntp_sample(p, nonce, nonce + (NtpTimestamp{1} << 28));
      check(std::isfinite(s.offset) && std::isfinite(s.delay));
      (void)format_ntp_offset(s.offset);
      break;
    }
  }
  return 0;
}
