#include "udp.h"

#include "base/address.h"
#include "base/datagram.h"
#include "base/duration.h"
#include "base/uv.h"
#include "network_probe.h"

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

// One run: resolve the host (NetworkProbe), then one datagram from a connected socket (the
// last run's when that run succeeded and the address is the same, else a fresh one); the
// answer is a reply, an ICMP error, or silence until the deadline.
class UdpProbe final : public NetworkProbe {
 public:
  UdpProbe(ProbeContext& ctx, Endpoint endpoint, UdpSpec spec)
      : NetworkProbe(ctx, std::move(endpoint), spec.port), payload_(std::move(spec.payload)) {}
  ~UdpProbe() override { close_io(); }

 private:
  void on_target() override;
  Result expire_io() override;
  void close_io() override;
  void add_details(Result& r) const override;

  void on_readable();
  void on_error(const SocketError& e);

  const std::string payload_;
  std::optional<long> bytes_sent_;
  std::optional<std::size_t> reply_bytes_;
  std::optional<SocketError> icmp_;  // the last ICMP error seen, even one that was ignored
  DatagramSocket socket_;
};

void UdpProbe::on_target() {
  auto on_readable = [this] { this->on_readable(); };
  auto on_error = [this](const SocketError& e) { this->on_error(e); };
  int rc = 0;
  if (socket_.connected_to(target())) {
    // The socket of the last run, which succeeded (close_io()). What reached it since,
    // a reply or an ICMP error later than that run's deadline, is dropped unread: this run
    // counts only what follows its own datagram.
    socket_.resume(std::move(on_readable), std::move(on_error));
  } else {
    rc = socket_.open(loop(), target().family(), source() ? &*source() : nullptr,
                      endpoint().interface, std::move(on_readable), std::move(on_error));
    if (rc != 0 && finish_setup_failure(socket_.failed_step(), rc, "a UDP socket")) return;
    rc = socket_.connect(target());
  }
  if (rc == 0) {
    long n = socket_.send(payload_.data(), payload_.size());
    if (n >= 0) {
      bytes_sent_ = n;
      return;  // now a reply, an ICMP error or the deadline
    }
    rc = static_cast<int>(n);
  }
  // Worded only here: formatting the address costs a fifth of a run that succeeds.
  const std::string to = target().with_port();
  const std::string why = uv::error_text(rc);
  switch (-rc) {
    case ENETUNREACH: return finish(Status::Unreachable, "network unreachable (" + to + ")");
    case EHOSTUNREACH: return finish(Status::Unreachable, "host unreachable (" + to + ")");
    case EADDRNOTAVAIL:
      return finish(Status::Unreachable, "network unreachable (" + to + ": " + why + ")");
    // An ICMP error can surface on send(); resume() or a fresh socket makes it
    // this run's own.
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
    return finish(Status::Unreachable, e.unreachable_text() + " (" + e.describe() + ")");
  // The same errors without ICMP details (SO_ERROR, or a recv that met them).
  if (!e.icmp() && e.error == ENETUNREACH)
    return finish(Status::Unreachable, "network unreachable (" + target().with_port() + ")");
  if (!e.icmp() && e.error == EHOSTUNREACH)
    return finish(Status::Unreachable, "host unreachable (" + target().with_port() + ")");
  // Anything else (time exceeded, a local error) says nothing sure about the port: keep
  // waiting for a reply or the deadline, as keepalived does.
}

Result UdpProbe::expire_io() {
  // Silence is the expected answer of an open port whose service ignores the payload (or
  // of a firewall that drops it): the deadline is where the udp probe succeeds.
  return make_result(Status::Ok, "open|filtered (no response)");
}

void UdpProbe::close_io() {
  // The socket is kept for the next run only after a run that succeeded. Any other run is
  // measured again from a fresh socket (and a fresh source address and port, should a
  // route or this host's address have changed).
  if (ending_status() == Status::Ok)
    socket_.idle();
  else
    socket_.close();
  bytes_sent_.reset();
  reply_bytes_.reset();
  icmp_.reset();
}

void UdpProbe::add_details(Result& r) const {
  if (bytes_sent_) r.add("bytes_sent", *bytes_sent_);
  if (reply_bytes_) r.add("reply_bytes", *reply_bytes_);
  if (icmp_) {
    r.add("icmp_type", icmp_->type);
    r.add("icmp_code", icmp_->code);
    if (icmp_->offender) r.add("icmp_from", icmp_->offender->ip());
  }
}

}  // namespace

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const UdpSpec& s) {
  return std::make_unique<UdpProbe>(ctx, e, s);
}

}  // namespace netmond
