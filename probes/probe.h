// The probe interface: what every check type implements.
//
// GLOSSARY
//   check    one configured thing to watch, with a name, an interval and a state (UP/DOWN)
//   probe    the object that performs one check's measurements; lives across runs
//   run      one measurement: start() ... done(Result), bounded by netmond's deadline
//   spec     a probe type's parameters as parsed from the config (TcpSpec, UdpSpec, ...)
//   endpoint where to probe and from where: host, source address, interface, IP version
//
// Lifecycle (driven by the scheduler, daemon/check_runner.h):
//   make_probe() once per check; then, never overlapping:
//     start(done)  begins a run; done(Result) fires exactly once on a *later* loop turn,
//                  unless the run is ended first by
//     expire()     the deadline passed: stop all I/O now and return what that means for
//                  this probe (a timeout, or "open|filtered" for udp); done never fires, or
//     cancel()     the check is going away (reload, shutdown): stop all I/O, no result.
//   The destructor implies cancel().
//   reloaded()   the configuration was reloaded and this check is unchanged, so the probe
//                lives on: forget what was meant to last only until the next reload.
//   Probes own no deadline timer of their own: netmond's deadline is the only bound, and
//   library timeouts (c-ares, curl) are at most a backstop behind it.
//
// HINT: to add a probe type, read docs/adding-a-probe.md. In short: write probes/foo.h/.cpp
// (FooSpec with kType, parse(), make_probe(), class FooProbe), add FooSpec to the ProbeSpec
// variant in registry.h, list foo.cpp in probes/CMakeLists.txt, add test/probes/foo_test.cpp
// with a loopback peer, and document it in docs/probes.md.
#pragma once

#include "result.h"

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace netmond {

class CurlMulti;
class DnsChannels;
class RawIcmpSockets;
class Resolver;

enum class IpVersion : std::uint8_t { Any, V4, V6 };

struct Endpoint {
  std::string host;            // IP literal or hostname (from the server's address)
  std::string address;         // the server's address as configured (may be a URL)
  std::string source_address;  // local IP to bind the probe's sockets to; "" = any
  std::string interface;       // device for SO_BINDTODEVICE; "" = any
  IpVersion ip_version = IpVersion::Any;
  bool operator==(const Endpoint&) const = default;
};

// Long-lived services shared by all probes, owned by the daemon.
struct ProbeContext {
  uv_loop_t* loop;
  Resolver& resolver;
  CurlMulti& curl;       // the one libcurl multi handle (http, https)
  DnsChannels& dns;      // the dns probes' c-ares channels, shared per server and options
  RawIcmpSockets& icmp;  // the icmp probes' raw sockets, shared per family and options
};

using DoneFn = std::function<void(Result)>;

class Probe {
 public:
  virtual ~Probe() = default;
  // `timeout` is informational (for a library backstop); the caller owns the deadline.
  virtual void start(std::chrono::milliseconds timeout, DoneFn done) = 0;
  // The deadline passed with the run in flight: stop and say what it means.
  virtual Result expire() = 0;
  // Stop the run in flight without a result. Safe when idle.
  virtual void cancel() = 0;
  // A reload kept this check (its configuration is unchanged). Never during a run's
  // callbacks; a run may be in flight.
  virtual void reloaded() {}
};

}  // namespace netmond
