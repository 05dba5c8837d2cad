#include "tcp_echo.h"

#include <utility>

namespace netmond {

TcpEchoConnection::TcpEchoConnection(uv_loop_t* loop, uv::TcpStream stream, size_t buffer_size,
                                     std::chrono::milliseconds idle_timeout, std::uint64_t* bytes,
                                     DoneFn done)
    : buf_(std::make_unique<char[]>(buffer_size)),
      size_(buffer_size),
      idle_timeout_(idle_timeout),
      bytes_(bytes),
      done_(std::move(done)),
      idle_(loop),
      stream_(std::move(stream)) {
  touch();
  if (start_reading() != 0) {
    // Deliver the end on a later turn, like every other end: never inside the constructor.
    idle_.start({}, [this] { finish(End::Error); });
  }
}

int TcpEchoConnection::start_reading() {
  return stream_.read_start(buf_.get(), size_,
                            [this](ssize_t nread, const uv_buf_t*) { on_read(nread); });
}

void TcpEchoConnection::touch() {
  idle_.start(idle_timeout_, [this] { finish(End::Idle); });
}

void TcpEchoConnection::on_read(ssize_t nread) {
  if (nread == 0) return;  // EAGAIN: nothing this time
  if (nread < 0) {
    if (nread != UV_EOF) return finish(End::Error);
    // Reading has stopped; the buffer is empty (nothing is read while a write is pending),
    // so the echo is complete: send our FIN, then close once it is queued.
    if (stream_.shutdown([this](int) { finish(End::PeerClosed); }) != 0) finish(End::Error);
    return;
  }
  touch();
  size_t len = static_cast<size_t>(nread);
  int sent = stream_.try_write(buf_.get(), len);
  if (sent < 0 && sent != UV_EAGAIN) return finish(End::Error);
  size_t done = sent > 0 ? static_cast<size_t>(sent) : 0;
  *bytes_ += done;
  if (done == len) return;
  // The peer is not keeping up: stop reading until the rest of this buffer is written.
  stream_.read_stop();
  size_t rest = len - done;
  if (stream_.write(buf_.get() + done, rest,
                    [this, rest](int status) { on_written(status, rest); }) != 0)
    finish(End::Error);
}

void TcpEchoConnection::on_written(int status, size_t len) {
  if (status < 0) return finish(End::Error);
  *bytes_ += len;
  touch();
  if (start_reading() != 0) finish(End::Error);
}

void TcpEchoConnection::finish(End end) {
  idle_.stop();
  stream_.reset();
  // The owner may destroy this connection inside the call: call a local copy.
  DoneFn done = std::move(done_);
  if (done) done(this, end);
}

}  // namespace netmond
