#include "udp.h"

#include "base/address.h"
#include "base/datagram.h"
#include "base/duration.h"
#include "base/uv.h"
#include "resolver.h"

#include <linux/errqueue.h>

#include <cerrno>
#include <optional>
#include <utility>

namespace netmond {

std::string UdpSpec::name_suffix() const { return "udp:" + std::to_string(port); }

bool parse(Params& p, UdpSpec* out) {
  p.require("port");
  p.get_port("port", &out->port);
  p.get("payload", &out->payload);
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const UdpSpec& s) {
  return host_port(e.host, s.port);
}

namespace {

double to_ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

// Why an ICMP destination unreachable says the target is unreachable, in words.
std::string unreachable_text(const SocketError& e) {
  if (e.origin == SO_EE_ORIGIN_ICMP) {
    switch (e.code) {
      case 0: return "network unreachable";
      case 1: return "host unreachable";
      case 2: return "protocol unreachable";
      case 4: return "fragmentation needed";
      case 9:
      case 10:
      case 13: return "administratively prohibited";
      default: return "destination unreachable";
    }
  }
  switch (e.code) {
    case 0: return "no route to destination";
    case 1: return "administratively prohibited";
    case 3: return "address unreachable";
    case 5:
    case 6: return "rejected by policy";
    default: return "destination unreachable";
  }
}

// One run: resolve the host, then one datagram from a fresh connected socket; the answer is
// a reply, an ICMP error, or silence until the deadline (expire()).
class UdpProbe final : public Probe {
 public:
  UdpProbe(ProbeContext& ctx, Endpoint endpoint, UdpSpec spec)
      : loop_(ctx.loop),
        resolver_(ctx.resolver),
        endpoint_(std::move(endpoint)),
        spec_(std::move(spec)),
        deferred_(ctx.loop) {}
  ~UdpProbe() override { cancel(); }
  UdpProbe(const UdpProbe&) = delete;
  UdpProbe& operator=(const UdpProbe&) = delete;

  void start(std::chrono::milliseconds, DoneFn done) override;
  Result expire() override;
  void cancel() override;

 private:
  enum class Phase : std::uint8_t { Idle, Resolving, Waiting, Finished };

  void on_resolved(ResolveResult r);
  void on_readable();
  void on_error(const SocketError& e);
  void finish(Status status, std::string message);
  Result make_result(Status status, std::string message) const;

  uv_loop_t* loop_;
  Resolver& resolver_;
  const Endpoint endpoint_;
  const UdpSpec spec_;

  Phase phase_ = Phase::Idle;
  DoneFn done_;
  std::chrono::nanoseconds started_{};
  std::optional<std::chrono::nanoseconds> resolve_time_;
  std::optional<SockAddr> source_;
  std::optional<SockAddr> target_;
  std::optional<long> bytes_sent_;
  std::optional<std::size_t> reply_bytes_;
  std::optional<SocketError> icmp_;  // the last ICMP error seen, even one that was ignored
  std::optional<Result> result_;     // finished, waiting for its loop turn

