// Where results go. The scheduler calls a Reporter for every finished run and every
// change of health; the log reporter writes them as text or JSON lines.
#pragma once

#include "check_state.h"
#include "config.h"
#include "result.h"

#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <string>

namespace netmond {

// How a run went, beyond the probe's own Result.
struct RunInfo {
  std::chrono::nanoseconds lateness{};  // actual start - due time
  unsigned attempts = 1;                // 1 + retries used
};

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void result(const CheckConfig& check, const CheckState& state, const Result& r,
                      const RunInfo& info) = 0;
  virtual void transition(const CheckConfig& check, Health from, Health to, const Result& r) = 0;
};

// Builds the JSON object of a result line (also used by tests and, later, the control
// socket). `ts` is RFC 3339 UTC with milliseconds.
nlohmann::ordered_json result_json(const CheckConfig& check, const CheckState& state,
                                   const Result& r, const RunInfo& info,
                                   std::chrono::system_clock::time_point ts);
// The same as one line of text, result_json(...).dump(), without copying the details.
std::string result_json_line(const CheckConfig& check, const CheckState& state, const Result& r,
                             const RunInfo& info, std::chrono::system_clock::time_point ts);
nlohmann::ordered_json transition_json(const CheckConfig& check, Health from, Health to,
                                       const Result& r, std::chrono::system_clock::time_point ts);
std::string rfc3339_ms(std::chrono::system_clock::time_point ts);
// A duration in milliseconds, rounded to the microsecond, as the JSON lines carry it.
double round_ms(std::chrono::nanoseconds d);

// Writes results and transitions through the logger set up by log.h, in the configured
// format; with LogResults::Changes only failures and transitions are written.
class LogReporter : public Reporter {
 public:
  LogReporter(LogFormat format, LogResults results, bool transitions = true)
      : format_(format), results_(results), transitions_(transitions) {}
  void set(LogFormat format, LogResults results) {
    format_ = format;
    results_ = results;
  }
  void result(const CheckConfig& check, const CheckState& state, const Result& r,
              const RunInfo& info) override;
  void transition(const CheckConfig& check, Health from, Health to, const Result& r) override;

 private:
  LogFormat format_;
  LogResults results_;
  bool transitions_;
};

}  // namespace netmond
