// A real NTP server for ntp probe tests: the system's chronyd (/usr/sbin/chronyd, package
// chrony), run as a child of the test on a loopback high port of 127.0.0.1. It has no
// sources and serves this host's own clock as a local reference (`local stratum 8`), with
// clock control off (-x), no command sockets, and its pid and drift files in a temporary
// directory: it never sends a packet anywhere and leaves the system's chronyd alone.
//
// What it answers: mode 4, version 4 (as asked), leap 0, stratum 8, reference id
// 127.127.1.1 (chrony's local reference), its receive and transmit timestamps from the
// same clock the probe reads, so the offset is within the scheduling noise of zero.
#pragma once

#include "support/process.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace netmond::test {

class Chronyd {
 public:
  static constexpr unsigned kStratum = 8;
  static constexpr std::uint32_t kReferenceId = 0x7f7f0101;  // 127.127.1.1

  // Starts chronyd, with `extra` lines appended to its configuration, and returns once it
  // answers an NTP request. Throws std::runtime_error with chronyd's output when it exits
  // or does not answer within 10 s.
  explicit Chronyd(std::vector<std::string> extra = {});
  // SIGTERM, SIGKILL when chronyd takes over 5 s to exit.
  ~Chronyd();
  Chronyd(const Chronyd&) = delete;
  Chronyd& operator=(const Chronyd&) = delete;

  std::uint16_t port() const { return port_; }  // UDP on 127.0.0.1
  pid_t pid() const;
  // chronyd's stderr so far.
  std::string log() const;

 private:
  bool start(const std::vector<std::string>& extra, std::string* why);
  bool answers() const;
  void stop();

  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

// A client request (version 4, mode 3) whose transmit timestamp is `transmit`, for
// fixtures that ask servers themselves.
std::string ntp_request_bytes(std::uint64_t transmit);

}  // namespace netmond::test
