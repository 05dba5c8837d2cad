// A test's client of netmond's control socket (docs/control.md): plain blocking Unix
// socket with bounded waits, raw bytes or JSON lines.
#pragma once

#include "base/fd.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace netmond::test {

class ControlConnection {
 public:
  // Connects to `path` (a refusal, the daemon between bind() and listen(), is tried again
  // for up to 2 s); on failure connected() is false and error() is the errno.
  explicit ControlConnection(const std::string& path);
  bool connected() const { return static_cast<bool>(fd_); }
  int error() const { return error_; }
  int fd() const { return fd_.get(); }

  // Sends all of `bytes` (false if the daemon closed the connection).
  bool send_raw(const std::string& bytes);
  // The next line, parsed; nullopt on timeout, end of stream or a line that is not JSON.
  std::optional<nlohmann::json> read(std::chrono::milliseconds limit = std::chrono::seconds(5));
  // Sends `request` as one line and reads the response.
  std::optional<nlohmann::json> request(const nlohmann::json& request,
                                        std::chrono::milliseconds limit = std::chrono::seconds(5));
  // Whether the daemon closes the connection within `limit` (the data before is dropped).
  bool closed_by_peer(std::chrono::milliseconds limit = std::chrono::seconds(5));

 private:
  // Reads what is there within `limit` into buffer_; false on timeout or end of stream.
  bool fill(std::chrono::steady_clock::time_point deadline);
  Fd fd_;
  int error_ = 0;
  bool eof_ = false;
  std::string buffer_;
};

// Waits until a Unix socket file exists at `path` and its socket listens (the file appears
// at bind(), a moment before listen()).
bool wait_for_socket(const std::string& path, std::chrono::milliseconds limit);

}  // namespace netmond::test
