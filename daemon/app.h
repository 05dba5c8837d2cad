// The daemon as a whole: loads the config, owns the loop and everything on it, handles
// signals, and runs either forever (the daemon) or once (--once).
#pragma once

#include "ares_channel.h"
#include "cli.h"
#include "config.h"
#include "console.h"
#include "control.h"
#include "curl_multi.h"
#include "metrics.h"
#include "raw_icmp_sockets.h"
#include "report.h"
#include "resolver.h"
#include "scheduler.h"
#include "systemd_notifier.h"

#include "base/uv.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace netmond {

class App : public Reporter {
 public:
  explicit App(Options options);
  ~App() override;
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Runs to the end; returns the process exit code.
  int run();

  // Reporter: forwards to the log, and counts results for --once.
  void result(const CheckConfig& check, const CheckState& state, const Result& r,
              const RunInfo& info) override;
  void transition(const CheckConfig& check, Health from, Health to, const Result& r) override;

 private:
  // Loads the configured source at start; prints every diagnostic on stderr and returns
  // nullopt when there is any.
  std::optional<Config> load();
  void apply_logging(const LogConfig& log);
  struct ReloadOutcome {
    bool ok = false;
    ApplySummary applied;
    std::vector<std::string> errors;  // "FILE:LINE:COL: path: message", and the summary
  };
  using ReloadDone = std::function<void(const ReloadOutcome&)>;
  // Reloads the configuration (SIGHUP, the console, the control socket's `reload`); a
  // broken file changes nothing. The file is read and validated on libuv's thread pool
  // while checks keep running, and applied on the loop; `done`, if given, hears the
  // outcome then. A reload asked for while one is under way follows it (several such
  // requests share one), so every caller gets a reading of the file begun after it asked.
  // `trigger` names the cause in the log.
  void reload(std::string_view trigger, ReloadDone done = {});
  struct ReloadJob;
  void start_reload(std::string trigger, std::vector<ReloadDone> waiters);
  void finish_reload(ReloadJob& job);
  // Frees an applied configuration's leftovers and trims the heap, beside the loop.
  void release_later(std::optional<Config> config);
  // Points the control socket at `path` ("" turns it off), if that changes anything.
  void apply_control(const ControlConfig& control);
  void stop();
  int check_config(const Config& config);
  // "42 checks: 40 up, 2 down" (+ ", 3 pending" while some have no state yet).
  std::string summary() const;

  Options options_;
  std::string source_;  // the config file, or "" for the embedded default
  uv_loop_t loop_{};
  LogReporter log_reporter_{LogFormat::Text, LogResults::All};
  // Destruction order matters: runners (scheduler) hold probes that hold resolver
  // requests, curl transfers and DNS channels, so the scheduler goes first, then the DNS
  // channels, the curl multi handle and the resolver, then the loop.
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<CurlMulti> curl_;
  std::unique_ptr<DnsChannels> dns_;
  std::unique_ptr<RawIcmpSockets> icmp_;
  std::unique_ptr<ProbeContext> context_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ControlServer> control_;  // daemon mode only; goes before the scheduler
  std::unique_ptr<Console> console_;        // on a terminal only; goes before the scheduler
  std::unique_ptr<Metrics> metrics_;        // daemon mode only; goes before the scheduler
  std::optional<uv::Signal> sighup_, sigterm_, sigint_;
  std::optional<uv::Timer> stop_timer_;
  std::optional<uv::Prepare> flush_logs_;           // log::flush() once per loop turn
  std::optional<SystemdNotifier> notifier_;         // daemon mode only, not --once
  std::string reload_problem_;                      // the last rejected reload, for STATUS=
  std::optional<uv::BackgroundWork> reload_work_;   // the reload being read, if any
  std::optional<uv::BackgroundWork> release_work_;  // see release_later()
  std::vector<ReloadDone> reload_waiters_;          // of that reload
  // Asked for while one was under way: the triggers and callers of the next reload.
  std::vector<std::string> next_reload_triggers_;
  std::vector<ReloadDone> next_reload_waiters_;
  bool once_ = false;
  size_t once_pending_ = 0;
  size_t once_failed_ = 0;
};

}  // namespace netmond
