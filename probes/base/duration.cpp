#include "base/duration.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

namespace netmond {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::chrono::milliseconds max) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  if (text.empty() ||
      !(std::isdigit(static_cast<unsigned char>(text.front())) || text.front() == '.'))
    return std::nullopt;
  double value = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc{}) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  double scale_ms;
  if (unit.empty() || unit == "s")
    scale_ms = 1000;
  else if (unit == "ms")
    scale_ms = 1;
  else if (unit == "m")
    scale_ms = 60'000;
  else if (unit == "h")
    scale_ms = 3'600'000;
  else if (unit == "d")
    scale_ms = 86'400'000;
  else
    return std::nullopt;
  double ms = value * scale_ms;
  if (!std::isfinite(ms) || ms < 0 || ms > static_cast<double>(max.count())) return std::nullopt;
  return std::chrono::milliseconds(std::llround(ms));
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return fmt::format("{}d", ms / 86'400'000);
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  if (ms > 1000) {
    // Exact, unlike printing a double with {:g} (6 significant digits: 1234.567s -> 1234.57s).
    std::string s = fmt::format("{}.{:03}", ms / 1000, ms % 1000);
    while (s.back() == '0') s.pop_back();
    return s + "s";
  }
  return fmt::format("{}ms", ms);
}

std::string format_latency(std::chrono::nanoseconds d) {
  double ms = static_cast<double>(d.count()) / 1e6;
  if (ms >= 1000) return fmt::format("{:.2f}s", ms / 1000);
  if (ms >= 100) return fmt::format("{:.0f}ms", ms);
  if (ms >= 10) return fmt::format("{:.1f}ms", ms);
  if (ms >= 1) return fmt::format("{:.2f}ms", ms);
  return fmt::format("{:.3f}ms", ms);
}

}  // namespace netmond
