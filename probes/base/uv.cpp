#include "base/uv.h"

#include <net/if.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace netmond::uv {

std::string error_text(int status) { return uv_strerror(status); }

namespace {
uint64_t to_ms(std::chrono::nanoseconds d) {
  // Round up so a timer never fires before its due time.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);
}
}  // namespace

Timer::Timer(uv_loop_t* loop) : slot_(new SlotT) {
  uv_timer_init(loop, &slot_->handle);
  slot_->handle.data = slot_;
}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    detail::close_slot(slot_);
    slot_ = std::exchange(o.slot_, nullptr);
  }
  return *this;
}

void Timer::fire(uv_timer_t* t) noexcept {
  auto* s = static_cast<SlotT*>(t->data);
  if (s->closed) return;
  // Copy: the callback may restart this timer with a new function.
  Fn fn = s->fn;
  fn();
}

void Timer::start(std::chrono::nanoseconds delay, Fn fn, std::chrono::nanoseconds repeat) {
  slot_->fn = std::move(fn);
  // From now, not from the loop's time cached when this turn began: work done earlier in
  // the turn would otherwise shorten the delay (a run's 400 ms deadline fired after 399.2 ms
  // of the run; test/daemon/hostile_schedule_test.cpp). One vDSO clock read.
  uv_update_time(slot_->handle.loop);
  uv_timer_start(&slot_->handle, &Timer::fire, to_ms(delay), to_ms(repeat));
}

void Timer::start_at(std::uint64_t loop_ms, Fn fn) {
  slot_->fn = std::move(fn);
  const std::uint64_t now = uv_now(slot_->handle.loop);
  uv_timer_start(&slot_->handle, &Timer::fire, loop_ms > now ? loop_ms - now : 0, 0);
}

void Timer::stop() {
  if (slot_) uv_timer_stop(&slot_->handle);
}

bool Timer::active() const {
  return slot_ && uv_is_active(reinterpret_cast<uv_handle_t*>(&slot_->handle));
}

Signal::Signal(uv_loop_t* loop) : slot_(new SlotT) {
  uv_signal_init(loop, &slot_->handle);
  slot_->handle.data = slot_;
}

int Signal::start(int signum, Fn fn) {
  slot_->fn = std::move(fn);
  return uv_signal_start(
      &slot_->handle,
      [](uv_signal_t* h, int sig) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        if (!s->closed) s->fn(sig);
      },
      signum);
}

Prepare::Prepare(uv_loop_t* loop) : slot_(new SlotT) {
  uv_prepare_init(loop, &slot_->handle);
  slot_->handle.data = slot_;
  uv_unref(reinterpret_cast<uv_handle_t*>(&slot_->handle));
}

void Prepare::start(Fn fn) {
  slot_->fn = std::move(fn);
  uv_prepare_start(&slot_->handle, [](uv_prepare_t* h) noexcept {
    auto* s = static_cast<SlotT*>(h->data);
    if (!s->closed) s->fn();
  });
}

Poll& Poll::operator=(Poll&& o) noexcept {
  if (this != &o) {
    detail::close_slot(slot_);
    slot_ = std::exchange(o.slot_, nullptr);
  }
  return *this;
}

int Poll::init(uv_loop_t* loop, int fd) {
  reset();
  auto* s = new SlotT;
  int rc = uv_poll_init_socket(loop, &s->handle, fd);
  if (rc != 0) {
    delete s;  // never initialised, so never closed
    return rc;
  }
  s->handle.data = s;
  slot_ = s;
  return 0;
}

int Poll::start(int events, Fn fn) {
  slot_->fn = std::move(fn);
  return uv_poll_start(&slot_->handle, events, [](uv_poll_t* h, int status, int ev) noexcept {
    auto* s = static_cast<SlotT*>(h->data);
    if (s->closed) return;
    Fn fn = s->fn;  // the callback may reset or re-start this poll
    fn(status, ev);
  });
}

void Poll::stop() {
  if (slot_) uv_poll_stop(&slot_->handle);
}

