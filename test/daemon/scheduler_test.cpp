#include "scheduler.h"

#include "support/loop.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <map>

using namespace netmond;
using namespace std::chrono_literals;
using test::LoopFixture;

namespace {

// A probe that answers after `delay` with the next status of `script` (then repeats the
// last), and counts what the runner asked of it, in the manner of ninja's fakes.
struct FakeStats {
  int starts = 0, cancels = 0, expires = 0, active = 0, max_active = 0, reloads = 0;
  std::vector<std::chrono::nanoseconds> start_times;
};

class FakeProbe : public Probe {
 public:
  FakeProbe(uv_loop_t* loop, FakeStats& stats, std::chrono::milliseconds delay,
            std::deque<Status> script)
      : timer_(loop), stats_(stats), delay_(delay), script_(std::move(script)) {}
  ~FakeProbe() override { cancel(); }
  void start(std::chrono::milliseconds, DoneFn done) override {
    ++stats_.starts;
    stats_.max_active = std::max(stats_.max_active, ++stats_.active);
    stats_.start_times.push_back(uv::now());
    started_ = uv::now();
    Status s = script_.front();
    if (script_.size() > 1) script_.pop_front();
    timer_.start(delay_, [this, s, done] {
      --stats_.active;
      done(Result::make(s, s == Status::Ok ? "fine" : "broken", uv::now() - started_));
    });
  }
  Result expire() override {
    ++stats_.expires;
    stop();
    return Result::make(Status::Timeout, "fake timed out");
  }
  void cancel() override {
    if (timer_.active()) ++stats_.cancels;
    stop();
  }
  void reloaded() override { ++stats_.reloads; }

 private:
  void stop() {
    if (timer_.active()) --stats_.active;
    timer_.stop();
  }
  uv::Timer timer_;
  FakeStats& stats_;
  std::chrono::milliseconds delay_;
  std::deque<Status> script_;
  std::chrono::nanoseconds started_{};
};

struct Recorded {
  std::string check;
  Status status;
  Health health;
  RunInfo info;
  Result result;
};

class RecordingReporter : public Reporter {
 public:
  void result(const CheckConfig& c, const CheckState& s, const Result& r,
              const RunInfo& info) override {
    results.push_back({c.name, r.status, s.health, info, r});
  }
  void transition(const CheckConfig& c, Health from, Health to, const Result&) override {
    transitions.push_back(c.name + ":" + std::string(to_string(from)) + "->" +
                          std::string(to_string(to)));
  }
  std::vector<Recorded> results;
  std::vector<std::string> transitions;
};

CheckConfig check(std::string name, std::chrono::milliseconds interval,
                  std::chrono::milliseconds timeout, std::uint16_t port = 1) {
  CheckConfig c;
  c.name = std::move(name);
  c.endpoint.host = "127.0.0.1";
  c.interval = interval;
  c.timeout = timeout;
  c.spec = TcpSpec{port};
  return c;
}

// A factory handing out FakeProbes whose behaviour and stats are set per check name.
struct FakeFactory {
  explicit FakeFactory(uv_loop_t* l) : loop(l) {}
  uv_loop_t* loop;
  std::map<std::string, FakeStats> stats;
  std::map<std::string, std::pair<std::chrono::milliseconds, std::deque<Status>>> behaviour;
  ProbeFactory get() {
    return [this](const CheckConfig& c) -> std::unique_ptr<Probe> {
      auto b = behaviour.count(c.name)
                   ? behaviour[c.name]
                   : std::pair{std::chrono::milliseconds(1), std::deque<Status>{Status::Ok}};
      return std::make_unique<FakeProbe>(loop, stats[c.name], b.first, b.second);
    };
  }
};

}  // namespace

TEST_CASE("phases are stable and spread evenly over the interval", "[scheduler]") {
  const auto interval = std::chrono::nanoseconds(60s);
  CHECK(schedule_phase("a/tcp:80", interval) == schedule_phase("a/tcp:80", interval));
  CHECK(schedule_phase("a/tcp:80", interval) != schedule_phase("a/tcp:81", interval));
  // Names that differ in the middle, and names that differ only in their last characters
  // (numbered checks: FNV-1a alone put "c0" .. "c4999" within a third of the interval).
  for (const auto& [prefix, suffix] :
       {std::pair<std::string, std::string>{"host", ".example/tcp:443"},
        {"c", ""},
        {"web-", ""},
        {"dns-", "/A"}}) {
    INFO(prefix << "N" << suffix);
    int buckets[10] = {};
    for (int i = 0; i < 5000; ++i) {
      auto p = schedule_phase(prefix + std::to_string(i) + suffix, interval);
      REQUIRE(p >= 0ns);
      REQUIRE(p < interval);
      ++buckets[p * 10 / interval];
    }
    for (int b : buckets) {
      CHECK(b > 400);  // expected 500 each
      CHECK(b < 600);
    }
  }
}

