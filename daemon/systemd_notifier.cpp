#include "systemd_notifier.h"

#include "log.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

namespace netmond {

SystemdNotifier::SystemdNotifier(uv_loop_t* loop) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  status_timer_.emplace(loop);
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is ours.
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    // Half the interval, as sd_watchdog_enabled(3) advises: one late loop turn is no
    // reason to be killed, a stalled loop is.
    watchdog_ping_ = std::chrono::microseconds(usec / 2);
    watchdog_.emplace(loop);
    watchdog_->start(
        watchdog_ping_, [this] { send("WATCHDOG=1"); }, watchdog_ping_);
    log::general().debug("systemd watchdog: {} µs, pinging every {} µs", usec,
                         watchdog_ping_.count());
  }
}

namespace {
constexpr std::chrono::seconds kStatusEvery{1};
}  // namespace

void SystemdNotifier::ready(const std::string& status) {
  send("READY=1\nSTATUS=" + status);
  last_status_ = uv::now();
  if (status_timer_) status_timer_->stop();  // this text is the latest
}

void SystemdNotifier::reloading() {
  // systemd 253+ wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload); 252 ignores it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                    static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::stopping() {
  send("STOPPING=1");
  watchdog_.reset();
  status_timer_.reset();
}

void SystemdNotifier::status(std::function<std::string()> summary) {
  if (!enabled_) return;
  summary_ = std::move(summary);
  if (status_timer_->active()) return;  // a send is due, and words the latest state
  const auto wait = std::max(std::chrono::nanoseconds(0), last_status_ + kStatusEvery - uv::now());
  status_timer_->start(wait, [this] {
    send("STATUS=" + summary_());
    last_status_ = uv::now();
  });
}

void SystemdNotifier::send(const std::string& state) {
  if (!enabled_) return;
  int rc = sd_notify(0, state.c_str());
  if (rc < 0 && !send_failed_) {
    send_failed_ = true;
    log::general().error("cannot notify systemd (NOTIFY_SOCKET): {}", std::strerror(-rc));
  }
}

}  // namespace netmond
