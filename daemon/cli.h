// netmond's command line.
#pragma once

#include "config.h"

#include <optional>
#include <string>
#include <vector>

namespace netmond {

// Exit codes, documented in --help and docs/operations.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;  // --once: at least one check failed
inline constexpr int kExitConfig = 2;       // bad config or usage

inline constexpr const char* kDefaultConfigPath = "/etc/netmond.yaml";

struct Options {
  std::optional<std::string> config;  // -c; unset means /etc/netmond.yaml or embedded
  bool check_config = false;
  bool once = false;
  bool no_console = false;               // no netmond> prompt even on a terminal
  std::optional<LogFormat> log_format;   // overrides log.format
  std::optional<std::string> log_level;  // overrides log.level
  bool help = false;
  bool version = false;
};

// Parses argv; on a usage error returns nullopt and sets *error.
std::optional<Options> parse_args(int argc, char** argv, std::string* error);
std::string usage();

}  // namespace netmond
