// DatagramSocket: a non-blocking datagram socket of our own, watched by the loop, with the
// kernel's error queue (IP_RECVERR / IPV6_RECVERR) turned on and drained.
//
// Why not uv_udp_t: probes need what it hides, the ICMP errors of the error queue (type,
// code, who sent them) and, later, control messages. And with IP_RECVERR on, an error
// queue nobody drains keeps epoll reporting POLLERR: a busy loop (RECIPES §2.4).
//
// A check may keep its socket from one run to the next (udp, udp_echo, ntp): socket(),
// connect() and the loop's watcher cost the kernel three times what one exchange does
// (docs/performance.md). Between runs idle() keeps the watcher reading and dropping
// whatever arrives, so a late reply never leaves the loop spinning on a readable socket;
// the next run sets its own callbacks (set_callbacks()) after discard_queued().
//
// Errors reach the error callback, one SocketError per entry, whether the loop saw them
// (libuv reports POLLERR as UV_EBADF and stops the watcher: this class drains the queue
// and watches again) or receive() ran into them. Either callback may close() or destroy
// the socket; the class touches nothing of itself after a callback that did.
#pragma once

#include "base/address.h"
#include "base/fd.h"
#include "base/socket_step.h"
#include "base/uv.h"

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace netmond {

// One error the kernel reported for a socket.
struct SocketError {
  int error = 0;            // errno: ECONNREFUSED, EHOSTUNREACH, ...
  std::uint8_t origin = 0;  // SO_EE_ORIGIN_*: NONE (a bare errno), LOCAL, ICMP or ICMP6
  int type = -1;            // ICMP type and code, when origin is ICMP or ICMP6
  int code = -1;
  std::optional<SockAddr> offender;  // the host that sent the ICMP error
  std::string payload;               // the start of the datagram that caused it, as sent

  bool icmp() const;
  // ICMP destination unreachable (v4 type 3, v6 type 1), any code.
  bool destination_unreachable() const;
  // ICMP port unreachable (v4 type 3 code 3, v6 type 1 code 4), or a bare ECONNREFUSED.
  bool port_unreachable() const;
  // What a destination unreachable's code says, in words: "host unreachable",
  // "administratively prohibited", ...
  std::string unreachable_text() const;
  // "ICMP type 3 code 1 from 10.0.0.1", "ICMPv6 type 1 code 3 from 2001:db8::1", or the
  // errno's text when there are no ICMP details.
  std::string describe() const;
};

class DatagramSocket {
 public:
  // The step of open() or connect() that failed, for messages ("cannot bind to ...").
  using Step = SocketStep;
  // Data is waiting: call receive() until it returns nullopt.
  using ReadableFn = std::function<void()>;
  using ErrorFn = std::function<void(const SocketError&)>;

  DatagramSocket() = default;
  ~DatagramSocket() { close(); }
  // Not movable: the loop's watcher points at this object.
  DatagramSocket(const DatagramSocket&) = delete;
  DatagramSocket& operator=(const DatagramSocket&) = delete;

  // Creates a non-blocking socket(family, type, protocol) with IP_RECVERR or IPV6_RECVERR,
  // bound to `device` (SO_BINDTODEVICE) and `bind_addr` when given, and watches it. The
  // callbacks run on the loop until close(). Returns 0 or a negative errno; on error the
  // socket is closed and failed_step() says where it failed.
  int open(uv_loop_t* loop, int family, const SockAddr* bind_addr, const std::string& device,
           ReadableFn on_readable, ErrorFn on_error, int type = SOCK_DGRAM, int protocol = 0);
  // Connects to `peer`: send() then goes there and only its datagrams are received.
  // Returns 0 or a negative errno (ENETUNREACH when there is no route).
  int connect(const SockAddr& peer);
  // Whether the socket is open and connect()ed to `peer` (same address and port).
  bool connected_to(const SockAddr& peer) const;
  // Replaces the callbacks.
  void set_callbacks(ReadableFn on_readable, ErrorFn on_error);
  // A new run on a kept socket: drops what is queued (discard_queued()), then takes the
  // run's callbacks, so the run hears only what follows its own request.
  void resume(ReadableFn on_readable, ErrorFn on_error);
  // Between runs: every datagram and error that arrives is read and dropped.
  void idle();
  // Reads and drops what is queued now (datagrams, 64 at most per call; queued errors; a
  // pending SO_ERROR) without calling back: a run that begins on a kept socket hears only
  // its own answers.
  void discard_queued();
  // Sends one datagram on the connected socket; the bytes sent or a negative errno.
  long send(const void* data, std::size_t size);
  // Reads one datagram into `buf` (cut to `size`); returns its full length. nullopt when
  // nothing is waiting, or when the read met an error: that went to the error callback.
  std::optional<std::size_t> receive(void* buf, std::size_t size, SockAddr* from = nullptr);
  // Stops watching and closes the socket. Safe when closed.
  void close();

  bool is_open() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  Step failed_step() const { return failed_step_; }

 private:
  void on_poll(int status);
  void watch();
  // Reports every queued error, then any bare SO_ERROR; false when a callback closed or
  // destroyed the socket. `reported` counts the errors passed on.
  bool drain_errors(int* reported);
  bool report(const SocketError& e);

  // The poll must be closed before the fd (uv.h): fd_ is declared first, destroyed last.
  Fd fd_;
  uv::Poll poll_;
  ReadableFn on_readable_;
  ErrorFn on_error_;
  Step failed_step_ = Step::None;
  std::optional<SockAddr> peer_;  // connect()ed to
  // Expires when the object is destroyed, so code after a callback can tell.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace netmond