int TcpConnection::connect(uv_loop_t* loop, const sockaddr* addr, const sockaddr* bind_addr,
                           const std::string& device, ConnectFn fn) {
  reset();
  failed_step_ = Step::Socket;
  auto* s = new SlotT;
  int rc = uv_tcp_init_ex(loop, &s->handle, addr->sa_family);
  if (rc != 0) {
    delete s;
    return rc;
  }
  s->handle.data = s;
  s->req.data = s;
  s->fn = std::move(fn);
  slot_ = s;
  if (!device.empty()) {
    failed_step_ = Step::Device;
    uv_os_fd_t fd;
    uv_fileno(reinterpret_cast<uv_handle_t*>(&s->handle), &fd);
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(),
                   static_cast<socklen_t>(device.size())) != 0) {
      rc = -errno;
      reset();
      return rc;
    }
  }
  failed_step_ = Step::Bind;
  if (bind_addr != nullptr && (rc = uv_tcp_bind(&s->handle, bind_addr, 0)) != 0) {
    reset();
    return rc;
  }
  failed_step_ = Step::Connect;
  rc = uv_tcp_connect(&s->req, &s->handle, addr, [](uv_connect_t* req, int status) noexcept {
    auto* s = static_cast<SlotT*>(req->data);
    if (s->closed) return;  // UV_ECANCELED during close: the owner is gone
    ConnectFn fn = std::move(s->fn);
    fn(status);
  });
  if (rc != 0) {
    reset();
    return rc;
  }
  failed_step_ = Step::None;
  return 0;
}

void TcpConnection::reset() {
  if (slot_ == nullptr) return;
  auto* s = std::exchange(slot_, nullptr);
  s->closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&s->handle),
           [](uv_handle_t* h) { delete static_cast<SlotT*>(h->data); });
}

int Udp::init(uv_loop_t* loop, unsigned flags) {
  detail::close_slot(std::exchange(slot_, nullptr));
  auto* s = new SlotT;
  int rc = uv_udp_init_ex(loop, &s->handle, flags);
  if (rc != 0) {
    delete s;  // never initialised, so never closed
    return rc;
  }
  s->handle.data = s;
  slot_ = s;
  return 0;
}

int Udp::bind(const sockaddr* addr, unsigned flags) {
  return uv_udp_bind(&slot_->handle, addr, flags);
}

int Udp::open(int fd) { return uv_udp_open(&slot_->handle, fd); }

int Udp::recv_start(char* buf, size_t len, RecvFn fn) {
  slot_->buf = buf;
  slot_->len = len;
  slot_->fn = std::move(fn);
  return uv_udp_recv_start(
      &slot_->handle,
      [](uv_handle_t* h, size_t, uv_buf_t* out) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        *out = uv_buf_init(s->buf, static_cast<unsigned>(s->len));
      },
      [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
         unsigned flags) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        // Called in place, not copied as the other trampolines do: this runs once per
        // datagram, and the slot (with fn) outlives an owner destroyed inside the call.
        if (!s->closed) s->fn(nread, buf, addr, flags);
      });
}

void Udp::recv_stop() {
  if (slot_) uv_udp_recv_stop(&slot_->handle);
}

int Udp::try_send(const char* data, size_t len, const sockaddr* to) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  return uv_udp_try_send(&slot_->handle, &buf, 1, to);
}

int Udp::fileno() const {
  uv_os_fd_t fd = -1;
  if (slot_) uv_fileno(reinterpret_cast<const uv_handle_t*>(&slot_->handle), &fd);
  return fd;
}

namespace {

// uv_listen on a server's slot; connections are dispatched to the slot's callback.
template <typename SlotT>
int listen_slot(SlotT* slot, int backlog, decltype(SlotT::fn) fn) {
  slot->fn = std::move(fn);
  return uv_listen(reinterpret_cast<uv_stream_t*>(&slot->handle), backlog,
                   [](uv_stream_t* h, int status) noexcept {
                     auto* s = static_cast<SlotT*>(h->data);
                     if (s->closed) return;
                     auto fn = s->fn;  // the callback may destroy the server
                     fn(status);
                   });
}

// Accepts one pending connection of a server's slot into `client`, initialised anew.
template <typename SlotT, typename Stream>
int accept_slot(SlotT* slot, Stream& client) {
  int rc = client.init(slot->handle.loop);
  if (rc == 0) rc = uv_accept(reinterpret_cast<uv_stream_t*>(&slot->handle), client.stream());
  if (rc != 0) client.reset();
  return rc;
}

}  // namespace

