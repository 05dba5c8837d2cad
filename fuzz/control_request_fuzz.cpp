// The control-socket request parser (daemon/control_request.h): any local client that can
// open /run/netmond/control.sock writes request lines, and the daemon reads each with
// parse_control_request. Input: the bytes a client writes, split into lines as the server
// splits them (at '\n', a trailing '\r' dropped, blank lines skipped).
//
// Property: a request that parses, written back as JSON, parses to the same request; a
// line that does not parse gives the client an error message.
#include "check.h"
#include "control_request.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace netmond;
using netmond::fuzzing::check;

namespace {

void one_line(std::string_view line) {
  std::string error;
  const std::optional<ControlRequest> r = parse_control_request(line, &error);
  if (!r) {
    check(!error.empty());
    return;
  }
  nlohmann::json j = {{"command", r->command}};
  if (r->check) j["check"] = *r->check;
  // The strings came out of a JSON parser, so they are valid UTF-8: a strict dump works.
  const std::string again = j.dump();
  check(parse_control_request(again, &error) == r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    const std::size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    one_line(line);
  }
  return 0;
}
