#include "network_probe.h"

#include "base/duration.h"

#include <utility>

namespace netmond {

double to_ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

NetworkProbe::NetworkProbe(ProbeContext& ctx, Endpoint endpoint, std::uint16_t port)
    : loop_(ctx.loop),
      resolver_(ctx.resolver),
      endpoint_(std::move(endpoint)),
      port_(port),
      deferred_(ctx.loop) {}

NetworkProbe::~NetworkProbe() {
  request_.reset();
  deferred_.cancel();
}

void NetworkProbe::start(std::chrono::milliseconds timeout, DoneFn done) {
  // Runs never overlap; this only guards against a caller that forgot. (Not when idle:
  // cancel() would close a socket the type keeps between runs.)
  if (phase_ != Phase::Idle) cancel();
  done_ = std::move(done);
  timeout_ = timeout;
  started_ = uv::now();
  resolve_time_.reset();
  target_.reset();
  source_.reset();
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

void NetworkProbe::on_resolved(ResolveResult r) {
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
  target_->set_port(port_);
  phase_ = Phase::Running;
  on_target();
}

Result NetworkProbe::make_result(Status status, std::string message) const {
  Result r = Result::make(status, std::move(message), uv::now() - started_);
  // Room for as many details as the last run had, so that the object's vector is allocated
  // once instead of growing four or five times per run. Not a fixed 16 (udp_echo's most):
  // every check keeps its last result, and 16 slots for tcp's four details were 7.7 MiB of
  // 10,000 tcp checks' 33 MiB of heap (heaptrack).
  auto& details = r.details.get_ref<nlohmann::ordered_json::object_t&>();
  details.reserve(details_room_);
  if (target_) {
    // Formatted once per address, not per run (inet_ntop is a tenth of a udp_echo run).
    if (!target_ip_of_ || !target_ip_of_->same_endpoint(*target_)) {
      target_ip_ = target_->ip();
      target_ip_of_ = *target_;
    }
    r.add("address", target_ip_);
    if (port_ != 0) r.add("port", port_);
  }
  if (resolve_time_) r.add("resolve_ms", to_ms(*resolve_time_));
  add_details(r);
  details_room_ = std::max<std::size_t>(details.size(), 1);
  return r;
}

void NetworkProbe::finish(Status status, std::string message) {
  result_ = make_result(status, std::move(message));
  request_.reset();
  ending_ = status;
  close_io();
  ending_.reset();
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

bool NetworkProbe::finish_setup_failure(SocketStep step, int rc, std::string_view socket_kind) {
  const std::string why = uv::error_text(rc);  // negative errno values are libuv codes
  switch (step) {
    case SocketStep::Connect:
    case SocketStep::None: return false;
    case SocketStep::Device:
      finish(Status::LocalError, "cannot bind to interface '" + endpoint_.interface + "': " + why);
      return true;
    case SocketStep::Bind:
      finish(Status::LocalError, "cannot bind to source address " +
                                     (source_ ? source_->ip() : endpoint_.source_address) + ": " +
                                     why);
      return true;
    case SocketStep::Socket:
    case SocketStep::Option:
    case SocketStep::Watch: break;
  }
  finish(Status::LocalError, "cannot create " + std::string(socket_kind) + ": " + why);
  return true;
}

Result NetworkProbe::expire() {
  Result r;
  switch (phase_) {
    case Phase::Resolving: {
      const auto elapsed = uv::now() - started_;
      resolve_time_ = elapsed;
      r = make_result(Status::Timeout, "timeout after " + format_latency(elapsed) +
                                           " while resolving '" + endpoint_.host + "'");
      r.add("phase", "resolve");
      break;
    }
    case Phase::Running: r = expire_io(); break;
    case Phase::Finished:
      r = std::move(*result_);  // ended, but not delivered yet: still the answer
      break;
    case Phase::Idle: r = Result::make(Status::Timeout, "timeout (no run in flight)"); break;
  }
  ending_ = r.status;
  cancel();
  ending_.reset();
  return r;
}

void NetworkProbe::cancel() {
  request_.reset();
  close_io();
  deferred_.cancel();
  done_ = nullptr;
  result_.reset();
  phase_ = Phase::Idle;
}

}  // namespace netmond
