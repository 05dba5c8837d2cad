#include "report.h"

#include "base/duration.h"
#include "json_line.h"
#include "log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cmath>

namespace netmond {

std::string rfc3339_ms(std::chrono::system_clock::time_point ts) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(ts.time_since_epoch());
  auto secs = static_cast<std::time_t>(ms.count() / 1000);
  // Every result line carries one: the date and time are formatted once a second, not
  // per line (results come thousands a second; the loop is the only writer).
  thread_local std::time_t cached_secs = -1;
  thread_local std::string cached_prefix;
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    cached_prefix = fmt::format("{:%Y-%m-%dT%H:%M:%S}.", tm);
    cached_secs = secs;
  }
  const auto millis = static_cast<unsigned>(ms.count() % 1000);
  std::string out = cached_prefix;
  out += char('0' + millis / 100);
  out += char('0' + millis / 10 % 10);
  out += char('0' + millis % 10);
  out += 'Z';
  return out;
}

double round_ms(std::chrono::nanoseconds d) {
  // Microsecond resolution is what a steady-clock latency can honestly claim.
  const double ms = std::round(static_cast<double>(d.count()) / 1e3) / 1e3;
  return ms == 0 ? 0.0 : ms;  // never "-0.0" for a lateness of -0.4 µs
}

namespace {

constexpr auto kDumpError = nlohmann::ordered_json::error_handler_t::replace;

}  // namespace

namespace {

// Every member of a result line but "details", which comes last.
nlohmann::ordered_json result_head(const CheckConfig& check, const CheckState& state,
                                   const Result& r, const RunInfo& info,
                                   std::chrono::system_clock::time_point ts) {
  return {
      {"ts", rfc3339_ms(ts)},
      {"event", "result"},
      {"check", check.name},
      {"type", check.type()},
      {"target", check.target()},
      {"ok", r.ok()},
      {"state", to_string(state.health)},
      {"latency_ms", round_ms(r.latency)},
      {"message", r.message},
      {"reason", code(r.status)},
      {"lateness_ms", round_ms(info.lateness)},
      {"attempts", info.attempts},
  };
}

}  // namespace

nlohmann::ordered_json result_json(const CheckConfig& check, const CheckState& state,
                                   const Result& r, const RunInfo& info,
                                   std::chrono::system_clock::time_point ts) {
  nlohmann::ordered_json j = result_head(check, state, r, info, ts);
  j["details"] = r.details;
  return j;
}

std::string result_json_line(const CheckConfig& check, const CheckState& state, const Result& r,
                             const RunInfo& info, std::chrono::system_clock::time_point ts) {
  // Logged for every result: written member by member, the same bytes as result_json()
  // dumped (report_test pins it), without building the object first.
  return JsonLine()
      .string("ts", rfc3339_ms(ts))
      .string("event", "result")
      .string("check", check.name)
      .string("type", check.type())
      .string("target", check.target())
      .boolean("ok", r.ok())
      .string("state", to_string(state.health))
      .milliseconds("latency_ms", r.latency)
      .string("message", r.message)
      .string("reason", code(r.status))
      .milliseconds("lateness_ms", info.lateness)
      .number("attempts", info.attempts)
      .json("details", r.details)
      .take();
}

nlohmann::ordered_json transition_json(const CheckConfig& check, Health from, Health to,
                                       const Result& r, std::chrono::system_clock::time_point ts) {
  return {
      {"ts", rfc3339_ms(ts)}, {"event", "state_change"},  {"check", check.name},
      {"type", check.type()}, {"target", check.target()}, {"from", to_string(from)},
      {"to", to_string(to)},  {"message", r.message},     {"reason", code(r.status)},
  };
}

namespace {

// The fields every journal entry of a check carries.
std::vector<journal::Field> check_fields(std::string_view event, const CheckConfig& check,
                                         const Result& r) {
  return {
      {"EVENT", std::string(event)},
      {"CHECK", check.name},
      {"CHECK_TYPE", std::string(check.type())},
      {"TARGET", check.target()},
      {"OK", r.ok() ? "1" : "0"},
      {"REASON", std::string(code(r.status))},
  };
}

}  // namespace

void LogReporter::result(const CheckConfig& check, const CheckState& state, const Result& r,
                         const RunInfo& info) {
  if (results_ == LogResults::Changes && r.ok()) return;
  auto level = r.ok() ? spdlog::level::info : spdlog::level::warn;
  if (!log::events().should_log(level)) return;
  std::string line;
  if (format_ == LogFormat::Json) {
    line = result_json_line(check, state, r, info, std::chrono::system_clock::now());
  } else {
    line = fmt::format("{} {} {} ", check.name, to_upper(state.health), format_latency(r.latency));
    if (!r.ok()) line += fmt::format("{}: ", code(r.status));
    line += r.message;
    if (info.attempts > 1) line += fmt::format(" (attempt {})", info.attempts);
  }
  if (!log::journal_active()) return log::event(level, 0, line, {});
  auto fields = check_fields("result", check, r);
  fields.push_back({"STATE", std::string(to_string(state.health))});
  fields.push_back({"LATENCY_US", std::to_string(r.latency.count() / 1000)});
  fields.push_back({"ATTEMPTS", std::to_string(info.attempts)});
  fields.push_back({"LATENESS_US", std::to_string(info.lateness.count() / 1000)});
  // In JSON the line already holds the details, last: the same text, not a second dump.
  // `,"details":` cannot occur earlier in the line, where every quote inside a string is
  // escaped and every key is ours.
  const auto at = format_ == LogFormat::Json ? line.find(",\"details\":") : std::string::npos;
  fields.push_back({"DETAILS", at != std::string::npos
                                   ? line.substr(at + 11, line.size() - at - 12)
                                   : r.details.dump(-1, ' ', false, kDumpError)});
  log::event(level, r.ok() ? journal::kInfo : journal::kWarning, line, fields);
}

void LogReporter::transition(const CheckConfig& check, Health from, Health to, const Result& r) {
  if (!transitions_) return;
  auto level = to == Health::Down ? spdlog::level::warn : spdlog::level::info;
  if (!log::events().should_log(level)) return;
  std::string line = format_ == LogFormat::Json
                         ? transition_json(check, from, to, r, std::chrono::system_clock::now())
                               .dump(-1, ' ', false, kDumpError)
                         : fmt::format("{} state {} -> {}: {}", check.name, to_upper(from),
                                       to_upper(to), r.message);
  auto fields = check_fields("state_change", check, r);
  fields.push_back({"STATE", std::string(to_string(to))});
  fields.push_back({"PREVIOUS_STATE", std::string(to_string(from))});
  // Down is a warning; any other change a notice, so `journalctl -p notice` lists every
  // state change and no routine result.
  log::event(level, to == Health::Down ? journal::kWarning : journal::kNotice, line, fields);
}

}  // namespace netmond
