// The configuration loader (daemon/config.h): parse_config takes the YAML text of
// /etc/netmond.yaml (or -c FILE) to a validated Config or a list of diagnostics, through
// yaml-cpp, the loader's strict key reading and every probe type's parse(). It runs at
// start, on `netmond --check-config` and on every reload of a running daemon, so no text
// may crash it. load_config only adds reading the file.
//
// Properties: a Config comes with no diagnostic and a missing one with at least one, each
// naming the file and a position; the checks of a Config have unique names. yaml-cpp's
// exceptions are the loader's business: none may leave it (a throw aborts the fuzzer).
#include "check.h"
#include "config.h"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

using namespace netmond;
using netmond::fuzzing::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<Diagnostic> errors;
  const std::optional<Config> config = parse_config(text, "fuzz.yaml", &errors);
  if (!config) {
    check(!errors.empty());
    for (const Diagnostic& d : errors) {
      check(d.file == "fuzz.yaml" && d.line >= 0 && d.column >= 0 && !d.message.empty());
      (void)d.format();
    }
    return 0;
  }
  check(errors.empty());
  std::set<std::string> names;
  for (const CheckConfig& c : config->checks) {
    check(names.insert(c.name).second);
    check(c.interval.count() > 0 && c.timeout.count() > 0);
    (void)c.target();
  }
  return 0;
}
