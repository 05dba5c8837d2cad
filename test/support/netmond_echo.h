// The real netmond-echo program as a peer for echo and UDP tests: started as a child of the
// test on loopback ports the kernel chooses (--listen IP:0), stopped by the destructor.
#pragma once

#include "support/process.h"

#include <chrono>
#include <string>
#include <vector>

namespace netmond::test {

class NetmondEcho {
 public:
  // `listen` are netmond-echo's --listen values, e.g. {"127.0.0.1:0", "[::1]:0"}. Returns
  // once it answers datagrams; throws std::runtime_error with its output otherwise (5 s).
  explicit NetmondEcho(std::vector<std::string> listen = {"127.0.0.1:0"});

  // "127.0.0.1:40123", "[::1]:40124": where it listens, in the order of `listen`.
  const std::vector<std::string>& addresses() const { return addresses_; }
  // The port of the first address.
  std::string port() const;
  pid_t pid() const { return child_.pid(); }

  // SIGTERM and the exit code (nullopt when it takes over `limit`).
  std::optional<int> stop(std::chrono::milliseconds limit = std::chrono::seconds(5));

 private:
  ChildProcess child_;
  std::vector<std::string> addresses_;
};

}  // namespace netmond::test
