#include "status_text.h"

#include "base/duration.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <vector>

namespace netmond {

using json = nlohmann::ordered_json;

std::string json_text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string upper_case(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

namespace {

std::string latency(const json& j) {
  auto it = j.find("latency_ms");
  if (it == j.end() || !it->is_number()) return "-";
  return format_latency(
      std::chrono::nanoseconds(static_cast<std::int64_t>(it->get<double>() * 1e6)));
}

// How long ago an RFC 3339 UTC time was: "42s", "5m", "3h12m", "2d4h"; "-" if unknown.
std::string age(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 || strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr)
    return "-";
  long long s = std::max<long long>(0, std::time(nullptr) - timegm(&tm));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{}h", s / 86400, s % 86400 / 3600);
}

std::string colour_state(const std::string& state, size_t width, bool colour) {
  std::string padded = fmt::format("{:<{}}", upper_case(state), width);
  if (!colour) return padded;
  const char* code = state == "up" ? "32" : state == "down" ? "31;1" : "33";
  return fmt::format("\033[{}m{}\033[0m", code, padded);
}

std::string table(const json& checks, bool colour) {
  const std::vector<std::string> head = {"NAME",    "TYPE", "TARGET",   "STATE",  "SINCE",
                                         "LATENCY", "RUNS", "FAILURES", "MESSAGE"};
  std::vector<std::vector<std::string>> rows;
  for (const json& c : checks) {
    std::string message = json_text(c, "message");
    if (message.size() > 72) message = message.substr(0, 69) + "...";
    rows.push_back({json_text(c, "name"), json_text(c, "type"), json_text(c, "target"),
                    json_text(c, "state"), age(json_text(c, "since")), latency(c),
                    std::to_string(c.value("runs", 0)), std::to_string(c.value("failures", 0)),
                    message});
  }
  std::vector<size_t> width(head.size());
  for (size_t i = 0; i < head.size(); ++i) {
    width[i] = head[i].size();
    for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  auto print_row = [&](const std::vector<std::string>& r, bool is_head) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      const bool last = i + 1 == r.size();
      if (i == 3 && !is_head)
        line += colour_state(r[i], width[i], colour);
      else
        line += last ? r[i] : fmt::format("{:<{}}", r[i], width[i]);
      if (!last) line += "  ";
    }
    out += line + "\n";
  };
  print_row(head, true);
  for (const auto& r : rows) print_row(r, false);
  return out;
}

}  // namespace

std::string status_table(const json& checks, bool colour) { return table(checks, colour); }

std::string result_line(const json& e) {
  std::string line = fmt::format("{} {} {} ", json_text(e, "check"),
                                 upper_case(json_text(e, "state")), latency(e));
  if (!e.value("ok", false)) line += json_text(e, "reason") + ": ";
  line += json_text(e, "message");
  if (unsigned a = e.value("attempts", 1u); a > 1) line += fmt::format(" (attempt {})", a);
  return line;
}

}  // namespace netmond
