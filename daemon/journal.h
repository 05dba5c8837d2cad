// The systemd journal's native protocol, through libsystemd's sd_journal_sendv(3): one
// entry per message with structured fields, so operators can filter on them
// (`journalctl -u netmond CHECK=web/tcp:80`, `journalctl -u netmond -p warning`).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace netmond::journal {

// syslog(3) priorities, as PRIORITY= carries them.
inline constexpr int kErr = 3;
inline constexpr int kWarning = 4;
inline constexpr int kNotice = 5;
inline constexpr int kInfo = 6;
inline constexpr int kDebug = 7;

struct Field {
  std::string_view name;  // upper case, as journal field names must be: "CHECK"
  std::string value;      // any bytes, newlines included
};

// Writes MESSAGE=message, PRIORITY=priority, SYSLOG_IDENTIFIER=netmond and `fields`. False
// when the journal did not take the entry (no journald listening): the caller falls back to
// stdout, so nothing is lost.
bool send(int priority, std::string_view message, std::span<const Field> fields = {});

// Whether journald listens here (its socket exists). Checked before choosing the journal:
// sd_journal_sendv silently drops entries, reporting success, when journald is absent.
bool available();

// Whether our stdout is the journal stream systemd connected us to: JOURNAL_STREAM holds
// "DEVICE:INODE" of that stream (systemd.exec(5)), and stdout must be that very file, not a
// redirection made later (`netmond ... > file` in a unit's ExecStart shell).
bool stdout_is_journal();

}  // namespace netmond::journal
