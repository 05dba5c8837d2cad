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

namespace {

double to_ms(std::chrono::nanoseconds d) {
  // Microsecond resolution is what a steady-clock latency can honestly claim.
  return std::round(static_cast<double>(d.count()) / 1e3) / 1e3;
}

constexpr auto kDumpError = nlohmann::ordered_json::error_handler_t::replace;

}  // namespace

nlohmann::ordered_json result_json(const CheckConfig& check, const CheckState& state,
                                   const Result& r, const RunInfo& info,
                                   std::chrono::system_clock::time_point ts) {
  nlohmann::ordered_json j = {
      {"ts", rfc3339_ms(ts)},
      {"event", "result"},
      {"check", check.name},
      {"type", check.type()},
      {"target", check.target()},
      {"ok", r.ok()},
      {"state", to_string(state.health)},
      {"latency_ms", to_ms(r.latency)},
      {"message", r.message},
      {"reason", code(r.status)},
      {"lateness_ms", to_ms(info.lateness)},
      {"attempts", info.attempts},
      {"details", r.details},
  };
  return j;
}

nlohmann::ordered_json transition_json(const CheckConfig& check, Health from, Health to,
                                       const Result& r, std::chrono::system_clock::time_point ts) {
  return {
      {"ts", rfc3339_ms(ts)}, {"event", "state_change"},  {"check", check.name},
      {"type", check.type()}, {"target", check.target()}, {"from", to_string(from)},
      {"to", to_string(to)},  {"message", r.message},     {"reason", code(r.status)},
  };
}

void LogReporter::result(const CheckConfig& check, const CheckState& state, const Result& r,
                         const RunInfo& info) {
  if (results_ == LogResults::Changes && r.ok()) return;
  auto level = r.ok() ? spdlog::level::info : spdlog::level::warn;
  auto& out = log::events();
  if (!out.should_log(level)) return;
  if (format_ == LogFormat::Json) {
    out.log(level, result_json(check, state, r, info, std::chrono::system_clock::now())
                       .dump(-1, ' ', false, kDumpError));
    return;
  }
  std::string line =
      fmt::format("{} {} {} ", check.name, to_upper(state.health), format_latency(r.latency));
  if (!r.ok()) line += fmt::format("{}: ", code(r.status));
  line += r.message;
  if (info.attempts > 1) line += fmt::format(" (attempt {})", info.attempts);
  out.log(level, line);
}

void LogReporter::transition(const CheckConfig& check, Health from, Health to, const Result& r) {
  if (!transitions_) return;
  auto level = to == Health::Down ? spdlog::level::warn : spdlog::level::info;
  auto& out = log::events();
  if (!out.should_log(level)) return;
  if (format_ == LogFormat::Json) {
    out.log(level, transition_json(check, from, to, r, std::chrono::system_clock::now())
                       .dump(-1, ' ', false, kDumpError));
    return;
  }
  out.log(level, fmt::format("{} state {} -> {}: {}", check.name, to_upper(from), to_upper(to),
                             r.message));
}

}  // namespace netmond
