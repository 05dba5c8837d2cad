// The text forms of the control protocol's objects (docs/control.md), shared by netmonctl
// and netmond's console so that both print the same: the status table and a result line.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace netmond {

// The status table of a `checks` array: NAME TYPE TARGET STATE SINCE LATENCY RUNS FAILURES
// MESSAGE, one line each (with the head line), the state in colour when `colour`.
std::string status_table(const nlohmann::ordered_json& checks, bool colour);

// The line of one result event (netmond's JSON result object), as netmond's text log
// writes it: "NAME STATE LATENCY [REASON: ]MESSAGE [(attempt N)]".
std::string result_line(const nlohmann::ordered_json& event);

// A JSON field as text; "" when absent or not a string.
std::string json_text(const nlohmann::ordered_json& j, const char* key);
// "UP" for "up".
std::string upper_case(std::string s);

}  // namespace netmond
