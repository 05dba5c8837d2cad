#include "tcp.h"

#include "base/address.h"
#include "base/duration.h"
#include "base/uv.h"
#include "resolver.h"

#include <optional>
#include <utility>

namespace netmond {

std::string TcpSpec::name_suffix() const { return "tcp:" + std::to_string(port); }

bool parse(Params& p, TcpSpec* out) {
  p.require("port");
  p.get_port("port", &out->port);
  return !p.failed();
}

std::string describe_target(const Endpoint& e, const TcpSpec& s) {
  return host_port(e.host, s.port);
}

namespace {

double to_ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

// One run: resolve the host, then one non-blocking connect to its first address.
class TcpProbe final : public Probe {
 public:
  TcpProbe(ProbeContext& ctx, Endpoint endpoint, TcpSpec spec)
      : loop_(ctx.loop),
        resolver_(ctx.resolver),
        endpoint_(std::move(endpoint)),
        spec_(spec),
        deferred_(ctx.loop) {}
  ~TcpProbe() override { cancel(); }
  TcpProbe(const TcpProbe&) = delete;
  TcpProbe& operator=(const TcpProbe&) = delete;

  void start(std::chrono::milliseconds, DoneFn done) override;
  Result expire() override;
  void cancel() override;

 private:
  enum class Phase : std::uint8_t { Idle, Resolving, Connecting, Finished };

  void on_resolved(ResolveResult r);
  void on_connected(int status);
  void fail_connect(int status);
  // Ends the run: closes everything and posts `done` with the result to a later turn.
  void finish(Status status, std::string message);
  Result make_result(Status status, std::string message) const;

  uv_loop_t* loop_;
  Resolver& resolver_;
  const Endpoint endpoint_;
  const TcpSpec spec_;

  Phase phase_ = Phase::Idle;
  DoneFn done_;
  std::chrono::nanoseconds started_{};
  std::optional<std::chrono::nanoseconds> resolve_time_;
  std::chrono::nanoseconds connect_started_{};
  std::optional<std::chrono::nanoseconds> connect_time_;
  std::optional<SockAddr> source_;
  std::optional<SockAddr> target_;
  std::optional<Result> result_;  // finished, waiting for its loop turn

  Resolver::Request request_;
  uv::TcpConnection connection_;
  uv::Deferred deferred_;
};

void TcpProbe::start(std::chrono::milliseconds, DoneFn done) {
  cancel();  // runs never overlap; this only guards against a caller that forgot
  done_ = std::move(done);
  started_ = uv::now();
  resolve_time_.reset();
  connect_time_.reset();
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

void TcpProbe::on_resolved(ResolveResult r) {
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
  phase_ = Phase::Connecting;
  connect_started_ = uv::now();
  int rc = connection_.connect(loop_, target_->get(), source_ ? source_->get() : nullptr,
                               endpoint_.interface, [this](int status) { on_connected(status); });
  if (rc != 0) fail_connect(rc);
}

void TcpProbe::on_connected(int status) {
  connect_time_ = uv::now() - connect_started_;
  if (status == 0) {
    finish(Status::Ok, "connected to " + target_->with_port());
    return;
  }
  fail_connect(status);
}

void TcpProbe::fail_connect(int status) {
  const std::string to = target_->with_port();
  const std::string why = uv::error_text(status);
  switch (connection_.failed_step()) {
    case uv::TcpConnection::Step::Socket:
      return finish(Status::LocalError, "cannot create a socket: " + why);
    case uv::TcpConnection::Step::Device:
      return finish(Status::LocalError,
                    "cannot bind to interface '" + endpoint_.interface + "': " + why);
    case uv::TcpConnection::Step::Bind:
      return finish(Status::LocalError,
                    "cannot bind to source address " + source_->ip() + ": " + why);
    case uv::TcpConnection::Step::Connect:
    case uv::TcpConnection::Step::None: break;
  }
  switch (status) {
    case UV_ECONNREFUSED: return finish(Status::Refused, "connection refused by " + to);
    case UV_ECONNRESET: return finish(Status::Refused, "connection reset by " + to);
    case UV_ENETUNREACH: return finish(Status::Unreachable, "network unreachable (" + to + ")");
    case UV_EHOSTUNREACH: return finish(Status::Unreachable, "host unreachable (" + to + ")");
    // connect() finds no local address to reach the network from (IPv6 without a usable
    // source address, typically): the network is unreachable from here.
    case UV_EADDRNOTAVAIL:
      return finish(Status::Unreachable, "network unreachable (" + to + ": " + why + ")");
    case UV_ETIMEDOUT:
      return finish(Status::Timeout, "no answer from " + to + " (the kernel gave up connecting)");
    // A bind conflict libuv reports only when connecting; a local firewall rejecting the SYN.
    case UV_EADDRINUSE:
      return finish(Status::LocalError,
                    "cannot bind to source address " + (source_ ? source_->ip() : "") + ": " + why);
    case UV_EACCES:
    case UV_EPERM: return finish(Status::LocalError, "cannot connect to " + to + ": " + why);
    default: return finish(Status::Unreachable, "cannot connect to " + to + ": " + why);
  }
}

Result TcpProbe::make_result(Status status, std::string message) const {
  Result r = Result::make(status, std::move(message), uv::now() - started_);
  if (target_) {
    r.details["address"] = target_->ip();
    r.details["port"] = target_->port();
  }
  if (resolve_time_) r.details["resolve_ms"] = to_ms(*resolve_time_);
  if (connect_time_) r.details["connect_ms"] = to_ms(*connect_time_);
  return r;
}

void TcpProbe::finish(Status status, std::string message) {
  result_ = make_result(status, std::move(message));
  request_.reset();
  connection_.reset();  // a successful probe closes the connection at once
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

Result TcpProbe::expire() {
  Result r;
  const auto elapsed = uv::now() - started_;
  switch (phase_) {
    case Phase::Resolving:
      resolve_time_ = elapsed;
      r = make_result(Status::Timeout, "timeout after " + format_latency(elapsed) +
                                           " while resolving '" + endpoint_.host + "'");
      r.details["phase"] = "resolve";
      break;
    case Phase::Connecting:
      connect_time_ = uv::now() - connect_started_;
      r = make_result(Status::Timeout,
                      "no answer from " + target_->with_port() + " (connect timed out)");
      r.details["phase"] = "connect";
      break;
    case Phase::Finished:
      // The run ended but its result has not been delivered yet: it is still the answer.
      r = std::move(*result_);
      break;
    case Phase::Idle: r = Result::make(Status::Timeout, "timeout (no run in flight)"); break;
  }
  cancel();
  return r;
}

void TcpProbe::cancel() {
  request_.reset();
  connection_.reset();
  deferred_.cancel();
  done_ = nullptr;
  result_.reset();
  phase_ = Phase::Idle;
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const TcpSpec& s) {
  return std::make_unique<TcpProbe>(ctx, e, s);
}

}  // namespace netmond