int TcpServer::init(uv_loop_t* loop, unsigned family) {
  detail::close_slot(std::exchange(slot_, nullptr));
  auto* s = new SlotT;
  int rc = uv_tcp_init_ex(loop, &s->handle, family);
  if (rc != 0) {
    delete s;
    return rc;
  }
  s->handle.data = s;
  slot_ = s;
  return 0;
}

int TcpServer::bind(const sockaddr* addr, unsigned flags) {
  return uv_tcp_bind(&slot_->handle, addr, flags);
}

int TcpServer::open(int fd) { return uv_tcp_open(&slot_->handle, fd); }

int TcpServer::listen(int backlog, ConnectionFn fn) {
  return listen_slot(slot_, backlog, std::move(fn));
}

int TcpServer::accept(TcpStream& client) { return accept_slot(slot_, client); }

int TcpServer::fileno() const {
  uv_os_fd_t fd = -1;
  if (slot_) uv_fileno(reinterpret_cast<const uv_handle_t*>(&slot_->handle), &fd);
  return fd;
}

int TcpStream::init(uv_loop_t* loop) {
  reset();
  auto* s = new SlotT;
  int rc = uv_tcp_init(loop, &s->handle);
  if (rc != 0) {
    delete s;
    return rc;
  }
  s->handle.data = s;
  s->write_req.data = s;
  s->shutdown_req.data = s;
  slot_ = s;
  return 0;
}

uv_stream_t* TcpStream::stream() { return reinterpret_cast<uv_stream_t*>(&slot_->handle); }

int TcpStream::read_start(char* buf, size_t len, ReadFn fn) {
  slot_->buf = buf;
  slot_->len = len;
  slot_->read_fn = std::move(fn);
  return uv_read_start(
      stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* out) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        *out = uv_buf_init(s->buf, static_cast<unsigned>(s->len));
      },
      [](uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        if (s->closed) return;
        ReadFn fn = s->read_fn;  // the callback may destroy this stream
        fn(nread, buf);
      });
}

void TcpStream::read_stop() {
  if (slot_) uv_read_stop(stream());
}

int TcpStream::try_write(const char* data, size_t len) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  return uv_try_write(stream(), &buf, 1);
}

int TcpStream::write(const char* data, size_t len, DoneFn fn) {
  slot_->write_fn = std::move(fn);
  uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  return uv_write(&slot_->write_req, stream(), &buf, 1, [](uv_write_t* req, int status) noexcept {
    auto* s = static_cast<SlotT*>(req->data);
    if (s->closed) return;  // UV_ECANCELED during close: the owner is gone
    DoneFn fn = std::move(s->write_fn);
    fn(status);
  });
}

int TcpStream::shutdown(DoneFn fn) {
  slot_->shutdown_fn = std::move(fn);
  return uv_shutdown(&slot_->shutdown_req, stream(), [](uv_shutdown_t* req, int status) noexcept {
    auto* s = static_cast<SlotT*>(req->data);
    if (s->closed) return;
    DoneFn fn = std::move(s->shutdown_fn);
    fn(status);
  });
}

int TcpStream::fileno() const {
  uv_os_fd_t fd = -1;
  if (slot_) uv_fileno(reinterpret_cast<const uv_handle_t*>(&slot_->handle), &fd);
  return fd;
}

void TcpStream::reset() { detail::close_slot(std::exchange(slot_, nullptr)); }

int PipeServer::init(uv_loop_t* loop) {
  detail::close_slot(std::exchange(slot_, nullptr));
  auto* s = new SlotT;
  int rc = uv_pipe_init(loop, &s->handle, 0);
  if (rc != 0) {
    delete s;
    return rc;
  }
  s->handle.data = s;
  slot_ = s;
  return 0;
}

int PipeServer::bind(const std::string& path) { return uv_pipe_bind(&slot_->handle, path.c_str()); }

int PipeServer::listen(int backlog, ConnectionFn fn) {
  return listen_slot(slot_, backlog, std::move(fn));
}

int PipeServer::accept(PipeStream& client) { return accept_slot(slot_, client); }

struct PipeStream::SlotT {
  static constexpr size_t kReadBuffer = 64 * 1024;
  uv_pipe_t handle{};
  uv_write_t write_req{};
  std::string writing;  // the buffer of the uv_write in flight
  std::string queued;   // written by the owner since
  bool write_active = false;
  ReadFn read_fn;
  DrainedFn drained_fn;
  char buf[kReadBuffer];
  bool closed = false;

