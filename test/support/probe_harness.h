// A ProbeContext for probe tests, and a way to run one probe to its result.
#pragma once

#include "ares_channel.h"
#include "curl_multi.h"
#include "probe.h"
#include "raw_icmp_sockets.h"
#include "resolver.h"
#include "support/loop.h"

#include <chrono>
#include <cstdint>
#include <optional>

namespace netmond::test {

// Services for probes on the fixture's loop. The Resolver can reach only a DNS server on
// loopback (`dns_port`, or a closed port when 0): a probe test never asks the system's
// resolvers, even for a name that misses the hosts file.
struct ProbeHarness {
  explicit ProbeHarness(uv_loop_t* loop, std::uint16_t dns_port = 0,
                        std::chrono::milliseconds dns_timeout = std::chrono::seconds(2));
  Resolver resolver;
  CurlMulti curl;
  DnsChannels dns;
  RawIcmpSockets icmp;
  ProbeContext ctx;
};

// Starts `probe` and runs the loop until its result arrives, or cancels it when `limit`
// passes (nullopt). Throws if the result is delivered inside start().
std::optional<Result> run_probe(LoopFixture& fixture, Probe& probe,
                                std::chrono::milliseconds limit = std::chrono::seconds(5));

// As the scheduler runs a check: starts `probe` with `deadline`, and calls expire() when
// the deadline passes unless the result came first (*expired says which). Throws if no
// result came at all.
Result run_with_expiry(LoopFixture& fixture, Probe& probe, std::chrono::milliseconds deadline,
                       bool* expired = nullptr);

// An Endpoint for `host` with everything else at its default.
Endpoint endpoint(const std::string& host);

}  // namespace netmond::test
