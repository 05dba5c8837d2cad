// icmp (alias ping): does the host answer ICMP echo requests, how fast, and how reliably?
//
// A run sends `count` echo requests `spacing` apart from a fresh ping socket when
// net.ipv4.ping_group_range allows it, else from the raw socket every icmp check shares
// (icmp_socket.h, raw_icmp_sockets.h), and matches
// every reply by the check's random identifier, a sequence number of this run, the target's
// address and the run's random payload cookie (icmp_packet.h). RTTs come from the kernel's
// receive timestamps. The run ends when every request has its reply or ICMP error, or at
// the deadline, which judges what came back by then:
//   replies, loss within max_loss      -> Ok, "3/3 replies, rtt min/avg/max 0.031/0.040/0.052 ms"
//   ICMP errors and no reply           -> Unreachable, "host unreachable from 10.200.0.2"
//   no route, prohibited (local)       -> Unreachable, "host unreachable (no route to 10.99.0.1)"
//   silence                            -> Timeout, "0/3 replies (100% loss)"
//   loss above max_loss, slow average  -> Unexpected
//   no ICMP socket allowed             -> LocalError, saying what to grant
#pragma once

#include "params.h"
#include "probe.h"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace netmond {

struct IcmpSpec {
  static constexpr std::string_view kType = "icmp";
  unsigned count = 1;                      // echo requests per run, 1..100
  std::chrono::milliseconds spacing{200};  // between the requests of a run
  unsigned size = 56;                      // payload bytes, 8..65507 (the cookie takes 8)
  unsigned ttl = 0;                        // TTL / hop limit, 1..255; 0: the system's
  std::chrono::milliseconds max_rtt{0};    // fail when the average RTT is above; 0: never
  unsigned max_loss = 100;  // percent that may go unanswered; 100: fail only on total loss
  bool operator==(const IcmpSpec&) const = default;
  std::string name_suffix() const { return "icmp"; }
};

bool parse(Params& p, IcmpSpec* out);
std::string describe_target(const Endpoint& e, const IcmpSpec& s);  // the host
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const IcmpSpec& s);

}  // namespace netmond
