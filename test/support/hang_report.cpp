// A hung test leaves evidence: if this test process is still running 100 s after it began
// (ctest kills it at 120 s, with nothing printed, since Catch reports at the end), it writes
// the stacks of all its threads (gdb) and its child processes (ps) to stderr, which ctest
// keeps with the test's output. Two intermittent hangs of the nginx-backed http tests were
// seen with no output at all; this is how the next one tells where it was stuck.
// NETMOND_TEST_HANG_SECONDS changes the delay (0: off).
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

void report_hang(int seconds) {
  const std::string pid = std::to_string(getpid());
  std::fprintf(stderr, "\n*** netmond_tests (pid %s) still running after %d s: stacks follow\n",
               pid.c_str(), seconds);
  std::fflush(stderr);
  const pid_t child = fork();
  if (child == 0) {
    // gdb and ps write to the inherited stderr; stdout goes there too.
    dup2(STDERR_FILENO, STDOUT_FILENO);
    const std::string command = "gdb -batch -ex 'thread apply all bt' -p " + pid +
                                " 2>&1 | grep -E '^(#|Thread)'; ps -o pid,etimes,args --ppid " +
                                pid;
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (child > 0) waitpid(child, nullptr, 0);
}

struct HangReporter {
  HangReporter() {
    int seconds = 100;
    if (const char* s = std::getenv("NETMOND_TEST_HANG_SECONDS")) seconds = std::atoi(s);
    if (seconds <= 0) return;
    // Let a debugger that is not our parent attach (Yama's ptrace_scope 1).
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    std::thread([seconds] {
      std::this_thread::sleep_for(std::chrono::seconds(seconds));
      report_hang(seconds);
    }).detach();
  }
};

const HangReporter reporter;

}  // namespace
