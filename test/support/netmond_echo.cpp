#include "support/netmond_echo.h"

#include <csignal>
#include <stdexcept>

namespace netmond::test {

namespace {

std::vector<std::string> echo_argv(const std::vector<std::string>& listen) {
  std::vector<std::string> argv = {NETMOND_ECHO_BIN};
  for (const auto& l : listen) {
    argv.push_back("--listen");
    argv.push_back(l);
  }
  return argv;
}

}  // namespace

NetmondEcho::NetmondEcho(std::vector<std::string> listen) : child_(echo_argv(listen)) {
  using namespace std::chrono_literals;
  if (!child_.wait_for_output("answering datagrams", 5s)) {
    throw std::runtime_error("netmond-echo did not start:\n" + child_.out() + child_.err());
  }
  // One "listening on udp ADDRESS" line per --listen, in order.
  const std::string tag = "listening on udp ";
  const std::string& out = child_.out();
  for (auto pos = out.find(tag); pos != std::string::npos; pos = out.find(tag, pos + 1)) {
    const auto start = pos + tag.size();
    addresses_.push_back(out.substr(start, out.find_first_of(" \n", start) - start));
  }
  if (addresses_.size() != listen.size()) {
    throw std::runtime_error("netmond-echo: expected " + std::to_string(listen.size()) +
                             " listening lines in:\n" + out);
  }
}

std::string NetmondEcho::port() const {
  const auto& first = addresses_.front();
  return first.substr(first.rfind(':') + 1);
}

std::optional<int> NetmondEcho::stop(std::chrono::milliseconds limit) {
  child_.signal(SIGTERM);
  return child_.wait(limit);
}

}  // namespace netmond::test
