// Prometheus metrics of the running daemon (docs/metrics.md): served at /metrics by
// MetricsServer and, optionally, written to a file for node_exporter's textfile collector.
//
// The text is rendered from the scheduler's checks (state, last result) when asked for,
// plus what only this class keeps: the schedule lateness of all runs and the outcome of the
// last configuration load.
//
// The texts are formatted and the textfile written on threads of their own, from a snapshot
// taken on the loop (at 10,000 checks the text is 22 MB; formatting it took 130 ms).
//
// The textfile is rewritten at most once a second: the first result after a quiet second
// writes on the next loop turn, later ones are coalesced into one write a second after the
// previous write. Each write goes to PATH.tmp.<pid> in the same directory, then is renamed
// over PATH, so a reader sees the old file or the new one, never a partial one.
#pragma once

#include "config.h"
#include "metrics_server.h"
#include "metrics_text.h"
#include "report.h"
#include "scheduler.h"

#include "base/uv.h"

#include <chrono>
#include <string>

namespace netmond {

class Metrics {
 public:
  static constexpr std::chrono::seconds kTextfileInterval{1};

  Metrics(uv_loop_t* loop, const Scheduler& scheduler);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Starts, moves or stops the listener and the textfile as `config` says (after the
  // checks were applied). An unchanged listener that failed to bind is tried again.
  void apply(const MetricsConfig& config);
  // A configuration load finished (at start, SIGHUP, the control socket, the console).
  void config_loaded(bool ok);
  // Every finished run (its duration is in its runner's histogram already).
  void result(const RunInfo& info);

  // What the text needs, copied (no formatting): format_metrics() of it may run on any
  // thread.
  MetricsSnapshot snapshot() const;
  bool listening() const { return server_.listening(); }

 private:
  void schedule_textfile();
  void write_textfile();
  void textfile_written(const std::string& why);

  uv_loop_t* loop_;
  const Scheduler& scheduler_;
  LatenessHistogram lateness_;
  bool last_load_ok_ = true;
  double last_load_seconds_ = 0;
  std::string textfile_;
  bool textfile_failing_ = false;
  std::chrono::nanoseconds last_write_{-kTextfileInterval};  // loop time
  uv::Timer textfile_timer_;
  uv::BackgroundWork textfile_work_;  // formats and writes the textfile off the loop
  bool textfile_again_ = false;       // a result came while a write was under way
  MetricsServer server_;              // last: its render callback uses the members above
};

}  // namespace netmond
