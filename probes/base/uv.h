// RAII owners for the libuv handles netmond uses.
//
// libuv forbids freeing a handle before its close callback has run. Each owner therefore
// allocates the handle together with its C++ callback in one heap block (a "slot"); the
// owner holds only a pointer. Destroying the owner marks the slot closed and calls
// uv_close(); the close callback frees the slot. Consequences:
//  - a callback may destroy its own owner: the std::function it is running in lives on
//    until the close callback, and trampolines never dispatch on a closed slot;
//  - owners are move-only and cheap to move;
//  - after the owners are gone, run the loop once more so the close callbacks free the
//    slots; then uv_loop_close() returns 0 (the leak check every test ends with).
#pragma once

#include "base/socket_step.h"

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace netmond::uv {

// Human-readable text for a negative libuv error code ("connection refused").
std::string error_text(int status);

namespace detail {
template <typename Handle, typename Fn>
struct Slot {
  Handle handle{};
  Fn fn;
  bool closed = false;
};

// Frees the slot of a handle that was initialised: through uv_close, never directly.
template <typename SlotT>
void close_slot(SlotT* slot) noexcept {
  if (slot == nullptr) return;
  slot->closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&slot->handle),
           [](uv_handle_t* h) { delete static_cast<SlotT*>(h->data); });
}
}  // namespace detail

// A one-shot or repeating timer.
class Timer {
 public:
  using Fn = std::function<void()>;
  explicit Timer(uv_loop_t* loop);
  ~Timer() { detail::close_slot(slot_); }
  Timer(Timer&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer; fires `fn` after `delay`, then every `repeat` if non-zero.
  void start(std::chrono::nanoseconds delay, Fn fn, std::chrono::nanoseconds repeat = {});
  // Fires `fn` once, on the first loop turn whose time (uv_now, ms) is `loop_ms` or later;
  // timers given the same `loop_ms` fire in the same turn.
  void start_at(std::uint64_t loop_ms, Fn fn);
  void stop();
  bool active() const;

 private:
  using SlotT = detail::Slot<uv_timer_t, Fn>;
  static void fire(uv_timer_t* t) noexcept;
  SlotT* slot_ = nullptr;
};

// A signal watcher; its callback runs on the loop thread, so it may do anything.
class Signal {
 public:
  using Fn = std::function<void(int signum)>;
  explicit Signal(uv_loop_t* loop);
  ~Signal() { detail::close_slot(slot_); }
  Signal(Signal&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  // Returns 0 or a libuv error code.
  int start(int signum, Fn fn);

 private:
  using SlotT = detail::Slot<uv_signal_t, Fn>;
  SlotT* slot_ = nullptr;
};

// Runs `fn` on every loop turn just before the loop waits for I/O (uv_prepare_t): work
// batched over a turn (buffered log lines) is finished there, before the loop sleeps.
// It does not keep the loop running by itself.
class Prepare {
 public:
  using Fn = std::function<void()>;
  explicit Prepare(uv_loop_t* loop);
  ~Prepare() { detail::close_slot(slot_); }
  Prepare(Prepare&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  Prepare(const Prepare&) = delete;
  Prepare& operator=(const Prepare&) = delete;

  void start(Fn fn);

 private:
  using SlotT = detail::Slot<uv_prepare_t, Fn>;
  SlotT* slot_ = nullptr;
};

// Watches a file descriptor it does not own. Close the Poll before closing the fd:
// declare the fd owner before the Poll in a class so destruction runs in that order.
class Poll {
 public:
  // status < 0 means the socket has a pending error (libuv reports POLLERR as UV_EBADF
  // and stops the watcher: re-start it after handling the error).
  using Fn = std::function<void(int status, int events)>;
  Poll() = default;
  ~Poll() { detail::close_slot(slot_); }
  Poll(Poll&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  Poll& operator=(Poll&& o) noexcept;
  Poll(const Poll&) = delete;
  Poll& operator=(const Poll&) = delete;

  // Returns 0 or a libuv error code (UV_EEXIST when the fd is already watched).
  int init(uv_loop_t* loop, int fd);
  int start(int events, Fn fn);
  void stop();
  bool valid() const { return slot_ != nullptr; }
  void reset() { detail::close_slot(std::exchange(slot_, nullptr)); }

 private:
  using SlotT = detail::Slot<uv_poll_t, Fn>;
  SlotT* slot_ = nullptr;
};

// A TCP handle with its one connect request in the same slot, so that a connect callback
// delivered with UV_ECANCELED during close (libuv runs it before the close callback) never
// touches freed memory.
class TcpConnection {
 public:
  using ConnectFn = std::function<void(int status)>;
  // The step of connect() that failed, so callers can tell a local problem (socket, device,
  // bind) from the network refusing (connect).
  using Step = SocketStep;  // None, Socket, Device, Bind or Connect

