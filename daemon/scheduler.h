// The scheduler: one CheckRunner per check, each with its own timer on the one loop.
//
// Timing rules (docs/architecture.md):
//  - A check's runs are due at origin + phase + N * interval, where phase is a stable hash
//    of the check's name spread over one interval: thousands of checks never fire at
//    once, and a restart keeps each check's phase.
//  - Fixed rate, no drift: the timer is re-armed for the next due time, never "interval
//    from now". A run that overruns its slot skips the missed slots instead of bursting.
//  - One run in flight per check. Each attempt has a deadline (the check's timeout), armed
//    by the runner on the scheduler's list for that timeout (DeadlineList: one loop timer
//    per distinct timeout); when it fires the probe is expired and its answer, if any,
//    ignored.
#pragma once

#include "check_state.h"
#include "config.h"
#include "deadline_list.h"
#include "histogram.h"
#include "probe.h"
#include "report.h"

#include "base/uv.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace netmond {

using ProbeFactory = std::function<std::unique_ptr<Probe>(const CheckConfig&)>;

// Offset of a check's first run within its interval: interval * fnv1a64(name) / 2^64.
// Runs start on this grid of the loop's clock, up to one step after they are due.
inline constexpr std::chrono::milliseconds kScheduleGrid{2};

std::chrono::nanoseconds schedule_phase(const std::string& name, std::chrono::nanoseconds interval);

class CheckRunner {
 public:
  // `deadlines`: the list of the check's timeout, which must outlive the runner.
  CheckRunner(uv_loop_t* loop, CheckConfig config, std::unique_ptr<Probe> probe, Reporter& reporter,
              DeadlineList& deadlines);
  ~CheckRunner();  // cancels a run in flight; no result is reported
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  // Starts periodic runs, phase-shifted from `origin` (a uv::now() value).
  void schedule(std::chrono::nanoseconds origin);
  // Starts one run now (if none is in flight); with `once` no further run is scheduled.
  void run_now();

  const CheckConfig& config() const { return config_; }
  const CheckState& state() const { return state_; }
  const std::optional<Result>& last_result() const { return last_; }
  bool in_flight() const { return in_flight_; }
  // A reload kept this check unchanged: tells its probe (Probe::reloaded).
  void reloaded() { probe_->reloaded(); }
  std::uint64_t skipped_slots() const { return skipped_; }
  // How long this runner's runs took (the last attempt of each): the check's histogram
  // since it (re)started, kept here so that recording a result looks nothing up.
  const DurationHistogram& durations() const { return durations_; }

 private:
  void arm_next(std::chrono::nanoseconds after);
  void on_due();
  void start_attempt();
  void on_deadline();
  void finish_attempt(Result r);

  uv_loop_t* loop_;
  CheckConfig config_;
  std::unique_ptr<Probe> probe_;
  Reporter& reporter_;
  uv::Timer slot_timer_;
  DeadlineList& deadlines_;
  DeadlineList::Entry deadline_;
  CheckState state_;
  std::optional<Result> last_;

  bool periodic_ = false;
  std::chrono::nanoseconds first_due_{};  // origin + phase
  std::chrono::nanoseconds due_{};        // due time of the run in flight or next
  std::chrono::nanoseconds run_start_{};
  std::chrono::nanoseconds attempt_start_{};
  bool in_flight_ = false;
  unsigned attempt_ = 0;
  nlohmann::ordered_json attempts_;  // the attempts of this run, when it has retries
  std::uint64_t skipped_ = 0;
  DurationHistogram durations_;
};

struct ApplySummary {
  size_t added = 0, removed = 0, changed = 0, unchanged = 0;
};

class Scheduler {
 public:
  Scheduler(uv_loop_t* loop, Reporter& reporter, ProbeFactory factory);

  // Makes the running set of checks equal to `checks`, by name: unchanged checks keep
  // their timers, state and run in flight; changed ones restart with a fresh state;
  // removed ones are cancelled; new ones are scheduled (unless `periodic` is false).
  ApplySummary apply(const std::vector<CheckConfig>& checks, bool periodic = true);
  // Runs every check once, now, all concurrently (for --once).
  void run_all_now();
  // Cancels and removes every check.
  void clear();

  size_t size() const { return runners_.size(); }
  size_t in_flight() const;
  // How many deadline lists (loop timers for deadlines) there are: one per timeout in use.
  size_t deadline_lists() const { return deadlines_.size(); }
  const CheckRunner* find(const std::string& name) const;
  CheckRunner* find(const std::string& name);
  template <typename Fn>
  void for_each(Fn fn) const {
    for (const auto& [name, r] : runners_) fn(*r);
  }

 private:
  DeadlineList& deadlines_for(std::chrono::nanoseconds timeout);

  uv_loop_t* loop_;
  Reporter& reporter_;
  ProbeFactory factory_;
  // One per timeout in use; declared before runners_, whose entries must go first.
  std::map<std::chrono::nanoseconds, std::unique_ptr<DeadlineList>> deadlines_;
  std::map<std::string, std::unique_ptr<CheckRunner>> runners_;
};

}  // namespace netmond
