#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace netmond::test {

ChildProcess::ChildProcess(std::vector<std::string> argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
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

std::string netmond_bin() { return NETMOND_BIN; }

std::string temp_dir() {
  static std::string base = [] {
    char tmpl[] = "/tmp/netmond-test-XXXXXX";
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
