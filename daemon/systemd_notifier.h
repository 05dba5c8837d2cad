// SystemdNotifier: tells the service manager what the daemon is doing, with sd_notify(3).
//
//   ready(status)   READY=1 + STATUS=: the configuration is loaded and the checks are
//                   scheduled (at start, and after every reload, also a rejected one)
//   reloading()     RELOADING=1 + MONOTONIC_USEC=: a SIGHUP reload begins
//   stopping()      STOPPING=1: shutdown begins
//   status(summary) STATUS=: the one-line summary `systemctl status` shows; at most one a
//                   second, however many checks change state: each is a datagram PID 1
//                   must read, and sd_notify(3) blocks the loop when the manager's queue of
//                   them is full. `summary` is asked for its text when the message is sent,
//                   not at every change: it counts every check, and 10,000 checks changing
//                   state at once (at start, or when a network goes away) made 10,000
//                   summaries of 10,000 checks, seconds of a stalled loop
//   WATCHDOG=1      from a loop timer at half of WATCHDOG_USEC, so a stalled loop misses
//                   its pings and systemd restarts the daemon (WatchdogSec= in the unit)
// Without NOTIFY_SOCKET (not started by systemd with Type=notify) everything is silent and
// no timer runs.
#pragma once

#include "base/uv.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace netmond {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(uv_loop_t* loop);

  // True when NOTIFY_SOCKET names a socket to tell.
  bool enabled() const { return enabled_; }
  // The watchdog ping interval (half of WATCHDOG_USEC); zero when systemd wants none.
  std::chrono::microseconds watchdog_ping() const { return watchdog_ping_; }

  void ready(const std::string& status);
  void reloading();
  void stopping();  // also stops the watchdog pings
  void status(std::function<std::string()> summary);

 private:
  void send(const std::string& state);

  bool enabled_ = false;
  bool send_failed_ = false;  // log the first failure only
  std::chrono::microseconds watchdog_ping_{};
  std::optional<uv::Timer> watchdog_;
  // status(): what words the text when its turn comes, the timer that sends it, the
  // last send.
  std::function<std::string()> summary_;
  std::optional<uv::Timer> status_timer_;
  std::chrono::nanoseconds last_status_{};
};

}  // namespace netmond
