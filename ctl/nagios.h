// The Nagios/Icinga plugin conventions that `netmonctl probe --format nagios` follows
// (https://www.monitoring-plugins.org/doc/guidelines.html): threshold ranges, the status
// names and exit codes, and performance data.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace netmond::ctl::nagios {

enum class Status { Ok = 0, Warning = 1, Critical = 2, Unknown = 3 };

// "OK", "WARNING", "CRITICAL", "UNKNOWN".
std::string_view name(Status s);

// A threshold range in the plugins' syntax: "10" (alert outside 0..10), "10:" (below 10),
// "~:10" (above 10), "10:20" (outside 10..20), "@10:20" (inside 10..20). Decimals allowed.
class Range {
 public:
  // nullopt and `error` set when `text` is not a range.
  static std::optional<Range> parse(std::string_view text, std::string* error);
  // Whether `value` raises the alert.
  bool alerts(double value) const;
  // As given, for perfdata.
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::optional<double> start_;  // nullopt: negative infinity (~)
  std::optional<double> end_;    // nullopt: positive infinity
  bool inside_ = false;          // '@': alert inside the range instead of outside
};

// A perfdata label=value item: 'label'=VALUEunit;warn;crit;min (quoted when the label has
// spaces or quotes, quotes doubled).
std::string perfdata(std::string_view label, double value, std::string_view unit,
                     const std::optional<Range>& warning, const std::optional<Range>& critical,
                     std::optional<double> min);

}  // namespace netmond::ctl::nagios