TEST_CASE("runs follow fixed due times without drift", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    fakes.behaviour["c"] = {20ms, {Status::Ok}};
    Scheduler s(f.loop(), rep, fakes.get());
    s.apply({check("c", 100ms, 50ms)});
    REQUIRE(f.run_until([&] { return rep.results.size() >= 8; }, 3s));
    const auto& t = fakes.stats["c"].start_times;
    // Each run starts at first + k * interval: a repeat timer re-armed after each 20 ms run
    // would drift by 20 ms per run, 140 ms by the 8th.
    for (size_t k = 1; k < t.size(); ++k) {
      auto expected = t[0] + static_cast<int>(k) * std::chrono::nanoseconds(100ms);
      CHECK(std::chrono::abs(t[k] - expected) < 30ms);
    }
    for (const auto& r : rep.results) CHECK(r.info.lateness < 30ms);
    CHECK(fakes.stats["c"].max_active == 1);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("an overrunning run skips slots instead of bursting, never overlapping", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    // Each attempt fails after 80 ms and there are 2 retries: a run takes ~240 ms of a
    // 100 ms interval.
    fakes.behaviour["slow"] = {80ms, {Status::Refused}};
    Scheduler s(f.loop(), rep, fakes.get());
    auto c = check("slow", 100ms, 90ms);
    c.retries = 2;
    s.apply({c});
    REQUIRE(f.run_until([&] { return rep.results.size() >= 3; }, 5s));
    CHECK(fakes.stats["slow"].max_active == 1);
    CHECK(s.find("slow")->skipped_slots() >= 4);  // two slots skipped per run
    // Runs after the first start on slot boundaries: 300 ms apart, not 240.
    const auto& t = fakes.stats["slow"].start_times;  // 3 attempts per run
    REQUIRE(t.size() >= 7);
    auto gap = t[6] - t[3];
    CHECK(gap > 270ms);
    CHECK(gap < 340ms);
    for (const auto& r : rep.results) CHECK(r.info.attempts == 3);
    REQUIRE(rep.results[0].result.details.contains("attempts"));
    CHECK(rep.results[0].result.details["attempts"].size() == 3);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("the runner's deadline expires a probe that never answers", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    fakes.behaviour["hang"] = {10'000ms, {Status::Ok}};
    Scheduler s(f.loop(), rep, fakes.get());
    s.apply({check("hang", 1000ms, 150ms)}, /*periodic=*/false);
    s.run_all_now();
    REQUIRE(f.run_until([&] { return !rep.results.empty(); }, 3s));
    CHECK(rep.results[0].status == Status::Timeout);
    CHECK(rep.results[0].result.latency >= 140ms);
    CHECK(rep.results[0].result.latency < 600ms);
    CHECK(fakes.stats["hang"].expires == 1);
    CHECK(fakes.stats["hang"].active == 0);
    CHECK(s.in_flight() == 0);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("retries turn a flaky run into one successful result", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    fakes.behaviour["flaky"] = {1ms, {Status::Timeout, Status::Refused, Status::Ok}};
    Scheduler s(f.loop(), rep, fakes.get());
    auto c = check("flaky", 1000ms, 100ms);
    c.retries = 3;
    s.apply({c}, false);
    s.run_all_now();
    REQUIRE(f.run_until([&] { return !rep.results.empty(); }, 3s));
    f.run_for(50ms);
    REQUIRE(rep.results.size() == 1);
    CHECK(rep.results[0].status == Status::Ok);
    CHECK(rep.results[0].info.attempts == 3);
    auto attempts = rep.results[0].result.details["attempts"];
    REQUIRE(attempts.size() == 3);
    CHECK(attempts[0]["reason"] == "timeout");
    CHECK(attempts[1]["reason"] == "refused");
    CHECK(attempts[2]["reason"] == "ok");
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("health transitions are reported once each", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    fakes.behaviour["x"] = {1ms, {Status::Ok, Status::Refused, Status::Refused, Status::Ok}};
    Scheduler s(f.loop(), rep, fakes.get());
    auto c = check("x", 100ms, 50ms);
    c.fail_after = 2;
    s.apply({c});
    REQUIRE(f.run_until([&] { return rep.results.size() >= 5; }, 3s));
    CHECK(rep.transitions == std::vector<std::string>{"x:unknown->up", "x:up->down", "x:down->up"});
    CHECK(s.find("x")->state().runs >= 5);
    CHECK(s.find("x")->state().failures == 2);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("apply diffs by name: unchanged checks keep state, others restart", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    fakes.behaviour["removed"] = {10'000ms, {Status::Ok}};  // in flight when removed
    Scheduler s(f.loop(), rep, fakes.get());
    auto keep = check("keep", 100ms, 50ms);
    auto change = check("change", 100ms, 50ms);
    auto removed = check("removed", 100ms, 50ms);
    auto first = s.apply({keep, change, removed});
    CHECK(first.added == 3);
    REQUIRE(f.run_until(
        [&] { return s.find("keep")->state().runs >= 2 && s.find("removed")->in_flight(); }, 3s));
    const CheckRunner* keep_runner = s.find("keep");
    auto keep_runs = keep_runner->state().runs;

    auto changed = change;
    changed.spec = TcpSpec{2};
    auto summary = s.apply({keep, changed, check("added", 100ms, 50ms)});
    CHECK(summary.added == 1);
    CHECK(summary.removed == 1);
    CHECK(summary.changed == 1);
    CHECK(summary.unchanged == 1);
    CHECK(s.size() == 3);
    CHECK(s.find("keep") == keep_runner);     // the same runner, timers and all
    CHECK(fakes.stats["keep"].reloads == 1);  // and its probe was told (Probe::reloaded)
    CHECK(fakes.stats["change"].reloads == 0);
    CHECK(s.find("keep")->state().runs >= keep_runs);
    CHECK(s.find("change")->state().runs == 0);  // fresh state
    CHECK(s.find("change")->durations().count == 0);
    CHECK(s.find("keep")->durations().count == keep_runner->state().runs);
    CHECK(s.find("removed") == nullptr);
    CHECK(fakes.stats["removed"].cancels == 1);
    CHECK(fakes.stats["removed"].active == 0);
    REQUIRE(f.run_until([&] { return s.find("added")->state().runs >= 1; }, 3s));

    // Applying the same list again changes nothing.
    auto again = s.apply({keep, changed, check("added", 100ms, 50ms)});
    CHECK(again.unchanged == 3);
    CHECK(fakes.stats["keep"].reloads == 2);
    CHECK(fakes.stats["added"].reloads == 1);
    CHECK(again.added + again.removed + again.changed == 0);

    // Only removals: the rest stay as they are.
    auto fewer = s.apply({keep});
    CHECK(fewer.removed == 2);
    CHECK(fewer.unchanged == 1);
    CHECK(s.size() == 1);
    CHECK(s.find("keep") == keep_runner);
  }
  REQUIRE(f.finish() == 0);
}

TEST_CASE("one deadline list per timeout in use, and none left for timeouts gone", "[scheduler]") {
  LoopFixture f;
  {
    RecordingReporter rep;
    FakeFactory fakes(f.loop());
    fakes.behaviour["slow"] = {10'000ms, {Status::Ok}};  // each run ends at its deadline
    Scheduler s(f.loop(), rep, fakes.get());
    s.apply({check("a", 100ms, 50ms), check("b", 100ms, 50ms), check("slow", 100ms, 60ms)});
    CHECK(s.deadline_lists() == 2);
    REQUIRE(f.run_until([&] { return fakes.stats["slow"].expires >= 2; }, 3s));
    CHECK(rep.results.back().status == Status::Timeout);

    // "slow" now has the others' timeout: its deadlines go on their list.
    s.apply({check("a", 100ms, 50ms), check("b", 100ms, 50ms), check("slow", 100ms, 50ms)});
    CHECK(s.deadline_lists() == 1);
    const int expired = fakes.stats["slow"].expires;
    REQUIRE(f.run_until([&] { return fakes.stats["slow"].expires >= expired + 2; }, 3s));
    s.apply({});
    CHECK(s.deadline_lists() == 0);
  }
  REQUIRE(f.finish() == 0);
}
