#include "scheduler.h"

#include "base/duration.h"

#include <fmt/format.h>

#include <cmath>
#include <set>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace netmond {

using std::chrono::nanoseconds;

std::chrono::nanoseconds schedule_phase(const std::string& name, nanoseconds interval) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // FNV-1a alone barely moves the high bits for the last characters of a name (the prime is
  // 2^40 + 0x1b3), and the phase is taken from the high bits: "c0" .. "c1999", or web1, web2,
  // all fell within a third of the interval. MurmurHash3's finaliser mixes every bit in.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  // interval * h / 2^64, in 128-bit arithmetic so large intervals do not overflow.
  auto scaled =
      (static_cast<unsigned __int128>(h) * static_cast<std::uint64_t>(interval.count())) >> 64;
  return nanoseconds(static_cast<std::int64_t>(scaled));
}

CheckRunner::CheckRunner(uv_loop_t* loop, CheckConfig config, std::unique_ptr<Probe> probe,
                         Reporter& reporter, DeadlineList& deadlines)
    : loop_(loop),
      config_(std::move(config)),
      probe_(std::move(probe)),
      reporter_(reporter),
      slot_timer_(loop),
      deadlines_(deadlines) {}

CheckRunner::~CheckRunner() {
  if (in_flight_ && probe_) probe_->cancel();
}

void CheckRunner::schedule(nanoseconds origin) {
  periodic_ = true;
  nanoseconds interval = config_.interval;
  first_due_ = origin + schedule_phase(config_.name, interval);
  due_ = first_due_;
  if (!in_flight_) arm_next(due_);
}

void CheckRunner::run_now() {
  if (in_flight_) return;
  slot_timer_.stop();
  due_ = uv::now();
  run_start_ = due_;
  attempt_ = 0;
  attempts_ = nullptr;  // an array from the first push_back: no allocation without retries
  start_attempt();
}

void CheckRunner::arm_next(nanoseconds due) {
  due_ = due;
  uv_update_time(loop_);
  // On a shared grid of the loop's clock: the checks due within one grid step start in one
  // wake-up of the loop. Evenly spread phases otherwise wake it once per run, and a wake-up
  // costs this VM about 40 us (1,000 checks at 1 s: 1,350 wake-ups a second, 121 us of CPU
  // per result, against 71 us when most runs shared a wake). The first grid point at or
  // after the due time: the loop's clock never runs ahead of uv::now(), so no run starts
  // early.
  const auto due_ms = static_cast<std::uint64_t>(
      std::chrono::ceil<std::chrono::milliseconds>(std::max(due, nanoseconds(0))).count());
  const std::uint64_t grid = kScheduleGrid.count();
  slot_timer_.start_at((due_ms + grid - 1) / grid * grid, [this] { on_due(); });
}

void CheckRunner::on_due() {
  nanoseconds now = uv::now();
  // The loop's timers have millisecond resolution and may fire a fraction early.
  if (now < due_) {
    slot_timer_.start(due_ - now, [this] { on_due(); });
    return;
  }
  if (in_flight_) return;
  run_start_ = now;
  attempt_ = 0;
  attempts_ = nullptr;  // an array from the first push_back: no allocation without retries
  start_attempt();
}

void CheckRunner::start_attempt() {
  ++attempt_;
  in_flight_ = true;
  attempt_start_ = uv::now();
  if (!probe_) {
    // Only reachable if a registered type failed to build its probe.
    slot_timer_.start({}, [this] {
      finish_attempt(Result::make(Status::LocalError, "probe could not be created"));
    });
    return;
  }
  probe_->start(config_.timeout, [this](Result r) {
    deadline_.cancel();
    finish_attempt(std::move(r));
  });
  // Due a full timeout after start() returned: the probe's own clock started inside it, so
  // no run is cut short by its clock or ours.
  deadlines_.arm(deadline_, [this] { on_deadline(); });
}

void CheckRunner::on_deadline() {
  Result r = probe_->expire();
  if (r.latency.count() == 0) r.latency = uv::now() - attempt_start_;
  finish_attempt(std::move(r));
}