  TcpConnection() = default;
  ~TcpConnection() { reset(); }
  TcpConnection(TcpConnection&& o) noexcept
      : slot_(std::exchange(o.slot_, nullptr)), failed_step_(o.failed_step_) {}
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  // Creates the socket for `addr`'s family, optionally binds it to `bind_addr` and to a
  // device, and starts a non-blocking connect. Returns 0 or a libuv error; on error
  // `fn` is never called.
  int connect(uv_loop_t* loop, const sockaddr* addr, const sockaddr* bind_addr,
              const std::string& device, ConnectFn fn);
  // Closes the connection; a pending connect callback is dropped.
  void reset();
  bool valid() const { return slot_ != nullptr; }
  // After connect() returned an error: which step it was. Step::None otherwise.
  Step failed_step() const { return failed_step_; }

 private:
  struct SlotT {
    uv_tcp_t handle{};
    uv_connect_t req{};
    ConnectFn fn;
    bool closed = false;
  };
  SlotT* slot_ = nullptr;
  Step failed_step_ = Step::None;
};

// A UDP socket that never queues: datagrams are received into a buffer its owner provides
// (no allocation per datagram) and sent with try_send, which hands a datagram to the
// kernel now or fails. The socket is closed with the handle.
class Udp {
 public:
  // Called for every datagram, with its sender in `addr` (a datagram may be empty). Also
  // called with addr == nullptr and nread == 0 when there is nothing more to read, or at
  // the end of a recvmmsg batch (flags & UV_UDP_MMSG_FREE); with nread < 0 on an error.
  using RecvFn =
      std::function<void(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags)>;
  Udp() = default;
  ~Udp() { detail::close_slot(slot_); }
  Udp(Udp&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;

  // uv_udp_init_ex: `flags` is AF_INET, AF_INET6 or AF_UNSPEC (for open()), optionally
  // or'ed with UV_UDP_RECVMMSG. Returns 0 or a libuv error code, as do the others.
  int init(uv_loop_t* loop, unsigned flags);
  int bind(const sockaddr* addr, unsigned flags);
  // Adopts an open socket (socket activation); it is closed with the handle.
  int open(int fd);
  // Receives into [buf, buf+len), which must stay valid while receiving. With
  // UV_UDP_RECVMMSG libuv cuts it into 64 KiB chunks, one datagram each. `fn` may destroy
  // this Udp but must not call recv_start() again.
  int recv_start(char* buf, size_t len, RecvFn fn);
  void recv_stop();
  // Bytes sent, or UV_EAGAIN when the socket buffer is full, or another error.
  int try_send(const char* data, size_t len, const sockaddr* to);
  int fileno() const;
  bool valid() const { return slot_ != nullptr; }

 private:
  struct SlotT {
    uv_udp_t handle{};
    RecvFn fn;
    char* buf = nullptr;
    size_t len = 0;
    bool closed = false;
  };
  SlotT* slot_ = nullptr;
};

class TcpStream;

// A listening TCP socket.
class TcpServer {
 public:
  // Called once per incoming connection (status < 0 on an accept error); call accept().
  using ConnectionFn = std::function<void(int status)>;
  TcpServer() = default;
  ~TcpServer() { detail::close_slot(slot_); }
  TcpServer(TcpServer&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // `family` is AF_INET, AF_INET6 or AF_UNSPEC (for open()). Returns 0 or a libuv error.
  int init(uv_loop_t* loop, unsigned family);
  int bind(const sockaddr* addr, unsigned flags);
  // Adopts an open socket (socket activation); it is closed with the handle.
  int open(int fd);
  int listen(int backlog, ConnectionFn fn);
  // Accepts one pending connection into `client` (re-initialised on this loop).
  int accept(TcpStream& client);
  int fileno() const;

 private:
  using SlotT = detail::Slot<uv_tcp_t, ConnectionFn>;
  SlotT* slot_ = nullptr;
};

// A connected TCP stream with room for one write and one shutdown request in its slot:
// requests still pending at close complete with UV_ECANCELED before the close callback,
// and are then not delivered, since the owner is gone. Reads go into a buffer the owner
// provides.
class TcpStream {
 public:
  using ReadFn = std::function<void(ssize_t nread, const uv_buf_t* buf)>;
  using DoneFn = std::function<void(int status)>;
  TcpStream() = default;
  ~TcpStream() { reset(); }
  TcpStream(TcpStream&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  int init(uv_loop_t* loop);
  uv_stream_t* stream();
  // Reads into [buf, buf+len) until read_stop(); the buffer must stay valid meanwhile.
  int read_start(char* buf, size_t len, ReadFn fn);
  void read_stop();
  // Bytes written now (possibly fewer than `len`), UV_EAGAIN, or an error.
  int try_write(const char* data, size_t len);
  // Writes all of [data, data+len) (which must stay valid until `fn`); one at a time.
  int write(const char* data, size_t len, DoneFn fn);
  int shutdown(DoneFn fn);
  int fileno() const;
  bool valid() const { return slot_ != nullptr; }
  void reset();

 private:
  struct SlotT {
    uv_tcp_t handle{};
    uv_write_t write_req{};
    uv_shutdown_t shutdown_req{};
    ReadFn read_fn;
    DoneFn write_fn;
    DoneFn shutdown_fn;
    char* buf = nullptr;
    size_t len = 0;
    bool closed = false;
  };
  SlotT* slot_ = nullptr;
};

class PipeStream;

// A listening Unix stream socket (uv_pipe_t).
class PipeServer {
 public:
  // Called once per incoming connection (status < 0 on an accept error); call accept().
  using ConnectionFn = std::function<void(int status)>;
  PipeServer() = default;
  ~PipeServer() { detail::close_slot(slot_); }
  PipeServer(PipeServer&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  PipeServer(const PipeServer&) = delete;
  PipeServer& operator=(const PipeServer&) = delete;

  // Returns 0 or a libuv error code, as do the others.
  int init(uv_loop_t* loop);
  // Creates the socket file `path` (which must not exist).
  int bind(const std::string& path);
  int listen(int backlog, ConnectionFn fn);
  // Accepts one pending connection into `client` (re-initialised on this loop).
  int accept(PipeStream& client);
  bool valid() const { return slot_ != nullptr; }
  void reset() { detail::close_slot(std::exchange(slot_, nullptr)); }

 private:
  using SlotT = detail::Slot<uv_pipe_t, ConnectionFn>;
  SlotT* slot_ = nullptr;
};

// A connected Unix stream socket that owns both its buffers: reads land in a 64 KiB buffer
// of its own, and write() queues a copy, so it never fails for lack of room and the caller
// keeps nothing alive. unsent() is what the kernel has not taken yet: bound it, or a peer
// that does not read grows it forever.
class PipeStream {
 public:
  // nread > 0: data; nread < 0: UV_EOF or an error, of reading or of writing. The callback
  // may destroy this stream.
  using ReadFn = std::function<void(ssize_t nread, const char* data)>;
  // Everything written has been handed to the kernel.
  using DrainedFn = std::function<void()>;
  PipeStream() = default;
  ~PipeStream() { reset(); }
  PipeStream(PipeStream&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  PipeStream(const PipeStream&) = delete;
  PipeStream& operator=(const PipeStream&) = delete;

  int init(uv_loop_t* loop);
  uv_stream_t* stream();
  int read_start(ReadFn fn);
  void read_stop();
  // Queues `data`; returns 0 or a libuv error (the connection is then broken).
  int write(std::string data);
  // Calls `fn` once, when unsent() drops to 0. Returns false, keeping no `fn`, when it
  // already is 0.
  bool on_drained(DrainedFn fn);
  size_t unsent() const;
  bool valid() const { return slot_ != nullptr; }
  void reset();

 private:
  struct SlotT;
  SlotT* slot_ = nullptr;
};

// Runs `fn` on a later loop turn. Probes use it so that completion callbacks never run
// inside the call that started them or inside a library callback.
class Deferred {
 public:
  explicit Deferred(uv_loop_t* loop) : timer_(loop) {}
  void post(std::function<void()> fn) { timer_.start({}, std::move(fn)); }
  void cancel() { timer_.stop(); }

