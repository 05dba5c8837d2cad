#include "nagios.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace netmond::ctl::nagios {

namespace {

// A finite decimal number, the whole of `s`.
std::optional<double> number(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  std::string copy(s);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(copy.c_str(), &end);
  if (errno != 0 || end != copy.c_str() + copy.size() || !std::isfinite(v)) return std::nullopt;
  // strtod also takes hex, "inf" and "nan": the plugins' syntax is plain decimals.
  if (copy.find_first_not_of("+-.0123456789eE") != std::string::npos) return std::nullopt;
  return v;
}

}  // namespace

std::string_view name(Status s) {
  switch (s) {
    case Status::Ok: return "OK";
    case Status::Warning: return "WARNING";
    case Status::Critical: return "CRITICAL";
    case Status::Unknown: break;
  }
  return "UNKNOWN";
}

std::optional<Range> Range::parse(std::string_view text, std::string* error) {
  Range r;
  r.text_ = std::string(text);
  std::string_view s = text;
  if (s.starts_with('@')) {
    r.inside_ = true;
    s.remove_prefix(1);
  }
  auto fail = [&](std::string why) -> std::optional<Range> {
    *error =
        fmt::format("'{}' is not a threshold range: {} (10, 10:, ~:10, 10:20, @10:20)", text, why);
    return std::nullopt;
  };
  if (s.empty()) return fail("it is empty");
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos) {
    // "10" means 0..10.
    auto end = number(s);
    if (!end) return fail("not a number");
    r.start_ = 0;
    r.end_ = *end;
  } else {
    std::string_view a = s.substr(0, colon), b = s.substr(colon + 1);
    if (a == "~") {
      r.start_ = std::nullopt;
    } else if (a.empty()) {
      r.start_ = 0;
    } else if (auto v = number(a)) {
      r.start_ = *v;
    } else {
      return fail(fmt::format("'{}' is not a number or ~", a));
    }
    if (b.empty()) {
      r.end_ = std::nullopt;
    } else if (auto v = number(b)) {
      r.end_ = *v;
    } else {
      return fail(fmt::format("'{}' is not a number", b));
    }
  }
  if (r.start_ && r.end_ && *r.start_ > *r.end_) return fail("its start is above its end");
  return r;
}

bool Range::alerts(double value) const {
  const bool within = (!start_ || value >= *start_) && (!end_ || value <= *end_);
  return inside_ ? within : !within;
}

std::string perfdata(std::string_view label, double value, std::string_view unit,
                     const std::optional<Range>& warning, const std::optional<Range>& critical,
                     std::optional<double> min) {
  std::string quoted;
  const bool quote = label.find_first_of(" '=") != std::string_view::npos;
  for (char c : label) {
    if (c == '\'') quoted += '\'';
    quoted += c;
  }
  if (quote) quoted = "'" + quoted + "'";
  // Plain decimals (the format has no exponent), without trailing zeros: 0.0234, 0, 33.3.
  std::string number = fmt::format("{:.6f}", value);
  number.erase(number.find_last_not_of('0') + 1);
  if (number.back() == '.') number.pop_back();
  if (number == "-0") number = "0";
  std::string out = fmt::format("{}={}{};{};{}", quoted, number, unit,
                                warning ? warning->text() : "", critical ? critical->text() : "");
  if (min) out += fmt::format(";{}", *min);
  return out;
}

}  // namespace netmond::ctl::nagios
