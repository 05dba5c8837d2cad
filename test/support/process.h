// Runs a real program (the netmond binary) as a child for black-box tests: captures its
// stdout and stderr, sends it signals, waits with a bound.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace netmond::test {

// What a child gets besides argv, stdio and our environment.
struct ChildOptions {
  // Extra environment entries, "NAME=value"; they replace ours of the same name.
  std::vector<std::string> env;
  // Open descriptors the child inherits as 3, 4, ... in this order (they stay ours too).
  std::vector<int> fds;
  // Socket activation as systemd does it: LISTEN_FDS=<fds.size()>, LISTEN_PID=<child pid>.
  bool listen_fds = false;
};

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`; stdin is /dev/null.
  explicit ChildProcess(std::vector<std::string> argv);
  ChildProcess(std::vector<std::string> argv, ChildOptions options);
  ~ChildProcess();  // kills (SIGKILL) and reaps if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signum);
  // Waits for exit; the exit code, 128+signal when killed, nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds limit);
  // Reads output until `needle` appears in stdout (true) or `limit` passes (false).
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds limit);
  // Counts occurrences of `needle` in the stdout gathered so far (reads what is ready).
  size_t count(const std::string& needle);
  const std::string& out();  // all stdout so far
  const std::string& err();  // all stderr so far

 private:
  void pump(std::chrono::milliseconds limit);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_, err_;
  std::optional<int> status_;
};

// Runs to completion (bounded); returns {exit code, stdout, stderr}.
struct RunResult {
  int code = -1;
  std::string out, err;
};
RunResult run(std::vector<std::string> argv,
              std::chrono::milliseconds limit = std::chrono::seconds(30));

// `argv` run under `setpriv --pdeathsig TERM` when setpriv is installed, so that a server the
// test starts gets SIGTERM should the test process die without stopping it.
std::vector<std::string> with_parent_death_signal(std::vector<std::string> argv);

// The netmond binary under test.
std::string netmond_bin();
// A fresh temporary directory for the current test, removed at process exit.
std::string temp_dir();
// Writes `text` to `dir/name` and returns the path.
std::string write_file(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace netmond::test
