// netmond writing to the systemd journal: each result and state change one entry with
// structured fields and its PRIORITY, as journald receives them over its native protocol.
// No journald runs here: the test binds its own socket and the daemon runs in a mount
// namespace where /run/systemd/journal is the test's directory, so libsystemd's
// sd_journal_sendv talks to the test, byte for byte as it would to journald.
#include "support/peers.h"
#include "support/process.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace netmond;
using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

using Entry = std::map<std::string, std::string>;

// journald's native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): "NAME=value\n", or for
// values with newlines "NAME\n" + little-endian 64-bit length + value + "\n".
Entry parse_entry(const std::string& d) {
  Entry e;
  size_t i = 0;
  while (i < d.size()) {
    size_t nl = d.find('\n', i);
    if (nl == std::string::npos) break;
    std::string line = d.substr(i, nl - i);
    if (auto eq = line.find('='); eq != std::string::npos) {
      e[line.substr(0, eq)] = line.substr(eq + 1);
      i = nl + 1;
    } else {
      std::uint64_t n = 0;
      if (nl + 1 + 8 > d.size()) break;
      for (int b = 7; b >= 0; --b) n = n << 8 | static_cast<unsigned char>(d[nl + 1 + b]);
      e[line] = d.substr(nl + 9, n);
      i = nl + 9 + n + 1;
    }
  }
  return e;
}

class JournalSocket {
 public:
  JournalSocket() : dir_(temp_dir()) {
    fd_.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s/socket", dir_.c_str());
    REQUIRE(bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  const std::string& dir() const { return dir_; }
  // The first entry, received before or within `limit`, that has every field of `want`.
  std::optional<Entry> until(const Entry& want, std::chrono::milliseconds limit = 5s) {
    auto matches = [&](Entry& e) {
      for (const auto& [k, v] : want)
        if (!e.count(k) || e[k] != v) return false;
      return true;
    };
    for (auto& e : seen)
      if (matches(e)) return e;
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      std::string buf(65536, '\0');
      ssize_t n = recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n <= 0) continue;
      buf.resize(static_cast<size_t>(n));
      Entry e = parse_entry(buf);
      seen.push_back(e);
      if (matches(e)) return e;
    }
    return std::nullopt;
  }
  std::vector<Entry> seen;

 private:
  std::string dir_;
  Fd fd_;
};

// Runs netmond in a private mount namespace whose /run/systemd/journal is `journal_dir`
// ("" for none at all: an empty /run). With `journal_stream`, JOURNAL_STREAM names the
// child's stdout as systemd does when StandardOutput=journal.
std::vector<std::string> netmond_in_ns(const std::string& journal_dir, const std::string& cfg,
                                       bool journal_stream) {
  std::string script = "mount -t tmpfs netmond-test /run && mkdir -p /run/systemd/journal";
  if (!journal_dir.empty()) script += " && mount --bind '" + journal_dir + "' /run/systemd/journal";
  if (journal_stream) script += " && export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/1)";
  script += " && exec '" + netmond_bin() + "' -c '" + cfg + "'";
  return {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script};
}

std::string config(std::uint16_t open_port, int closed_port, const std::string& target) {
  return "log: {target: " + target +
         "}\n"
         "servers:\n"
         "  - address: 127.0.0.1\n"
         "    interval: 200ms\n"
         "    services:\n"
         "      - {type: tcp, name: open, port: " +
         std::to_string(open_port) +
         "}\n"
         "      - {type: tcp, name: closed, port: " +
         std::to_string(closed_port) + "}\n";
}

bool can_unshare() { return run({"/usr/bin/unshare", "--mount", "true"}, 5s).code == 0; }

}  // namespace

