#include "base/duration.h"

#include <catch2/catch.hpp>

using namespace netmond;
using namespace std::chrono_literals;

TEST_CASE("durations parse with a unit or as bare seconds", "[duration][config]") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("60") == 60s);
  CHECK(parse_duration("0.5") == 500ms);
  CHECK(parse_duration("1.5s") == 1500ms);
  CHECK(parse_duration("0.25m") == 15s);
  CHECK(parse_duration(".5s") == 500ms);
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("24h") == 24h);
  // Surrounding blanks are the YAML writer's, not part of the value.
  CHECK(parse_duration(" 30s ") == 30s);
  // Below a millisecond rounds to the nearest one.
  CHECK(parse_duration("1.4ms") == 1ms);
  CHECK(parse_duration("0.0006") == 1ms);
}

TEST_CASE("text that is not a duration is rejected", "[duration][config]") {
  for (const char* text : {"",     " ",    "-1s",   "+1s",    "5x",
                           "s",    "ms",   "1e3",   "1e3s",   "10 s",
                           "5S",   "5sec", "1m30s", "inf",    "nan",
                           "0x10", "1,5s", "25h",   "1.5.5s", "99999999999999999999"}) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_duration(text));
  }
}

TEST_CASE("days: the unit d, and a larger bound when the caller allows it", "[duration][config]") {
  CHECK(parse_duration("1d") == 24h);
  CHECK_FALSE(parse_duration("2d"));  // beyond the default bound of a day
  CHECK(parse_duration("14d", 365 * 24h) == 14 * 24h);
  CHECK(parse_duration("0.5d", 365 * 24h) == 12h);
  CHECK_FALSE(parse_duration("366d", 365 * 24h));
  CHECK(format_duration(14 * 24h) == "14d");
  CHECK(format_duration(36h) == "36h");
}

TEST_CASE("durations format in their shortest exact form", "[duration][config]") {
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(999ms) == "999ms");
  CHECK(format_duration(1s) == "1s");
  CHECK(format_duration(5s) == "5s");
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(1001ms) == "1.001s");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(5min) == "5m");
  CHECK(format_duration(90min) == "90m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(0ms) == "0s");
  // Exact, not rounded to six significant digits.
  CHECK(format_duration(1234567ms) == "1234.567s");
  CHECK(format_duration(86'399'999ms) == "86399.999s");
  // Every format parses back to the same value.
  for (std::chrono::milliseconds d : {1ms, 250ms, 1500ms, 1234567ms, 90000ms, 300000ms})
    CHECK(parse_duration(format_duration(d)) == d);
}

TEST_CASE("latencies format with three significant digits", "[duration][config]") {
  using std::chrono::microseconds;
  using std::chrono::nanoseconds;
  CHECK(format_latency(microseconds(123)) == "0.123ms");
  CHECK(format_latency(nanoseconds(1'500'000)) == "1.50ms");
  CHECK(format_latency(nanoseconds(12'345'000)) == "12.3ms");
  CHECK(format_latency(nanoseconds(150'400'000)) == "150ms");
  CHECK(format_latency(nanoseconds(1'234'000'000)) == "1.23s");
  CHECK(format_latency(0ns) == "0.000ms");
}
