// ICMP/ICMPv6 reply parsing and matching (probes/icmp_packet.h), as the icmp probe does it
// (probes/icmp.cpp): a run sends a few echo requests, then every datagram read from the
// ICMP socket goes through parse_packet and, when it is an echo reply or an error quoting
// a request, through the run's Tracker; errors from a ping socket's error queue go through
// parse_request_header. On a raw socket these are any host's bytes, IP header included.
//
// Input: the run (framing, identifier, cookie, payload size, requests sent), then
// datagrams, each [flags][length][bytes]. Flag bit 0 makes the datagram an error-queue
// entry instead; bit 1 fixes its ICMP checksum first (IPv4 checks it, and a fuzzer seldom
// finds a right one by itself); bit 2 says it came from the target, not another host.
// Properties: the Tracker's counts stay consistent (no request counted twice; settled
// exactly when every request sent has its reply or error).
#include "check.h"
#include "icmp_packet.h"

#include <fuzzer/FuzzedDataProvider.h>
#include <linux/errqueue.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

using namespace netmond;
using netmond::fuzzing::check;
using namespace std::chrono_literals;

namespace {

// Writes the Internet checksum of the ICMP message in `bytes` (after the IPv4 header for
// raw IPv4) into its checksum field.
void fix_checksum(icmp::Framing framing, std::string* bytes) {
  std::size_t at = 0;
  if (framing == icmp::Framing::Ipv4Raw) {
    if (bytes->empty()) return;
    at = (static_cast<unsigned char>((*bytes)[0]) & 0x0f) * 4u;
  }
  if (bytes->size() < at + icmp::kHeaderSize) return;
  (*bytes)[at + 2] = (*bytes)[at + 3] = 0;
  const std::uint16_t sum = icmp::internet_checksum(std::string_view(*bytes).substr(at));
  (*bytes)[at + 2] = static_cast<char>(sum >> 8);
  (*bytes)[at + 3] = static_cast<char>(sum & 0xff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto framing =
      in.PickValueInArray({icmp::Framing::Ipv4Raw, icmp::Framing::Ipv4Dgram, icmp::Framing::Ipv6});
  const bool v6 = framing == icmp::Framing::Ipv6;
  const int family = v6 ? AF_INET6 : AF_INET;
  const SockAddr target = *parse_ip(v6 ? "2001:db8::1" : "192.0.2.1");
  const SockAddr stranger = *parse_ip(v6 ? "2001:db8::2" : "192.0.2.2");

  const auto id = in.ConsumeIntegral<std::uint16_t>();
  const auto cookie = in.ConsumeIntegral<std::uint64_t>();
  const auto payload_size = in.ConsumeIntegralInRange<std::size_t>(icmp::kMinPayload, 64);
  const auto first_seq = in.ConsumeIntegral<std::uint16_t>();
  const auto count = in.ConsumeIntegralInRange<unsigned>(0, 8);

  icmp::Tracker tracker;
  tracker.begin(target, id, icmp::echo_payload(cookie, payload_size));
  check(tracker.payload().size() == payload_size);
  for (unsigned i = 0; i < count; ++i) {
    const auto seq = static_cast<std::uint16_t>(first_seq + i);
    // What is sent is a well-formed request that parse_request_header reads back.
    const std::string request = icmp::echo_request(family, id, seq, tracker.payload());
    const auto header = icmp::parse_request_header(family, request);
    check(header && header->id == id && header->seq == seq);
    tracker.on_sent(seq, icmp::SendTime{std::chrono::nanoseconds(i) * 1'000'000,
                                        std::chrono::nanoseconds(i) * 1'000'000});
  }

  for (int n = 0; n < 16 && in.remaining_bytes() > 0; ++n) {
    const auto flags = in.ConsumeIntegral<std::uint8_t>();
    std::string bytes = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(0, 512));
    const icmp::ReceiveTime at{std::nullopt, std::chrono::nanoseconds(20ms) * (n + 1)};
    const icmp::Stats before = tracker.stats();
    if (flags & 1) {
      // A ping socket's error queue: the start of our request, with the ICMP error.
      SocketError e;
      e.origin = v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
      e.type = in.ConsumeIntegral<std::uint8_t>();
      e.code = in.ConsumeIntegral<std::uint8_t>();
      e.offender = stranger;
      e.payload = bytes;
      (void)icmp::error_text(e);
      if (const auto h = icmp::parse_request_header(family, e.payload)) {
        if (tracker.on_error(h->id, h->seq, std::nullopt, e) == icmp::Tracker::Match::Error)
          check(tracker.stats().errors == before.errors + 1);
      }
    } else {
      if (flags & 2) fix_checksum(framing, &bytes);
      const SockAddr& from = flags & 4 ? target : stranger;
      const icmp::Packet p = icmp::parse_packet(framing, bytes);
      if (p.kind == icmp::Packet::Kind::EchoReply) {
        // The payload is a view into the datagram, after the header(s).
        check(p.payload.data() >= bytes.data() &&
              p.payload.data() + p.payload.size() == bytes.data() + bytes.size());
        const auto m = tracker.on_reply(from, p, at, std::nullopt);
        if (m == icmp::Tracker::Match::Reply) {
          check(p.id == id && p.payload == tracker.payload() && from.same_endpoint(target));
          check(tracker.stats().received == before.received + 1);
        }
      } else if (p.kind == icmp::Packet::Kind::Error) {
        SocketError e;
        e.origin = v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
        e.type = p.type;
        e.code = p.code;
        e.offender = from;
        (void)icmp::error_text(e);
        tracker.on_error(p.id, p.seq, p.quoted_destination, e);
      }
    }
    const icmp::Stats& s = tracker.stats();
    check(s.sent == count && s.received + s.errors <= s.sent);
    check(s.reordered <= s.received && s.rtt.count() == s.received);
    check(tracker.settled() == (s.received + s.errors == s.sent));
  }
  (void)icmp::verdict(tracker.stats(), icmp::Limits{20, std::chrono::milliseconds(5)});
  return 0;
}