  // Hands `queued` to libuv when no write is in flight.
  int flush() {
    if (write_active || queued.empty()) return 0;
    writing.swap(queued);
    queued.clear();
    uv_buf_t b = uv_buf_init(writing.data(), static_cast<unsigned>(writing.size()));
    int rc = uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&handle), &b, 1,
                      [](uv_write_t* req, int status) noexcept {
                        auto* s = static_cast<SlotT*>(req->data);
                        s->write_active = false;
                        s->writing.clear();
                        if (s->closed) return;  // UV_ECANCELED during close
                        if (status == 0) status = s->flush();
                        if (status < 0) {
                          ReadFn fn = s->read_fn;  // may destroy the owner
                          if (fn) fn(status, nullptr);
                          return;
                        }
                        if (!s->write_active && s->drained_fn) {
                          DrainedFn fn = std::exchange(s->drained_fn, nullptr);
                          fn();
                        }
                      });
    if (rc == 0) write_active = true;
    return rc;
  }
};

int PipeStream::init(uv_loop_t* loop) {
  reset();
  auto* s = new SlotT;
  int rc = uv_pipe_init(loop, &s->handle, 0);
  if (rc != 0) {
    delete s;
    return rc;
  }
  s->handle.data = s;
  s->write_req.data = s;
  slot_ = s;
  return 0;
}

uv_stream_t* PipeStream::stream() { return reinterpret_cast<uv_stream_t*>(&slot_->handle); }

int PipeStream::read_start(ReadFn fn) {
  slot_->read_fn = std::move(fn);
  return uv_read_start(
      stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* out) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        *out = uv_buf_init(s->buf, sizeof s->buf);
      },
      [](uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) noexcept {
        auto* s = static_cast<SlotT*>(h->data);
        if (s->closed || nread == 0) return;
        ReadFn fn = s->read_fn;  // the callback may destroy this stream
        fn(nread, buf->base);
      });
}

void PipeStream::read_stop() {
  if (slot_) uv_read_stop(stream());
}

int PipeStream::write(std::string data) {
  if (slot_->queued.empty())
    slot_->queued = std::move(data);
  else
    slot_->queued += data;
  return slot_->flush();
}

bool PipeStream::on_drained(DrainedFn fn) {
  if (unsent() == 0) return false;
  slot_->drained_fn = std::move(fn);
  return true;
}

size_t PipeStream::unsent() const {
  return slot_ ? slot_->writing.size() + slot_->queued.size() : 0;
}

void PipeStream::reset() { detail::close_slot(std::exchange(slot_, nullptr)); }

struct BackgroundWork::State {
  std::mutex mutex;
  // Wakes the loop when the work is done; null once the owner has closed it (finished or
  // abandoned), so the thread's end is reported at most once, and never to a closed handle.
  uv_async_t* wake = nullptr;
  std::function<void()> done;
};

namespace {
void close_async(uv_async_t* a) {
  uv_close(reinterpret_cast<uv_handle_t*>(a),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
}
}  // namespace

int BackgroundWork::start(std::function<void()> work, std::function<void()> done) {
  if (state_ != nullptr) return UV_EBUSY;
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  auto* wake = new uv_async_t;
  if (int rc = uv_async_init(
          loop_, wake, [](uv_async_t* a) { static_cast<BackgroundWork*>(a->data)->finished(); });
      rc != 0) {
    delete wake;
    return rc;
  }
  wake->data = this;
  state->wake = wake;
  try {
    std::thread([state, work = std::move(work)] {
      work();
      std::lock_guard lock(state->mutex);
      if (state->wake != nullptr) uv_async_send(state->wake);
    }).detach();
  } catch (const std::system_error& e) {
    close_async(wake);
    return uv_translate_sys_error(e.code().value());
  }
  state_ = std::move(state);
  return 0;
}

void BackgroundWork::finished() {
  std::shared_ptr<State> state = std::move(state_);
  if (state == nullptr) return;
  {
    std::lock_guard lock(state->mutex);
    close_async(std::exchange(state->wake, nullptr));
  }
  state->done();  // may start the next work on this owner, or destroy it
}

void BackgroundWork::abandon() noexcept {
  std::shared_ptr<State> state = std::move(state_);
  if (state == nullptr) return;
  std::lock_guard lock(state->mutex);
  close_async(std::exchange(state->wake, nullptr));
  state->done = nullptr;
}

}  // namespace netmond::uv
