// The monitoring-plugins conventions of `netmonctl probe --format nagios`: threshold
// ranges as https://www.monitoring-plugins.org/doc/guidelines.html defines them, and
// perfdata items.
#include "../../ctl/nagios.h"  // netmonctl is not a library: by path

#include <catch2/catch.hpp>

using namespace netmond::ctl::nagios;

namespace {
Range range(const char* text) {
  std::string error;
  auto r = Range::parse(text, &error);
  INFO(error);
  REQUIRE(r);
  return *r;
}
}  // namespace

TEST_CASE("nagios ranges alert as the plugins' guidelines say", "[ctl][nagios]") {
  // "10": outside 0..10.
  CHECK(range("10").alerts(-1));
  CHECK_FALSE(range("10").alerts(0));
  CHECK_FALSE(range("10").alerts(10));
  CHECK(range("10").alerts(10.001));
  // "10:": below 10.
  CHECK(range("10:").alerts(9.99));
  CHECK_FALSE(range("10:").alerts(1e9));
  // "~:10": above 10.
  CHECK(range("~:10").alerts(11));
  CHECK_FALSE(range("~:10").alerts(-1e9));
  // "10:20": outside; "@10:20": inside, ends included.
  CHECK(range("10:20").alerts(9));
  CHECK_FALSE(range("10:20").alerts(15));
  CHECK(range("10:20").alerts(21));
  CHECK(range("@10:20").alerts(10));
  CHECK(range("@10:20").alerts(20));
  CHECK_FALSE(range("@10:20").alerts(20.5));
  // Decimals, as latency thresholds in seconds are.
  CHECK(range("0.5").alerts(0.51));
  CHECK_FALSE(range("0.5").alerts(0.0234));
  CHECK(range("@0.1:0.5").alerts(0.25));
  CHECK(range(":0.5").alerts(0.6));  // an empty start is 0
}

TEST_CASE("nagios ranges that are not ranges are refused with the reason", "[ctl][nagios]") {
  for (const char* bad :
       {"", "@", "abc", "1:abc", "x:1", "20:10", "0x10", "inf", "nan", "1e999", "1:2:3"}) {
    INFO(bad);
    std::string error;
    CHECK_FALSE(Range::parse(bad, &error));
    CHECK(error.find("is not a threshold range") != std::string::npos);
  }
}

TEST_CASE("nagios perfdata: label=value unit, then warn, crit and min, plain decimals",
          "[ctl][nagios]") {
  std::string error;
  auto w = Range::parse("0.5", &error);
  auto c = Range::parse("1.0", &error);
  CHECK(perfdata("time", 0.0234, "s", w, c, 0.0) == "time=0.0234s;0.5;1.0;0");
  CHECK(perfdata("time", 0.00000004, "s", std::nullopt, std::nullopt, 0.0) == "time=0s;;;0");
  CHECK(perfdata("pl", 33.3333333, "%", std::nullopt, std::nullopt, std::nullopt) ==
        "pl=33.333333%;;");
  // Labels with spaces are quoted; quotes inside are doubled.
  CHECK(perfdata("ex/A time", 1, "s", std::nullopt, std::nullopt, 0.0) == "'ex/A time'=1s;;;0");
  CHECK(perfdata("it's", 2, "", std::nullopt, std::nullopt, std::nullopt) == "'it''s'=2;;");
  CHECK(name(Status::Ok) == "OK");
  CHECK(name(Status::Warning) == "WARNING");
  CHECK(name(Status::Critical) == "CRITICAL");
  CHECK(name(Status::Unknown) == "UNKNOWN");
}