  Resolver::Request request_;
  DatagramSocket socket_;
  uv::Deferred deferred_;
};

void UdpProbe::start(std::chrono::milliseconds, DoneFn done) {
  cancel();  // runs never overlap; this only guards against a caller that forgot
  done_ = std::move(done);
  started_ = uv::now();
  resolve_time_.reset();
  target_.reset();
  source_.reset();
  bytes_sent_.reset();
  reply_bytes_.reset();
  icmp_.reset();
  phase_ = Phase::Resolving;
  if (!endpoint_.source_address.empty()) {
    source_ = parse_ip(endpoint_.source_address, 0);
    if (!source_) {
      finish(Status::LocalError,
             "invalid source address '" + endpoint_.source_address + "' (not an IP address)");
      return;
    }
  }
  request_ = resolver_.resolve(endpoint_.host, endpoint_.ip_version,
                               [this](ResolveResult r) { on_resolved(std::move(r)); });
}

void UdpProbe::on_resolved(ResolveResult r) {
  resolve_time_ = uv::now() - started_;
  if (!r.ok) {
    finish(Status::ResolveFailed, "cannot resolve '" + endpoint_.host + "': " + r.error);
    return;
  }
  // A source address decides the family: take the first address the source can reach.
  for (const auto& a : r.addresses) {
    if (!source_ || a.family() == source_->family()) {
      target_ = a;
      break;
    }
  }
  if (!target_) {
    finish(Status::LocalError, "source address " + source_->ip() + " is " +
                                   (source_->family() == AF_INET ? "IPv4" : "IPv6") + " but '" +
                                   endpoint_.host + "' has no such address");
    return;
  }
  target_->set_port(spec_.port);
  const std::string to = target_->with_port();

  // A fresh socket per run: no stale error or late reply of an earlier run can leak in.
  int rc = socket_.open(
      loop_, target_->family(), source_ ? &*source_ : nullptr, endpoint_.interface,
      [this] { on_readable(); }, [this](const SocketError& e) { on_error(e); });
  if (rc != 0) {
    const std::string why = uv::error_text(rc);  // negative errno values are libuv codes
    switch (socket_.failed_step()) {
      case DatagramSocket::Step::Device:
        return finish(Status::LocalError,
                      "cannot bind to interface '" + endpoint_.interface + "': " + why);
      case DatagramSocket::Step::Bind:
        return finish(Status::LocalError,
                      "cannot bind to source address " + source_->ip() + ": " + why);
      default: return finish(Status::LocalError, "cannot create a UDP socket: " + why);
    }
  }
  phase_ = Phase::Waiting;
  rc = socket_.connect(*target_);
  if (rc == 0) {
    long n = socket_.send(spec_.payload.data(), spec_.payload.size());
    if (n >= 0) {
      bytes_sent_ = n;
      return;  // now a reply, an ICMP error or the deadline
    }
    rc = static_cast<int>(n);
  }
  const std::string why = uv::error_text(rc);
  switch (-rc) {
    case ENETUNREACH: return finish(Status::Unreachable, "network unreachable (" + to + ")");
    case EHOSTUNREACH: return finish(Status::Unreachable, "host unreachable (" + to + ")");
    case EADDRNOTAVAIL:
      return finish(Status::Unreachable, "network unreachable (" + to + ": " + why + ")");
    // An earlier ICMP error can surface on send(); a fresh socket makes that our own.
    case ECONNREFUSED: return finish(Status::Refused, "port closed (ICMP port unreachable)");
    default: return finish(Status::LocalError, "cannot send to " + to + ": " + why);
  }
}

void UdpProbe::on_readable() {
  char buf[512];
  // Any datagram from the connected peer is a reply; its content is not judged here.
  if (auto n = socket_.receive(buf, sizeof buf)) {
    reply_bytes_ = *n;
    finish(Status::Ok, "open (reply received, " + std::to_string(*n) + " bytes)");
  }
}

void UdpProbe::on_error(const SocketError& e) {
  if (e.icmp()) icmp_ = e;
  if (e.port_unreachable()) return finish(Status::Refused, "port closed (ICMP port unreachable)");
  if (e.destination_unreachable())
    return finish(Status::Unreachable, unreachable_text(e) + " (" + e.describe() + ")");
  // The same errors without ICMP details (SO_ERROR, or a recv that met them).
  if (!e.icmp() && e.error == ENETUNREACH)
    return finish(Status::Unreachable, "network unreachable (" + target_->with_port() + ")");
  if (!e.icmp() && e.error == EHOSTUNREACH)
    return finish(Status::Unreachable, "host unreachable (" + target_->with_port() + ")");
  // Anything else (time exceeded, a local error) says nothing sure about the port: keep
  // waiting for a reply or the deadline, as keepalived does.
}

Result UdpProbe::make_result(Status status, std::string message) const {
  Result r = Result::make(status, std::move(message), uv::now() - started_);
  if (target_) {
    r.details["address"] = target_->ip();
    r.details["port"] = target_->port();
  }
  if (resolve_time_) r.details["resolve_ms"] = to_ms(*resolve_time_);
  if (bytes_sent_) r.details["bytes_sent"] = *bytes_sent_;
  if (reply_bytes_) r.details["reply_bytes"] = *reply_bytes_;
  if (icmp_) {
    r.details["icmp_type"] = icmp_->type;
    r.details["icmp_code"] = icmp_->code;
    if (icmp_->offender) r.details["icmp_from"] = icmp_->offender->ip();
  }
  return r;
}

void UdpProbe::finish(Status status, std::string message) {
  result_ = make_result(status, std::move(message));
  request_.reset();
  socket_.close();
  phase_ = Phase::Finished;
  deferred_.post([this] {
    DoneFn done = std::move(done_);
    Result r = std::move(*result_);
    done_ = nullptr;
    result_.reset();
    phase_ = Phase::Idle;
    if (done) done(std::move(r));  // may destroy this probe: nothing follows
  });
}

Result UdpProbe::expire() {
  Result r;
  const auto elapsed = uv::now() - started_;
  switch (phase_) {
    case Phase::Resolving:
      resolve_time_ = elapsed;
      r = make_result(Status::Timeout, "timeout after " + format_latency(elapsed) +
                                           " while resolving '" + endpoint_.host + "'");
      r.details["phase"] = "resolve";
      break;
    case Phase::Waiting:
      // Silence is the expected answer of an open port whose service ignores the payload
      // (or of a firewall that drops it): the deadline is where the udp probe succeeds.
      r = make_result(Status::Ok, "open|filtered (no response)");
      break;
    case Phase::Finished:
      r = std::move(*result_);  // ended, but not delivered yet: still the answer
      break;
    case Phase::Idle: r = Result::make(Status::Timeout, "timeout (no run in flight)"); break;
  }
  cancel();
  return r;
}

void UdpProbe::cancel() {
  request_.reset();
  socket_.close();
  deferred_.cancel();
  done_ = nullptr;
  result_.reset();
  phase_ = Phase::Idle;
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const UdpSpec& s) {
  return std::make_unique<UdpProbe>(ctx, e, s);
}

}  // namespace netmond
