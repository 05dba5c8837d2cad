// A control-socket request line (docs/control.md) read into what the server acts on: a
// pure function, so that the bytes any local client sends are parsed in one place that
// tests and the fuzzer (fuzz/control_request_fuzz.cpp) reach without a socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace netmond {

struct ControlRequest {
  std::string command;               // "status", "run", ...: not checked against the list here
  std::optional<std::string> check;  // the "check" member, when present
  bool operator==(const ControlRequest&) const = default;
};

// One request line (without its newline) -> the request; nullopt with the client's error
// message in *error when it is not JSON ("bad JSON: ..."), not an object with a string
// "command", or has a "check" that is not a string.
std::optional<ControlRequest> parse_control_request(std::string_view line, std::string* error);

}  // namespace netmond
