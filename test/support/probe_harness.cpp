#include "support/probe_harness.h"

#include "support/peers.h"

#include "base/uv.h"

#include <stdexcept>

namespace netmond::test {

namespace {
ResolverOptions loopback_dns(std::uint16_t port, std::chrono::milliseconds timeout) {
  ResolverOptions o;
  o.servers = {"127.0.0.1:" + std::to_string(port != 0 ? port : closed_udp_port("127.0.0.1"))};
  o.timeout = timeout;
  o.tries = 1;
  return o;
}
}  // namespace

ProbeHarness::ProbeHarness(uv_loop_t* loop, std::uint16_t dns_port,
                           std::chrono::milliseconds dns_timeout)
    : resolver(loop, loopback_dns(dns_port, dns_timeout)),
      curl(loop),
      dns(loop),
      icmp(loop),
      ctx{loop, resolver, curl, dns, icmp} {}

std::optional<Result> run_probe(LoopFixture& fixture, Probe& probe,
                                std::chrono::milliseconds limit) {
  std::optional<Result> result;
  int calls = 0;
  probe.start(limit, [&](Result r) {
    ++calls;
    result = std::move(r);
    // run_until checks between loop iterations only: without this, a result delivered by
    // a timer at the top of an iteration leaves uv_run blocked until the next event.
    uv_stop(fixture.loop());
  });
  if (result) throw std::logic_error("done was called inside start()");
  if (!fixture.run_until([&] { return result.has_value(); }, limit)) probe.cancel();
  if (calls > 1) throw std::logic_error("done was called more than once");
  return result;
}

Result run_with_expiry(LoopFixture& fixture, Probe& probe, std::chrono::milliseconds deadline,
                       bool* expired) {
  std::optional<Result> result;
  bool by_expire = false;
  uv::Timer timer(fixture.loop());
  uv_update_time(fixture.loop());
  probe.start(deadline, [&](Result r) {
    result = std::move(r);
    timer.stop();
  });
  timer.start(deadline, [&] {
    if (result) return;
    by_expire = true;
    result = probe.expire();
  });
  fixture.run_until([&] { return result.has_value(); }, deadline + std::chrono::seconds(2));
  if (!result) {
    probe.cancel();
    throw std::logic_error("no result, not even from expire()");
  }
  if (expired != nullptr) *expired = by_expire;
  return *result;
}

Endpoint endpoint(const std::string& host) {
  Endpoint e;
  e.host = host;
  e.address = host;
  return e;
}

}  // namespace netmond::test
