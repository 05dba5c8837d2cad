#include "journal.h"

// Without this, sd_journal_sendv adds CODE_FILE/CODE_LINE/CODE_FUNC of this file to every
// entry: noise, as every entry would name journal.cpp.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace netmond::journal {

bool send(int priority, std::string_view message, std::span<const Field> fields) {
  // sd_journal_sendv takes "NAME=value" items; values may hold any byte (it switches to the
  // protocol's length-prefixed form for values with newlines).
  std::vector<std::string> items;
  items.reserve(3 + fields.size());
  items.push_back("MESSAGE=");
  items.back().append(message);
  items.push_back("PRIORITY=" + std::to_string(priority));
  items.emplace_back("SYSLOG_IDENTIFIER=netmond");
  for (const auto& f : fields) {
    std::string item(f.name);
    item += '=';
    item += f.value;
    items.push_back(std::move(item));
  }
  std::vector<iovec> iov;
  iov.reserve(items.size());
  for (auto& s : items) iov.push_back({s.data(), s.size()});
  return sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) == 0;
}

bool available() {
  // libsystemd's own fixed path; sd_journal_sendv reports success when it is missing.
  struct stat st {};
  return stat("/run/systemd/journal/socket", &st) == 0 && S_ISSOCK(st.st_mode);
}

bool stdout_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDOUT_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

}  // namespace netmond::journal
