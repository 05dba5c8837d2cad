#include "deadline_list.h"

#include "support/loop.h"

#include <catch2/catch.hpp>

#include <array>
#include <vector>

using namespace netmond;
using namespace std::chrono_literals;
using test::LoopFixture;

TEST_CASE("deadline list: each deadline fires once, in order, never before its timeout",
          "[scheduler]") {
  LoopFixture fixture;
  {
    DeadlineList list(fixture.loop(), 30ms);
    std::array<DeadlineList::Entry, 5> entries;
    std::array<std::chrono::nanoseconds, 5> armed{};
    std::vector<int> fired;
    std::vector<std::chrono::nanoseconds> late;
    for (int i = 0; i < 5; ++i) {
      armed[i] = uv::now();
      list.arm(entries[i], [&, i] {
        fired.push_back(i);
        late.push_back(uv::now() - armed[i] - 30ms);
      });
      fixture.run_for(3ms);  // armed 3 ms apart
    }
    // Cancelled before it is due, and destroyed while armed: neither fires.
    entries[1].cancel();
    CHECK_FALSE(entries[1].armed());
    {
      DeadlineList::Entry doomed;
      list.arm(doomed, [&] { fired.push_back(99); });
    }
    REQUIRE(fixture.run_until([&] { return list.empty(); }, 1s));
    fixture.run_for(40ms);
    CHECK(fired == std::vector<int>{0, 2, 3, 4});
    for (auto l : late) CHECK(l >= 0ns);
    for (const auto& e : entries) CHECK_FALSE(e.armed());
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("deadline list: a deadline may re-arm itself and cancel the next from its callback",
          "[scheduler]") {
  LoopFixture fixture;
  {
    DeadlineList list(fixture.loop(), 10ms);
    DeadlineList::Entry a, b;
    int a_fired = 0, b_fired = 0;
    std::function<void()> on_a = [&] {
      if (++a_fired < 3) list.arm(a, on_a);
      b.cancel();
    };
    list.arm(a, on_a);
    list.arm(b, [&] { ++b_fired; });
    REQUIRE(fixture.run_until([&] { return a_fired == 3; }, 1s));
    fixture.run_for(30ms);
    CHECK(a_fired == 3);
    CHECK(b_fired == 0);
    CHECK(list.empty());
  }
  REQUIRE(fixture.finish() == 0);
}

TEST_CASE("deadline list: cancelling the oldest does not hold up or hurry the next",
          "[scheduler]") {
  LoopFixture fixture;
  {
    DeadlineList list(fixture.loop(), 100ms);
    DeadlineList::Entry first, second;
    list.arm(first, [] {});
    fixture.run_for(5ms);
    const auto second_armed = uv::now();
    std::chrono::nanoseconds second_fired{};
    list.arm(second, [&] { second_fired = uv::now(); });
    first.cancel();  // the timer stays armed for first's time, then re-arms for second's
    REQUIRE(fixture.run_until([&] { return second_fired.count() != 0; }, 1s));
    CHECK(second_fired - second_armed >= 100ms);
    // Re-armed for second's own time, not a whole timeout after first's (which would be
    // ~195 ms after second was armed).
    CHECK(second_fired - second_armed < 180ms);
  }
  REQUIRE(fixture.finish() == 0);
}
