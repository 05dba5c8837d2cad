#include "json_line.h"

#include <fmt/format.h>

#include <cstdlib>

namespace netmond {

namespace {

constexpr auto kReplaceInvalid = nlohmann::ordered_json::error_handler_t::replace;

// Printable ASCII other than '"' and '\\' is written as it is by any JSON serialiser.
bool plain(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

}  // namespace

void JsonLine::quoted(std::string_view s) {
  if (plain(s)) {
    text_ += '"';
    text_ += s;
    text_ += '"';
    return;
  }
  text_ += nlohmann::ordered_json(s).dump(-1, ' ', false, kReplaceInvalid);
}

void JsonLine::key(std::string_view k) {
  text_ += text_.empty() ? '{' : ',';
  quoted(k);
  text_ += ':';
}

JsonLine& JsonLine::string(std::string_view k, std::string_view value) {
  key(k);
  quoted(value);
  return *this;
}

JsonLine& JsonLine::boolean(std::string_view k, bool value) {
  key(k);
  text_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::number(std::string_view k, std::uint64_t value) {
  key(k);
  fmt::format_to(std::back_inserter(text_), "{}", value);
  return *this;
}

JsonLine& JsonLine::milliseconds(std::string_view k, std::chrono::nanoseconds value) {
  key(k);
  // Whole microseconds, rounded half away from zero as std::round does in round_ms().
  const std::int64_t ns = value.count();
  const std::int64_t us = (ns >= 0 ? ns + 500 : ns - 500) / 1000;
  const std::uint64_t magnitude = us < 0 ? static_cast<std::uint64_t>(-us) : us;
  if (us < 0) text_ += '-';
  fmt::format_to(std::back_inserter(text_), "{}.", magnitude / 1000);
  // The shortest decimal of a value with at most three decimals: its digits without
  // trailing zeros, and at least one ("2.0", as nlohmann writes a whole double).
  unsigned frac = magnitude % 1000;
  if (frac == 0) {
    text_ += '0';
  } else {
    char digits[3] = {char('0' + frac / 100), char('0' + frac / 10 % 10), char('0' + frac % 10)};
    std::size_t n = 3;
    while (digits[n - 1] == '0') --n;
    text_.append(digits, n);
  }
  return *this;
}

JsonLine& JsonLine::json(std::string_view k, const nlohmann::ordered_json& value) {
  key(k);
  text_ += value.dump(-1, ' ', false, kReplaceInvalid);
  return *this;
}

std::string JsonLine::take() {
  text_ += text_.empty() ? "{}" : "}";
  return std::move(text_);
}

}  // namespace netmond
