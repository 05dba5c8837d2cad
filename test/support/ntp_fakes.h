// A fake NTP server on loopback, for the faults a real server (chronyd) will not produce on
// demand: kiss-o'-death codes, spoofed origins, unsynchronised answers, a wrong offset,
// malformed packets, replies from another port, per-request delays, silence. It runs on
// the test's libuv loop beside the probe (no thread), so it serves only while the test
// runs the loop.
//
// It builds its replies byte by byte itself, independently of the probe's ntp_packet code,
// from its own clock (CLOCK_REALTIME plus `offset`).
#pragma once

#include "base/address.h"
#include "base/fd.h"
#include "base/uv.h"

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace netmond::test {

// How a FakeNtpServer answers every request.
enum class NtpFault : std::uint8_t {
  Answer,        // a server reply (mode 4, version 4) with the options' fields
  Kiss,          // stratum 0, leap 3, the reference id holds `kiss`
  Short,         // the first 20 bytes of the Answer reply
  Garbage,       // 48 bytes of text: version and mode come out wrong
  WrongMode,     // the Answer reply with mode 3 (client)
  BadVersion,    // the Answer reply with version 2
  ZeroTransmit,  // the Answer reply with a zero transmit timestamp
  OtherPort,     // the Answer reply, sent from another socket of the fake (another port)
  NoiseFirst,    // Garbage, then the Answer reply: the probe must skip the first
  Silent,        // no reply
};

// Set the fields a fault uses after construction (-Wmissing-field-initializers rejects a
// designated initializer that leaves fields out).
struct FakeNtpOptions {
  explicit FakeNtpOptions(NtpFault f = NtpFault::Answer) : fault(f) {}
  NtpFault fault;
  std::string kiss = "RATE";  // Kiss: the code (up to 4 characters)
  std::uint8_t leap = 0;      // Answer's header
  std::uint8_t stratum = 2;
  std::uint32_t reference_id = 0xc0000201;  // 192.0.2.1
  std::int8_t poll = 6;
  std::int8_t precision = -20;
  double root_delay = 0.0625;        // seconds, written as 16.16
  double root_dispersion = 0.03125;  // seconds, written as 16.16
  double offset = 0;                 // seconds the fake's clock is ahead of the real one
  // Any reply with another origin timestamp than the request's transmit: a spoofed reply.
  bool wrong_origin = false;
  // How long the i-th request's reply is held (cycling through the list; none: sent at
  // once). The reply claims it was sent the moment the request came in, so the hold
  // counts as network delay.
  std::vector<std::chrono::milliseconds> delays;
};

// A request as the fake received it.
struct FakeNtpRequest {
  std::string bytes;
  SockAddr from;
};

class FakeNtpServer {
 public:
  // Binds `ip` (a loopback address) on a port the kernel picks.
  FakeNtpServer(uv_loop_t* loop, FakeNtpOptions options, const std::string& ip = "127.0.0.1");
  FakeNtpServer(uv_loop_t* loop, NtpFault fault);
  // Closes the sockets and timers; run the loop afterwards so the handles are freed
  // (LoopFixture::finish does).
  ~FakeNtpServer();
  FakeNtpServer(const FakeNtpServer&) = delete;
  FakeNtpServer& operator=(const FakeNtpServer&) = delete;

  std::uint16_t port() const { return port_; }
  // Changes how the following requests are answered.
  void set_options(FakeNtpOptions options) { options_ = std::move(options); }
  const std::vector<FakeNtpRequest>& requests() const { return requests_; }

 private:
  void on_readable();
  void reply(const FakeNtpRequest& request, std::uint64_t received);

  FakeNtpOptions options_;
  Fd fd_;  // before poll_: the poll is closed first
  uv::Poll poll_;
  Fd other_fd_;  // OtherPort's sender
  std::uint16_t port_ = 0;
  uv_loop_t* loop_;
  std::vector<FakeNtpRequest> requests_;
  std::vector<std::unique_ptr<uv::Timer>> held_;  // delayed replies
};

}  // namespace netmond::test
