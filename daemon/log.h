// Logging: two spdlog loggers, on stdout or, under systemd, straight into the journal.
//  - log::general(): free-form messages ("loaded 12 checks"). In text format a
//    timestamped line; in JSON format {"ts","event":"log","level","message"}.
//  - log::events(): result and state_change lines the reporter has already formatted
//    (text or JSON), written as they are with the level chosen by the reporter; in the
//    journal with structured fields (event()).
// The journal (log.target, journal.h) takes each message as one entry with its PRIORITY;
// when journald does not take an entry, the line goes to stdout instead.
#pragma once

#include "config.h"
#include "journal.h"

#include <spdlog/logger.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace netmond::log {

// (Re)configures both loggers. Safe to call again on reload.
void setup(LogFormat format, spdlog::level::level_enum level, bool journal = false);
// Whether `target` means the journal here: journal, or auto with stdout connected to it,
// and journald listening.
bool use_journal(LogTarget target);
// "trace" ... "error" -> level; nullopt if unknown.
std::optional<spdlog::level::level_enum> parse_level(const std::string& name);

// While netmond's console (console.h) shows its prompt, every line written to stdout is
// bracketed by these: `before` takes the prompt off the line, `after` draws it again, so
// results print above the prompt. Empty functions: none.
void set_terminal_hooks(std::function<void()> before, std::function<void()> after);

// With `deferred`, lines written to stdout stay in its buffer until flush(); the daemon
// flushes once per loop turn, before the loop waits (one write(2) for a turn's results,
// not one per line). Lines are written at once while the console's prompt is up, and
// whatever the mode when stdout is a terminal (line-buffered by stdio).
void defer_flush(bool deferred);
void flush();

spdlog::logger& general();
spdlog::logger& events();
// Whether event() sends to the journal (setup()'s choice): the reporter builds the
// journal's fields only then.
bool journal_active();
// Writes a reporter's line at `level` (which the log level filters): to the journal as an
// entry with `priority` and `fields`, or to stdout through events().
void event(spdlog::level::level_enum level, int priority, const std::string& line,
           std::span<const journal::Field> fields);

}  // namespace netmond::log
