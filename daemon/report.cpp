#include "report.h"

#include "base/duration.h"
#include "log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cmath>

namespace netmond {

std::string rfc3339_ms(std::chrono::system_clock::time_point ts) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(ts.time_since_epoch());
  std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", tm, ms.count() % 1000);
}

double round_ms(std::chrono::nanoseconds d) {
  // Microsecond resolution is what a steady-clock latency can honestly claim.
  return std::round(static_cast<double>(d.count()) / 1e3) / 1e3;
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
  // Logged for every result: the details are serialised in place, not deep-copied into
  // the line's object first.
  std::string line = result_head(check, state, r, info, ts).dump(-1, ' ', false, kDumpError);
  line.pop_back();  // the head's closing brace
  line += ",\"details\":";
  line += r.details.dump(-1, ' ', false, kDumpError);
  line += '}';
  return line;
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
  fields.push_back({"DETAILS", r.details.dump(-1, ' ', false, kDumpError)});
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
