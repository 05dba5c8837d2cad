// NetworkProbe: the shape every probe of a host shares, so that each type writes only its
// own I/O. A run goes
//   start -> check source_address -> resolve the host -> pick the address -> on_target()
//   (the type's I/O) -> finish(status, message) -> done(result) on a later loop turn,
// and expire()/cancel() close everything in whatever phase the run is.
#pragma once

#include "base/address.h"
#include "base/socket_step.h"
#include "base/uv.h"
#include "probe.h"
#include "resolver.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netmond {

class NetworkProbe : public Probe {
 public:
  // `port` is set on the resolved address (0 for types without ports).
  NetworkProbe(ProbeContext& ctx, Endpoint endpoint, std::uint16_t port);
  ~NetworkProbe() override;
  NetworkProbe(const NetworkProbe&) = delete;
  NetworkProbe& operator=(const NetworkProbe&) = delete;

  void start(std::chrono::milliseconds timeout, DoneFn done) final;
  Result expire() final;
  void cancel() final;

 protected:
  // The address is known (target(), source()): begin the type's I/O, which ends in
  // finish() or, at the deadline, in expire_io().
  virtual void on_target() = 0;
  // The deadline passed during the type's I/O: what that means (usually a Timeout). The
  // base then calls close_io().
  virtual Result expire_io() = 0;
  // Closes the type's sockets and forgets its per-run state. Must be safe when idle:
  // derived destructors call it (the base destructor cannot reach them any more).
  // ending_status() says how the run ended, for a type that keeps a socket across runs.
  virtual void close_io() = 0;
  // Adds the type's own details; address, port and resolve_ms are the base's.
  virtual void add_details(Result&) const {}

  // Ends the run: closes everything and posts done(result) to a later loop turn.
  void finish(Status status, std::string message);
  // When `step` is a local one (the socket, an option, the interface, the source address,
  // the loop's watcher), ends the run with LocalError saying so ("cannot bind to interface
  // 'eth9': No such device", "cannot create a UDP socket: ..." with `socket_kind` "a UDP
  // socket") and returns true. Connect and None are the caller's to word: false.
  bool finish_setup_failure(SocketStep step, int rc, std::string_view socket_kind);
  // A result of this run so far, with the latency since start and every detail.
  Result make_result(Status status, std::string message) const;

  uv_loop_t* loop() const { return loop_; }
  const Endpoint& endpoint() const { return endpoint_; }
  const SockAddr& target() const { return *target_; }
  const std::optional<SockAddr>& source() const { return source_; }
  std::chrono::nanoseconds started() const { return started_; }
  // While close_io() runs at the end of a run: that run's status. nullopt when the run was
  // cancelled or the probe is going away (and outside close_io()).
  std::optional<Status> ending_status() const { return ending_; }
  // The run's timeout as start() was given it (the deadline itself is the caller's).
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  enum class Phase : std::uint8_t { Idle, Resolving, Running, Finished };
  void on_resolved(ResolveResult r);

  uv_loop_t* loop_;
  Resolver& resolver_;
  const Endpoint endpoint_;
  const std::uint16_t port_;

  Phase phase_ = Phase::Idle;
  DoneFn done_;
  std::chrono::nanoseconds started_{};
  std::chrono::milliseconds timeout_{};
  std::optional<std::chrono::nanoseconds> resolve_time_;
  std::optional<SockAddr> source_;
  std::optional<SockAddr> target_;
  std::optional<Result> result_;  // finished, waiting for its loop turn
  std::optional<Status> ending_;
  // target_->ip(), cached for make_result().
  mutable std::optional<SockAddr> target_ip_of_;
  mutable std::string target_ip_;
  // How many details the last result had: the next one's room (make_result).
  mutable std::size_t details_room_ = 8;
  Resolver::Request request_;
  uv::Deferred deferred_;
};

// Milliseconds as a JSON-friendly double (details fields named *_ms).
double to_ms(std::chrono::nanoseconds d);

}  // namespace netmond
