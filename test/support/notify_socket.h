// An AF_UNIX datagram socket standing in for systemd's notification socket (NOTIFY_SOCKET),
// for black-box tests of sd_notify(3) messages.
#pragma once

#include "base/fd.h"

#include <chrono>
#include <optional>
#include <string>

namespace netmond::test {

class NotifySocket {
 public:
  NotifySocket();  // bound in this test's temp_dir()
  const std::string& path() const { return path_; }
  // The next message, waiting up to `limit`.
  std::optional<std::string> next(std::chrono::milliseconds limit);

 private:
  std::string path_;
  Fd fd_;
};

}  // namespace netmond::test