void CheckRunner::finish_attempt(Result r) {
  deadline_.cancel();
  if (config_.retries > 0) {
    attempts_.push_back(
        {{"reason", code(r.status)},
         {"message", r.message},
         {"latency_ms", std::round(static_cast<double>(r.latency.count()) / 1e3) / 1e3}});
  }
  if (!r.ok() && attempt_ <= config_.retries) {
    // Retry at once, but from the loop: the probe is still inside its completion path.
    slot_timer_.start({}, [this] { start_attempt(); });
    return;
  }
  in_flight_ = false;
  if (attempts_.size() > 1) r.details["attempts"] = std::move(attempts_);

  RunInfo info;
  info.lateness = run_start_ > due_ ? run_start_ - due_ : nanoseconds(0);
  info.attempts = attempt_;
  durations_.observe(std::chrono::duration<double>(r.latency).count());
  Health before = state_.health;
  state_ = next_state(state_, r.ok(), config_.fail_after, config_.recover_after,
                      std::chrono::system_clock::now());
  // Moved, not copied: the details are a tree of allocations. The reporters see the new
  // state and last result together.
  const Result& last = last_.emplace(std::move(r));
  reporter_.result(config_, state_, last, info);
  if (state_.health != before) reporter_.transition(config_, before, state_.health, last);

  if (periodic_) {
    // The first slot strictly after now: an overrun skips slots rather than bursting.
    nanoseconds now = uv::now();
    nanoseconds interval = config_.interval;
    auto next_index = now < first_due_ ? 0 : (now - first_due_) / interval + 1;
    auto current_index = due_ < first_due_ ? -1 : (due_ - first_due_) / interval;
    if (next_index > current_index + 1)
      skipped_ += static_cast<std::uint64_t>(next_index - current_index - 1);
    arm_next(first_due_ + next_index * interval);
  }
}

Scheduler::Scheduler(uv_loop_t* loop, Reporter& reporter, ProbeFactory factory)
    : loop_(loop), reporter_(reporter), factory_(std::move(factory)) {}

ApplySummary Scheduler::apply(const std::vector<CheckConfig>& checks, bool periodic) {
  // In place: the common reload changes a few checks among thousands, and then costs a
  // lookup and a comparison per check (10,000 checks: ~2 ms of loop time), not a new map.
  ApplySummary s;
  const nanoseconds origin = uv::now();
  std::vector<std::unique_ptr<CheckRunner>> retired;  // removed or replaced: destroyed last
  std::vector<const CheckConfig*> starting;           // new or changed
  for (const auto& c : checks) {
    auto it = runners_.find(c.name);
    if (it == runners_.end()) {
      ++s.added;
    } else if (it->second->config() == c) {
      ++s.unchanged;
      it->second->reloaded();
      continue;
    } else {
      ++s.changed;
      retired.push_back(std::move(it->second));  // its entry is refilled below
    }
    starting.push_back(&c);
  }
  if (s.unchanged + s.changed < runners_.size()) {  // some are not in `checks` any more
    std::unordered_set<std::string_view> names;
    names.reserve(checks.size());
    for (const auto& c : checks) names.insert(c.name);
    for (auto it = runners_.begin(); it != runners_.end();) {
      if (names.contains(it->first)) {
        ++it;
        continue;
      }
      ++s.removed;
      retired.push_back(std::move(it->second));
      it = runners_.erase(it);
    }
  }
  for (const CheckConfig* c : starting) {
    auto runner = std::make_unique<CheckRunner>(loop_, *c, factory_(*c), reporter_,
                                                deadlines_for(c->timeout));
    if (periodic) runner->schedule(origin);
    runners_.insert_or_assign(c->name, std::move(runner));
  }
  retired.clear();  // cancels their runs
  if (s.changed + s.removed > 0) {
    // The lists of timeouts no check has any more (each holds a loop timer).
    std::set<nanoseconds> in_use;
    for (const auto& [name, r] : runners_) in_use.insert(r->config().timeout);
    std::erase_if(deadlines_, [&](const auto& kv) { return !in_use.contains(kv.first); });
  }
  return s;
}

DeadlineList& Scheduler::deadlines_for(nanoseconds timeout) {
  std::unique_ptr<DeadlineList>& list = deadlines_[timeout];
  if (!list) list = std::make_unique<DeadlineList>(loop_, timeout);
  return *list;
}

void Scheduler::run_all_now() {
  for (auto& [name, r] : runners_) r->run_now();
}

void Scheduler::clear() {
  runners_.clear();
  deadlines_.clear();
}

size_t Scheduler::in_flight() const {
  size_t n = 0;
  for (const auto& [name, r] : runners_) n += r->in_flight() ? 1 : 0;
  return n;
}

const CheckRunner* Scheduler::find(const std::string& name) const {
  auto it = runners_.find(name);
  return it == runners_.end() ? nullptr : it->second.get();
}

CheckRunner* Scheduler::find(const std::string& name) {
  return const_cast<CheckRunner*>(std::as_const(*this).find(name));
}

}  // namespace netmond
