// Logging: two spdlog loggers on stdout (journald collects stdout under systemd).
//  - log::general(): free-form messages ("loaded 12 checks"). In text format a
//    timestamped line; in JSON format {"ts","event":"log","level","message"}.
//  - log::events(): result and state_change lines the reporter has already formatted
//    (text or JSON), written as they are with the level chosen by the reporter.
#pragma once

#include "config.h"

#include <spdlog/logger.h>

#include <memory>
#include <optional>
#include <string>

namespace netmond::log {

// (Re)configures both loggers. Safe to call again on reload.
void setup(LogFormat format, spdlog::level::level_enum level);
// "trace" ... "error" -> level; nullopt if unknown.
std::optional<spdlog::level::level_enum> parse_level(const std::string& name);

spdlog::logger& general();
spdlog::logger& events();

}  // namespace netmond::log
