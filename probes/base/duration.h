// Durations as the configuration writes them: a bare number of seconds ("60", "0.5") or a
// number with a unit ("250ms", "90s", "5m", "1h", "1.5s", "14d").
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace netmond {

// Parses a duration; nullopt when the text is not one (empty, negative, unknown unit,
// trailing junk, or beyond `max`). Sub-millisecond parts are rounded to the nearest ms.
std::optional<std::chrono::milliseconds> parse_duration(
    std::string_view text, std::chrono::milliseconds max = std::chrono::hours(24));

// Shortest exact form: "250ms", "5s", "1.5s", "5m", "1h", "14d".
std::string format_duration(std::chrono::milliseconds d);

// For latencies: "0.123ms", "12.3ms", "1.23s".
std::string format_latency(std::chrono::nanoseconds d);

}  // namespace netmond
