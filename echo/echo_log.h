// netmond-echo's logging: spdlog's default logger on stdout. Under systemd (stdout is the
// journal stream named by $JOURNAL_STREAM) each line is "<N>message", N the syslog
// priority, which journald turns into the entry's priority, with no timestamp of our own;
// elsewhere "2024-05-01 12:00:00.123 INFO  message", as netmond's text format.
#pragma once

#include <spdlog/common.h>

namespace netmond {

void setup_echo_logging(spdlog::level::level_enum level);

}  // namespace netmond
