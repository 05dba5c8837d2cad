// log_bench: what logging one result costs the daemon, apart from any probe.
//
// Feeds --results results through the daemon's LogReporter (daemon/report.h), set up as
// netmond sets it up (log::setup, the deferred flush of one write per loop turn, here
// every --batch results), with stdout on --out (a file; /dev/null measures formatting
// alone). The result is a udp_echo check's, with its 16 details, as the daemon logs them
// at every run. With --journal the results go to the journal as under systemd (one
// sd_journal_sendv entry each, with netmond's fields), to a socket this program binds at
// libsystemd's fixed path /run/systemd/journal/socket and drains from a thread of its own:
// run it where that path is yours (bench/run-log.sh runs it in a private mount namespace
// with a tmpfs on /run). Prints one line on stdout (the log goes to --out):
//   RESULT format=json target=file|journal results=N cpu_us=C cpu_us_per_result=P
//          bytes_per_result=B
// cpu_us is the logging thread's user + system time (getrusage RUSAGE_THREAD) over the
// loop of results only.
//
// Usage: log_bench [--format json|text] [--results N] [--batch K] [--out FILE] [--journal]
// Exit: 0, or 2 on a usage error.
#include "log.h"
#include "report.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

using namespace netmond;
using namespace std::chrono_literals;

namespace {

long cpu_us() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000L + u.ru_utime.tv_usec +
         u.ru_stime.tv_usec;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: log_bench [--format json|text] [--results N] [--batch K] [--out FILE] "
               "[--journal]\n");
  std::exit(2);
}

// What a udp_echo run that went well reports (probes/udp_echo.cpp, add_details).
Result udp_echo_result() {
  Result r = Result::make(Status::Ok, "4/4 echoed, rtt 0.041/0.052/0.071 ms", 312'345ns);
  r.details["address"] = "127.0.0.1";
  r.details["port"] = 7;
  r.details["resolve_ms"] = 0.0;
  r.details["bytes"] = 64;
  r.details["rtt_ms"] = 0.052;
  r.details["rtt_min_ms"] = 0.041;
  r.details["rtt_max_ms"] = 0.071;
  r.details["rtt_mdev_ms"] = 0.011;
  r.details["jitter_ms"] = 0.009;
  r.details["sent"] = 4;
  r.details["echoed"] = 4;
  r.details["lost"] = 0;
  r.details["loss"] = 0.0;
  r.details["mismatched"] = 0;
  r.details["duplicates"] = 0;
  r.details["reordered"] = 0;
  return r;
}

// journald's end of the native protocol: a datagram socket at the fixed path, read and
// dropped by a thread until the process ends. Returns the bytes it has read so far.
std::atomic<long>* serve_journal() {
  static std::atomic<long> bytes{0};
  const char* path = "/run/systemd/journal/socket";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  unlink(path);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror(path);
    std::exit(2);
  }
  std::thread([fd] {
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) bytes += n;
    }
  }).detach();
  return &bytes;
}

}  // namespace

int main(int argc, char** argv) {
  LogFormat format = LogFormat::Json;
  long results = 200'000, batch = 8;
  const char* out = "/dev/null";
  bool journal = false;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : (usage(), nullptr); };
    if (std::strcmp(argv[i], "--format") == 0) {
      std::string f = value();
      if (f != "json" && f != "text") usage();
      format = f == "json" ? LogFormat::Json : LogFormat::Text;
    } else if (std::strcmp(argv[i], "--results") == 0) {
      results = std::atol(value());
    } else if (std::strcmp(argv[i], "--batch") == 0) {
      batch = std::atol(value());
    } else if (std::strcmp(argv[i], "--journal") == 0) {
      journal = true;
    } else if (std::strcmp(argv[i], "--out") == 0) {
      out = value();
    } else {
      usage();
    }
  }
  if (results < 1 || results > 100'000'000 || batch < 1) usage();

  CheckConfig check;
  check.name = "echo-local-0042";
  check.endpoint.host = "127.0.0.1";
  check.spec = UdpEchoSpec{};
  CheckState state;
  state.health = Health::Up;
  RunInfo info;
  info.lateness = 731us;
  const Result r = udp_echo_result();

  std::FILE* terminal = fdopen(dup(fileno(stdout)), "w");
  if (terminal == nullptr || std::freopen(out, "w", stdout) == nullptr) {
    std::perror(out);
    return 2;
  }
  std::atomic<long>* journal_bytes = journal ? serve_journal() : nullptr;
  if (journal && !log::use_journal(LogTarget::Journal)) {
    std::fprintf(terminal, "log_bench: no journal socket\n");
    return 2;
  }
  log::setup(format, spdlog::level::info, journal);
  log::defer_flush(true);
  LogReporter reporter(format, LogResults::All);
  const long start = cpu_us();
  for (long i = 0; i < results; ++i) {
    reporter.result(check, state, r, info);
    if ((i + 1) % batch == 0) log::flush();
  }
  log::flush();
  const long used = cpu_us() - start;
  struct stat st {};
  long bytes = fstat(fileno(stdout), &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
  if (journal_bytes != nullptr) {
    // The last datagrams may still be on their way to the reading thread.
    for (int i = 0; i < 100 && *journal_bytes == 0; ++i) usleep(10'000);
    usleep(50'000);
    bytes = *journal_bytes;
  }
  std::fprintf(terminal,
               "RESULT format=%s target=%s results=%ld cpu_us=%ld cpu_us_per_result=%.3f "
               "bytes_per_result=%ld\n",
               format == LogFormat::Json ? "json" : "text", journal ? "journal" : "file", results,
               used, static_cast<double>(used) / static_cast<double>(results), bytes / results);
  return 0;
}
