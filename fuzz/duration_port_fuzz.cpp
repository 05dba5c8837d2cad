// Duration and port parsing (probes/base/duration.h, probes/params.h, daemon/config.h):
// every interval, timeout and spacing in the configuration is read by parse_duration
// (through Params::get_duration), every port by Params::get_port, bounded numbers by
// Params::get, and metrics.listen by parse_listen_address (split_host_port, parse_ip).
// The text is the operator's, or whatever a broken file holds.
//
// Properties: a parsed duration is within its bound and format_duration writes it in a
// form that parses back to the same value; a parsed port is 1..65535 and is the number
// written (leading zeros aside); a value that does not parse leaves a diagnostic.
#include "base/address.h"
#include "base/duration.h"
#include "check.h"
#include "config.h"
#include "params.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace netmond;
using netmond::fuzzing::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  // parse_duration with the configuration's bounds: a day, and a week for intervals.
  for (const auto max : {std::chrono::milliseconds(std::chrono::hours(24)),
                         std::chrono::milliseconds(std::chrono::hours(24 * 7))}) {
    if (const auto d = parse_duration(text, max)) {
      check(d->count() >= 0 && *d <= max);
      check(parse_duration(format_duration(*d), max) == d);
    }
  }

  // The same text as a configuration value: a YAML scalar, as the loader sees it (built
  // here without the YAML parser, which the config fuzzer covers).
  YAML::Node map(YAML::NodeType::Map);
  map["port"] = text;
  map["count"] = text;
  map["interval"] = text;
  Diagnostics diag("fuzz.yaml");
  Params p(map, "services[0]", &diag);
  std::uint16_t port = 0;
  const std::size_t errors = diag.size();
  if (p.get_port("port", &port)) {
    check(port >= 1);
    const std::size_t digits = text.find_first_not_of('0');
    check(digits != std::string::npos && text.substr(digits) == std::to_string(port));
  } else {
    check(diag.size() == errors + 1);
  }
  unsigned count = 0;
  if (p.get("count", &count, 1, 100)) check(count >= 1 && count <= 100);
  std::chrono::milliseconds interval{};
  if (p.get_duration("interval", &interval)) check(parse_duration(text) == interval);
  for (const Diagnostic& d : diag.list()) (void)d.format();

  std::string why;
  if (const auto addr = parse_listen_address(text, &why)) {
    check(addr->port() >= 1);
    check(parse_listen_address(addr->with_port(), &why).has_value());
  } else {
    check(!why.empty());
  }
  HostPortText parts;
  if (split_host_port(text, &parts) == SplitError::None) {
    check(parts.host.size() <= text.size());
    (void)parse_ip(parts.host);
  }
  (void)valid_hostname(text);
  return 0;
}
