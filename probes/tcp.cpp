#include "tcp.h"

#include "base/address.h"
#include "base/duration.h"
#include "base/uv.h"
#include "network_probe.h"

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

// One run: resolve the host (NetworkProbe), then one non-blocking connect to its first
// address; the connection is closed as soon as it is established.
class TcpProbe final : public NetworkProbe {
 public:
  TcpProbe(ProbeContext& ctx, Endpoint endpoint, TcpSpec spec)
      : NetworkProbe(ctx, std::move(endpoint), spec.port) {}
  ~TcpProbe() override { close_io(); }

 private:
  void on_target() override;
  Result expire_io() override;
  void close_io() override;
  void add_details(Result& r) const override;

  void on_connected(int status);
  void fail_connect(int status);

  std::chrono::nanoseconds connect_started_{};
  std::optional<std::chrono::nanoseconds> connect_time_;
  uv::TcpConnection connection_;
};

void TcpProbe::on_target() {
  connect_started_ = uv::now();
  int rc = connection_.connect(loop(), target().get(), source() ? source()->get() : nullptr,
                               endpoint().interface, [this](int status) { on_connected(status); });
  if (rc != 0) fail_connect(rc);
}

void TcpProbe::on_connected(int status) {
  connect_time_ = uv::now() - connect_started_;
  if (status == 0) {
    finish(Status::Ok, "connected to " + target().with_port());
    return;
  }
  fail_connect(status);
}

void TcpProbe::fail_connect(int status) {
  const std::string to = target().with_port();
  const std::string why = uv::error_text(status);
  if (finish_setup_failure(connection_.failed_step(), status, "a socket")) return;
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
      return finish(Status::LocalError, "cannot bind to source address " +
                                            (source() ? source()->ip() : "") + ": " + why);
    case UV_EACCES:
    case UV_EPERM: return finish(Status::LocalError, "cannot connect to " + to + ": " + why);
    default: return finish(Status::Unreachable, "cannot connect to " + to + ": " + why);
  }
}

Result TcpProbe::expire_io() {
  connect_time_ = uv::now() - connect_started_;
  Result r = make_result(Status::Timeout,
                         "no answer from " + target().with_port() + " (connect timed out)");
  r.add("phase", "connect");
  return r;
}

void TcpProbe::close_io() {
  connection_.reset();  // a successful probe closes the connection at once
  connect_time_.reset();
}

void TcpProbe::add_details(Result& r) const {
  if (connect_time_) r.add("connect_ms", to_ms(*connect_time_));
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const TcpSpec& s) {
  return std::make_unique<TcpProbe>(ctx, e, s);
}

}  // namespace netmond