 private:
  Timer timer_;
};

// Runs `work` on a thread of its own, then `done` on the loop thread. For work that must
// not hold the loop up (reading and validating a large configuration): `work` may touch
// only what it owns or captured, never a loop object. Destroying the owner first drops
// `done`, and the loop does not wait for the thread: work that blocks (a configuration
// file on a hung mount, a FIFO nobody writes) cannot keep the daemon from stopping. Not
// libuv's thread pool for that reason: the loop waits for every queued uv_work_t.
class BackgroundWork {
 public:
  explicit BackgroundWork(uv_loop_t* loop) : loop_(loop) {}
  ~BackgroundWork() { abandon(); }
  BackgroundWork(const BackgroundWork&) = delete;
  BackgroundWork& operator=(const BackgroundWork&) = delete;

  // Returns 0, UV_EBUSY while an earlier work has not reached `done`, or an error (no
  // thread could be started).
  int start(std::function<void()> work, std::function<void()> done);
  bool active() const { return state_ != nullptr; }

 private:
  struct State;
  void finished();
  void abandon() noexcept;
  uv_loop_t* loop_;
  std::shared_ptr<State> state_;  // shared with the thread
};

// Monotonic time for measurements (not the loop's cached uv_now).
inline std::chrono::nanoseconds now() { return std::chrono::nanoseconds(uv_hrtime()); }

}  // namespace netmond::uv
