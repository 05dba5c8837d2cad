#include "check_state.h"

#include <catch2/catch.hpp>

#include <vector>

using namespace netmond;

namespace {
// Feeds a run sequence ("+" ok, "-" failed) and returns the health after each run.
std::vector<Health> feed(const char* runs, unsigned fail_after, unsigned recover_after) {
  CheckState s;
  std::vector<Health> out;
  auto t = std::chrono::system_clock::time_point{};
  for (const char* c = runs; *c; ++c) {
    t += std::chrono::seconds(1);
    s = next_state(s, *c == '+', fail_after, recover_after, t);
    out.push_back(s.health);
  }
  return out;
}
constexpr Health U = Health::Up, D = Health::Down, X = Health::Unknown;
}  // namespace

TEST_CASE("with thresholds of 1 every result decides the state", "[state]") {
  CHECK(feed("+-+", 1, 1) == std::vector{U, D, U});
  CHECK(feed("-", 1, 1) == std::vector{D});
}

TEST_CASE("DOWN needs fail_after consecutive failures", "[state]") {
  CHECK(feed("+--+---", 3, 1) == std::vector{U, U, U, U, U, U, D});
}

TEST_CASE("UP needs recover_after consecutive successes", "[state]") {
  CHECK(feed("-++-+++", 1, 3) == std::vector{D, D, D, D, D, D, U});
}

TEST_CASE("the first state out of UNKNOWN uses the same thresholds", "[state]") {
  CHECK(feed("+-++", 2, 2) == std::vector{X, X, X, U});
  CHECK(feed("-+--", 2, 2) == std::vector{X, X, X, D});
}

TEST_CASE("counters and since", "[state]") {
  CheckState s;
  auto t0 = std::chrono::system_clock::time_point{} + std::chrono::seconds(10);
  s = next_state(s, true, 1, 1, t0);
  CHECK(s.since == t0);
  s = next_state(s, true, 1, 1, t0 + std::chrono::seconds(1));
  CHECK(s.since == t0);  // unchanged health keeps its since
  s = next_state(s, false, 2, 1, t0 + std::chrono::seconds(2));
  CHECK(s.health == Health::Up);
  CHECK(s.runs == 3);
  CHECK(s.failures == 1);
  CHECK(s.fail_streak == 1);
  CHECK(s.ok_streak == 0);
}
