#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>

namespace netmond::test {

ChildProcess::ChildProcess(std::vector<std::string> argv)
    : ChildProcess(std::move(argv), ChildOptions{}) {}

ChildProcess::ChildProcess(std::vector<std::string> argv, ChildOptions options) {
  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed (no allocation).
  std::vector<std::string> env;
  auto overridden = [&](const char* entry) {
    std::string_view e(entry);
    auto name = e.substr(0, e.find('=') + 1);
    if (options.listen_fds &&
        (name == "LISTEN_FDS=" || name == "LISTEN_PID=" || name == "LISTEN_FDNAMES="))
      return true;
    for (const auto& o : options.env)
      if (std::string_view(o).substr(0, o.find('=') + 1) == name) return true;
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e)
    if (!overridden(*e)) env.emplace_back(*e);
  for (const auto& o : options.env) env.push_back(o);
  size_t listen_pid = 0;
  if (options.listen_fds) {
    env.push_back("LISTEN_FDS=" + std::to_string(options.fds.size()));
    listen_pid = env.size();
    env.push_back("LISTEN_PID=" + std::string(20, '\0'));  // the digits are written in the child
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    // Out of the way first (a passed fd may sit where another one goes), then into place;
    // dup2 clears close-on-exec on the copies.
    int high[64];
    size_t n = options.fds.size() < 64 ? options.fds.size() : 64;
    for (size_t i = 0; i < n; ++i) high[i] = fcntl(options.fds[i], F_DUPFD_CLOEXEC, 100);
    for (size_t i = 0; i < n; ++i) dup2(high[i], static_cast<int>(3 + i));
    if (listen_pid != 0) {
      char* digits = envp[listen_pid] + std::strlen("LISTEN_PID=");
      char tmp[20];
      int len = 0;
      for (pid_t p = getpid(); p > 0; p /= 10) tmp[len++] = static_cast<char>('0' + p % 10);
      for (int i = 0; i < len; ++i) digits[i] = tmp[len - 1 - i];
      digits[len] = '\0';
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  fcntl(err_fd_, F_SETFL, O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (!status_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

void ChildProcess::signal(int signum) {
  if (!status_) kill(pid_, signum);
}

void ChildProcess::pump(std::chrono::milliseconds limit) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (poll(fds, 2, static_cast<int>(limit.count())) <= 0) return;
  char buf[65536];
  for (int i = 0; i < 2; ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
    ssize_t n;
    while ((n = read(fds[i].fd, buf, sizeof buf)) > 0) (i == 0 ? out_ : err_).append(buf, n);
  }
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!status_) {
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    pump(std::chrono::milliseconds(10));
  }
  // Drain what the child wrote before exiting.
  for (int i = 0; i < 100; ++i) {
    size_t before = out_.size() + err_.size();
    pump(std::chrono::milliseconds(0));
    if (out_.size() + err_.size() == before) break;
  }
  return status_;
}

bool ChildProcess::wait_for_output(const std::string& needle, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (out_.find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= until) return false;
    pump(std::chrono::milliseconds(20));
  }
  return true;
}

size_t ChildProcess::count(const std::string& needle) {
  pump(std::chrono::milliseconds(0));
  size_t n = 0;
  for (size_t pos = out_.find(needle); pos != std::string::npos; pos = out_.find(needle, pos + 1))
    ++n;
  return n;
}

const std::string& ChildProcess::out() {
  pump(std::chrono::milliseconds(0));
  return out_;
}

const std::string& ChildProcess::err() {
  pump(std::chrono::milliseconds(0));
  return err_;
}

RunResult run(std::vector<std::string> argv, std::chrono::milliseconds limit) {
  ChildProcess child(std::move(argv));
  RunResult r;
  auto code = child.wait(limit);
  r.code = code ? *code : -1;
  r.out = child.out();
  r.err = child.err();
  return r;
}

std::vector<std::string> with_parent_death_signal(std::vector<std::string> argv) {
  constexpr const char* kSetpriv = "/usr/bin/setpriv";
  if (::access(kSetpriv, X_OK) == 0) argv.insert(argv.begin(), {kSetpriv, "--pdeathsig", "TERM"});
  return argv;
}

std::string netmond_bin() { return NETMOND_BIN; }

std::string temp_dir() {
  static std::string base = [] {
    // "DB" in the name on purpose: test_pki() once looped for ever on a path that
    // contained it (support/tls.cpp), which a random name did once in a few hundred runs.
    char tmpl[] = "/tmp/netmond-test-DB-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    static std::string to_remove = dir;
    std::atexit([] { std::filesystem::remove_all(to_remove); });
    return dir;
  }();
  static int counter = 0;
  std::string dir = base + "/" + std::to_string(++counter);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace netmond::test
