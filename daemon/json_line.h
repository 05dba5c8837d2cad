// One JSON object written member by member into a string, for the lines logged at every
// result. Building an nlohmann tree first and then serialising it was a tenth of the
// daemon's CPU at 1,000 results a second (docs/performance.md); this writes the same
// bytes as nlohmann's dump(-1, ' ', false, error_handler_t::replace) would, straight into
// the line. Strings that are not plain printable ASCII still go through nlohmann, so
// escaping and the replacement of bytes that are not UTF-8 stay the library's.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace netmond {

class JsonLine {
 public:
  JsonLine() { text_.reserve(512); }

  JsonLine& string(std::string_view key, std::string_view value);
  JsonLine& boolean(std::string_view key, bool value);
  JsonLine& number(std::string_view key, std::uint64_t value);
  // A duration in milliseconds rounded to the microsecond: what round_ms() gives, written
  // as nlohmann writes that double ("1.5", "2.0", "0.001").
  JsonLine& milliseconds(std::string_view key, std::chrono::nanoseconds value);
  JsonLine& json(std::string_view key, const nlohmann::ordered_json& value);

  // The finished object; the writer is empty afterwards.
  std::string take();

 private:
  void key(std::string_view k);
  void quoted(std::string_view s);
  std::string text_;
};

}  // namespace netmond