TEST_CASE("under systemd, results and state changes are journal entries with fields",
          "[daemon][journal]") {
  if (!can_unshare()) {
    WARN("skipped: cannot create a mount namespace here (needs root)");
    return;
  }
  TcpListener open("127.0.0.1");
  const int closed = closed_tcp_port("127.0.0.1");
  JournalSocket journal;
  // target auto + JOURNAL_STREAM naming our stdout: how systemd starts the unit.
  auto cfg = write_file(temp_dir(), "n.yaml", config(open.port(), closed, "auto"));
  ChildProcess d(netmond_in_ns(journal.dir(), cfg, true));

  auto started = journal.until({{"PRIORITY", "6"}, {"SYSLOG_IDENTIFIER", "netmond"}});
  REQUIRE(started);
  CHECK((*started)["MESSAGE"].find("started: 2 checks from " + cfg) != std::string::npos);

  auto up = journal.until({{"EVENT", "result"}, {"CHECK", "open"}});
  REQUIRE(up);
  CHECK((*up)["PRIORITY"] == "6");
  CHECK((*up)["CHECK_TYPE"] == "tcp");
  CHECK((*up)["TARGET"] == "127.0.0.1:" + std::to_string(open.port()));
  CHECK((*up)["STATE"] == "up");
  CHECK((*up)["OK"] == "1");
  CHECK((*up)["REASON"] == "ok");
  CHECK((*up)["LATENCY_US"].find_first_not_of("0123456789") == std::string::npos);
  CHECK((*up)["MESSAGE"].rfind("open UP ", 0) == 0);
  CHECK((*up)["DETAILS"].front() == '{');

  auto down = journal.until({{"EVENT", "state_change"}, {"CHECK", "closed"}});
  REQUIRE(down);
  CHECK((*down)["PRIORITY"] == "4");
  CHECK((*down)["STATE"] == "down");
  CHECK((*down)["PREVIOUS_STATE"] == "unknown");
  CHECK((*down)["REASON"] == "refused");
  auto failed = journal.until({{"EVENT", "result"}, {"CHECK", "closed"}});
  REQUIRE(failed);
  CHECK((*failed)["PRIORITY"] == "4");
  CHECK((*failed)["OK"] == "0");

  // Nothing went to stdout meanwhile: the journal has it all.
  d.signal(SIGTERM);
  auto code = d.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(d.out().empty());
}

TEST_CASE("in JSON, a journal entry's DETAILS is the details of its MESSAGE line",
          "[daemon][journal]") {
  if (!can_unshare()) {
    WARN("skipped: cannot create a mount namespace here (needs root)");
    return;
  }
  TcpListener open("127.0.0.1");
  const int closed = closed_tcp_port("127.0.0.1");
  JournalSocket journal;
  auto cfg = write_file(temp_dir(), "n.yaml", config(open.port(), closed, "journal, format: json"));
  ChildProcess d(netmond_in_ns(journal.dir(), cfg, false));
  for (const char* check : {"open", "closed"}) {
    auto e = journal.until({{"EVENT", "result"}, {"CHECK", check}});
    REQUIRE(e);
    auto line = nlohmann::ordered_json::parse((*e)["MESSAGE"]);
    CHECK(line["check"] == check);
    // Taken from the line, not dumped again: the same object, byte for byte.
    CHECK(nlohmann::ordered_json::parse((*e)["DETAILS"]) == line["details"]);
    CHECK((*e)["DETAILS"] == line["details"].dump());
  }
  d.signal(SIGTERM);
  auto code = d.wait(5s);
  REQUIRE(code);
  CHECK(*code == 0);
}

TEST_CASE("log.target journal without a journal falls back to stdout, stdout is the default",
          "[daemon][journal]") {
  if (!can_unshare()) {
    WARN("skipped: cannot create a mount namespace here (needs root)");
    return;
  }
  TcpListener open("127.0.0.1");
  const int closed = closed_tcp_port("127.0.0.1");
  SECTION("journal asked for, none listening: every line on stdout") {
    auto cfg = write_file(temp_dir(), "n.yaml", config(open.port(), closed, "journal"));
    ChildProcess d(netmond_in_ns("", cfg, false));
    CHECK(d.wait_for_output(" open UP ", 5s));
    CHECK(d.wait_for_output("closed state UNKNOWN -> DOWN", 5s));
    CHECK(d.wait_for_output("started: 2 checks", 5s));
  }
  SECTION("auto with a JOURNAL_STREAM that is not our stdout: stdout") {
    JournalSocket journal;
    auto cfg = write_file(temp_dir(), "n.yaml", config(open.port(), closed, "auto"));
    ChildOptions o;
    o.env = {"JOURNAL_STREAM=8:12345"};
    ChildProcess d(netmond_in_ns(journal.dir(), cfg, false), o);
    CHECK(d.wait_for_output(" open UP ", 5s));
    CHECK_FALSE(journal.until({{"CHECK", "open"}}, 300ms));
  }
}
