// A configuration given as YAML text in a test, parsed as netmond parses a file named
// "t.yaml": the Config when it is valid, and every diagnostic formatted
// "t.yaml:LINE:COL: path: message". One leading newline is dropped, so that in
//   parse_config_text(R"(
//   servers: ...)")
// line 1 is the first line written.
#pragma once

#include "config.h"

#include <optional>
#include <string>
#include <vector>

namespace netmond::test {

struct ConfigText {
  std::optional<Config> config;
  std::vector<std::string> errors;
};

inline ConfigText parse_config_text(std::string yaml) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.erase(0, 1);
  std::vector<Diagnostic> diags;
  ConfigText l;
  l.config = parse_config(yaml, "t.yaml", &diags);
  for (const auto& d : diags) l.errors.push_back(d.format());
  return l;
}

}  // namespace netmond::test
