#include "report.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace netmond;
using namespace std::chrono_literals;

namespace {
CheckConfig tcp_check() {
  CheckConfig c;
  c.name = "www.example.com/tcp:80";
  c.endpoint.host = "www.example.com";
  c.spec = TcpSpec{80};
  return c;
}
}  // namespace

TEST_CASE("timestamps are RFC 3339 UTC with milliseconds", "[report]") {
  auto t = std::chrono::system_clock::time_point{} + 1'764'000'000'123ms;
  CHECK(rfc3339_ms(t) == "2025-11-24T16:00:00.123Z");
  CHECK(rfc3339_ms(std::chrono::system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("a result line carries every documented field", "[report]") {
  Result r = Result::make(Status::Refused, "connection refused by 192.0.2.1:80 \"quoted\"\n",
                          12'345'678ns);
  r.details = {{"port", 80}};
  CheckState s;
  s.health = Health::Down;
  RunInfo info;
  info.lateness = 1'500us;
  auto j = result_json(tcp_check(), s, r, info, std::chrono::system_clock::time_point{});
  CHECK(j["event"] == "result");
  CHECK(j["check"] == "www.example.com/tcp:80");
  CHECK(j["type"] == "tcp");
  CHECK(j["target"] == "www.example.com:80");
  CHECK(j["ok"] == false);
  CHECK(j["state"] == "down");
  CHECK(j["latency_ms"] == Approx(12.346));
  CHECK(j["reason"] == "refused");
  CHECK(j["lateness_ms"] == Approx(1.5));
  CHECK(j["details"]["port"] == 80);
  CHECK(j["ts"] == "1970-01-01T00:00:00.000Z");
  // Control characters and quotes survive a round trip through the text form.
  auto back = nlohmann::json::parse(j.dump());
  CHECK(back["message"] == "connection refused by 192.0.2.1:80 \"quoted\"\n");
}

TEST_CASE("the logged result line is the result object's text, byte for byte", "[report]") {
  Result r = Result::make(Status::Ok, "HTTP 200 in 1ms", 1ms);
  CheckState s;
  s.health = Health::Up;
  RunInfo info;
  info.attempts = 2;
  const auto ts = std::chrono::system_clock::time_point{} + 1234ms;
  const auto line = [&] { return result_json_line(tcp_check(), s, r, info, ts); };
  const auto dumped = [&] {
    return result_json(tcp_check(), s, r, info, ts)
        .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  };
  // No details (null), empty details, nested details with text that needs escaping and
  // bytes that are not UTF-8 (replaced, as everywhere in the log).
  CHECK(line() == dumped());
  r.details = nlohmann::ordered_json::object();
  CHECK(line() == dumped());
  r.details = {{"status_code", 200}, {"headers", {{"x", "a\"b\n"}}}, {"raw", "\xff\xfe"}};
  CHECK(line() == dumped());
  CHECK(
      line().ends_with(",\"details\":{\"status_code\":200,\"headers\":{\"x\":\"a\\\"b\\n\"},"
                       "\"raw\":\"\ufffd\ufffd\"}}"));

  // The line is written member by member: every string that needs escaping or is not
  // plain ASCII, and every rounding of the durations, must come out as nlohmann writes it.
  for (const char* message : {"", "plain", "tab\there", "quote \" and \\", "\x01\x1f\x7f",
                              "caf\xc3\xa9 \xe2\x9c\x93", "cut \xc3", "\xed\xa0\x80 surrogate"}) {
    r.message = message;
    CHECK(line() == dumped());
  }
  for (auto d :
       {0ns, 1ns, 499ns, 500ns, 999ns, 1'000ns, 1'500ns, 1'000'000ns, 1'230'000ns, 12'345'678ns,
        2'000'000'000ns, 86'400'000'000'000ns, -1ns, -400ns, -500ns, -1'500'000ns}) {
    r.latency = d;
    info.lateness = -d;
    CHECK(line() == dumped());
  }
  for (unsigned a : {0u, 1u, 10u, 4'294'967'295u}) {
    info.attempts = a;
    CHECK(line() == dumped());
  }
  // The timestamp's date is cached per second: a new second, and back, still right.
  for (auto t : {ts, ts + 999ms, ts + 1s, ts - 1h, ts + 1s}) {
    CHECK(result_json_line(tcp_check(), s, r, info, t) ==
          result_json(tcp_check(), s, r, info, t)
              .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  }
  CHECK(round_ms(-400ns) == 0.0);
  CHECK_FALSE(std::signbit(round_ms(-400ns)));  // "0.0", not "-0.0"
}

TEST_CASE("a state change names both states and its cause", "[report]") {
  Result r = Result::make(Status::Timeout, "no answer");
  auto j = transition_json(tcp_check(), Health::Up, Health::Down, r, {});
  CHECK(j["event"] == "state_change");
  CHECK(j["from"] == "up");
  CHECK(j["to"] == "down");
  CHECK(j["reason"] == "timeout");
  CHECK(j["message"] == "no answer");
}

TEST_CASE("every status has its documented code", "[report]") {
  CHECK(code(Status::Ok) == "ok");
  CHECK(code(Status::Timeout) == "timeout");
  CHECK(code(Status::Refused) == "refused");
  CHECK(code(Status::Unreachable) == "unreachable");
  CHECK(code(Status::ResolveFailed) == "resolve_failed");
  CHECK(code(Status::TlsError) == "tls_error");
  CHECK(code(Status::BadResponse) == "bad_response");
  CHECK(code(Status::Unexpected) == "unexpected");
  CHECK(code(Status::KissOfDeath) == "kiss_of_death");
  CHECK(code(Status::LocalError) == "local_error");
}
