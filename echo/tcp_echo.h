// One RFC 862 TCP echo connection: every byte read is written back until the peer closes.
//
// Memory per connection is one fixed buffer: the connection reads into it, writes what it
// read back at once (uv_try_write) and, when the peer does not take it all, stops reading
// until the rest is written (backpressure: a peer that does not read stops being read).
// A connection with no progress for the idle timeout is closed. After the peer's EOF the
// remaining echo is flushed, then the write side is shut down.
#pragma once

#include "base/uv.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace netmond {

class TcpEchoConnection {
 public:
  enum class End : std::uint8_t { PeerClosed, Idle, Error };
  // Called once, when the connection is over and its socket closed; the owner may destroy
  // the connection inside the call.
  using DoneFn = std::function<void(TcpEchoConnection*, End)>;

  // Starts echoing on `stream` (accepted on `loop`); adds every echoed byte to *bytes.
  TcpEchoConnection(uv_loop_t* loop, uv::TcpStream stream, size_t buffer_size,
                    std::chrono::milliseconds idle_timeout, std::uint64_t* bytes, DoneFn done);
  TcpEchoConnection(const TcpEchoConnection&) = delete;
  TcpEchoConnection& operator=(const TcpEchoConnection&) = delete;

 private:
  int start_reading();
  void on_read(ssize_t nread);
  void on_written(int status, size_t len);
  void touch();
  void finish(End end);

  // The buffer outlives the stream's reads: the stream is closed in finish() or, before
  // it, in the destructor (members are destroyed in reverse order).
  std::unique_ptr<char[]> buf_;
  size_t size_;
  std::chrono::milliseconds idle_timeout_;
  std::uint64_t* bytes_;
  DoneFn done_;
  uv::Timer idle_;
  uv::TcpStream stream_;
};

}  // namespace netmond
