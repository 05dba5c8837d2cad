// Drives an interactive program through a pseudo-terminal, as a person at a terminal
// would: for the shells of netmonctl and netmond.
#pragma once

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace netmond::test {

// A program on the slave side of a pseudo-terminal (40x160, TERM=xterm, HOME=`home`);
// the test types on the master side and reads what the program draws.
class Terminal {
 public:
  Terminal(std::vector<std::string> argv, const std::string& home) {
    winsize size{};
    size.ws_row = 40;
    size.ws_col = 160;
    pid_ = forkpty(&master_, nullptr, nullptr, &size);
    if (pid_ == 0) {
      ::setenv("HOME", home.c_str(), 1);
      ::unsetenv("XDG_STATE_HOME");
      ::setenv("TERM", "xterm", 1);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Terminal() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool started() const { return pid_ > 0 && master_ >= 0; }
  // Types `keys` as a person would: not within microseconds of the prompt. libedit draws
  // its prompt and then switches the terminal to its own mode (tcsetattr with
  // TCSAFLUSH-like effects on pending input), so keys sent in that instant can be lost or
  // handled by the line discipline instead (measured: a Ctrl-D lost in 1 of 3 ASan runs).
  void type(const std::string& keys) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    REQUIRE(::write(master_, keys.data(), keys.size()) == static_cast<ssize_t>(keys.size()));
  }
  // Reads until the output since the last mark contains `text`.
  bool expect(const std::string& text, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (out_.find(text, mark_) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= std::chrono::milliseconds(0)) {
        UNSCOPED_INFO("terminal output: " << out_);
        return false;
      }
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) {  // the shell ended
        UNSCOPED_INFO("terminal output: " << out_);
        return false;
      }
      out_.append(buf, static_cast<size_t>(n));
    }
    mark_ = out_.find(text, mark_) + text.size();
    return true;
  }
  std::optional<int> wait(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0 && ::read(master_, buf, sizeof buf) > 0) continue;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return std::nullopt;
  }
  const std::string& output() const { return out_; }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool exited_ = false;
  std::string out_;
  size_t mark_ = 0;
};

}  // namespace netmond::test
