#include "control_request.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace netmond {

namespace {

// "[json.exception.parse_error.101] parse error at line 1, column 3: ..." without the tag.
std::string parse_error_text(const char* what) {
  std::string_view w = what;
  if (auto end = w.find("] "); w.starts_with("[") && end != std::string_view::npos)
    w.remove_prefix(end + 2);
  return std::string(w);
}

}  // namespace

std::optional<ControlRequest> parse_control_request(std::string_view line, std::string* error) {
  nlohmann::json request;
  try {
    request = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::exception& e) {
    *error = fmt::format("bad JSON: {}", parse_error_text(e.what()));
    return std::nullopt;
  }
  if (!request.is_object() || !request.contains("command") || !request["command"].is_string()) {
    *error = R"(a request is a JSON object with a "command", e.g. {"command":"status"})";
    return std::nullopt;
  }
  ControlRequest out;
  out.command = request["command"].get<std::string>();
  if (request.contains("check")) {
    if (!request["check"].is_string()) {
      *error = R"("check" must be a string, the name of a check)";
      return std::nullopt;
    }
    out.check = request["check"].get<std::string>();
  }
  return out;
}

}  // namespace netmond
