// AresChannel: one c-ares channel driven by the libuv loop, the one piece of code through
// which netmond talks to c-ares (the Resolver's host lookups and the dns probe's queries).
//
// c-ares tells us which sockets to watch (ARES_OPT_SOCK_STATE_CB -> one uv::Poll per
// socket) and one uv::Timer wakes it for its timeouts; every event goes to ares_process_fd().
// c-ares 1.18's ares_timeout() walks every outstanding query, and so does each
// ares_process_fd() over the queries timing out in the current second: asking after every
// event made 2,000 dns checks against a silent server cost 60% of a core. So the timer is
// kept at or before c-ares' earliest timeout without asking: every timeout c-ares sets
// while we call it is at least one try's timeout from then (it only doubles it on later
// rounds), so after each call the timer is pulled in to now + one try if it was later.
// Only when it fires do we ask ares_timeout() for the true earliest, and re-arm for it, but
// not sooner than a small grid (1/16 of a try, 1..10 ms), so that timeouts close together
// are handled in one walk. c-ares reports a socket closed (fd, 0, 0) before it closes it, so the
// watcher is always closed first. A POLLERR (libuv: status < 0, watcher stopped) is handed
// to c-ares as readable and writable, as Node does, and the watcher re-armed if c-ares kept
// the socket.
//
// Rules for users: never destroy a channel, nor change its servers, from inside a c-ares
// callback (DnsChannels defers the destruction of unused channels to a later loop turn);
// call after_submit() after every ares_* call that queues a query, so the timer is armed.
#pragma once

#include "base/address.h"
#include "base/uv.h"

#include <ares.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace netmond {

struct AresChannelOptions {
  // Servers as addresses with their ports; empty = the system's (/etc/resolv.conf).
  std::vector<SockAddr> servers;
  std::chrono::milliseconds timeout{5000};  // per try (c-ares doubles it each round)
  int tries = 2;
  // ARES_FLAG_* (e.g. ARES_FLAG_USEVC, ARES_FLAG_IGNTC, ARES_FLAG_NOCHECKRESP). Queries that
  // carry their own EDNS(0) OPT (ares_send) need ARES_FLAG_EDNS too: without it c-ares 1.18.1
  // cuts every UDP answer to 512 bytes (with it, to its default EDNS size, 1280).
  int flags = 0;
  // Where queries leave from: the check's source_address and interface (c-ares binds every
  // socket of the channel to them). Unset / "" = the kernel chooses.
  std::optional<SockAddr> local;
  std::string device;
};
// Field by field; a server compares by family, address, port (and IPv6 scope id), never by
// the bytes of its sockaddr_storage. The order is DnsChannels' key; it means nothing else.
bool operator==(const AresChannelOptions& a, const AresChannelOptions& b);
bool operator<(const AresChannelOptions& a, const AresChannelOptions& b);

class AresChannel {
 public:
  AresChannel(uv_loop_t* loop, const AresChannelOptions& options);
  // Outstanding queries are called back with ARES_EDESTRUCTION (callers ignore it).
  ~AresChannel();
  AresChannel(const AresChannel&) = delete;
  AresChannel& operator=(const AresChannel&) = delete;

  // nullptr when the channel could not be created (then error() says why).
  ares_channel get() const;
  const std::string& error() const { return error_; }
  // Why the last socket c-ares asked this channel for could not be set up ("cannot create
  // a socket: too many open files", "cannot bind to interface 'eth9': ..."), "" when it
  // could. c-ares reports such a failure to the query as ECONNREFUSED, the same as a
  // refusal by the server: this tells the two apart.
  const std::string& socket_error() const { return socket_error_; }
  // c-ares' socket(), through ares_set_socket_functions: c-ares leaves a socket it did not
  // open itself alone, so this does what it would (non-blocking, close-on-exec,
  // TCP_NODELAY, the interface and source address of AresChannelOptions) and keeps why it
  // failed.
  int open_socket(int family, int type, int protocol);
  // Keeps the timeout timer at or before what c-ares may have set meanwhile (no walk).
  void after_submit();

 private:
  struct Watch {
    uv::Poll poll;
    int events = 0;
  };
  void on_sock_state(ares_socket_t fd, bool readable, bool writable);
  void watch(ares_socket_t fd, Watch& w);
  void process(ares_socket_t read_fd, ares_socket_t write_fd);
  void on_timeout_timer();
  void arm_timeout_timer(std::uint64_t due_ms);

  uv_loop_t* loop_;
  uv::Timer timeout_timer_;
  std::uint64_t timer_due_ms_ = 0;  // loop time the timer fires at, when active
  std::uint64_t try_ms_;            // one try's timeout (c-ares' shortest)
  std::uint64_t grid_ms_;           // the earliest a re-arm after firing may be
  std::string error_;
  std::string socket_error_;
  std::optional<SockAddr> local_;
  std::string device_;
  // ares_destroy reports every open socket closed, so the map outlives the channel.
  std::unordered_map<ares_socket_t, Watch> watches_;
  ares_channel channel_ = nullptr;
};

// The dns probes' channels, one per distinct (servers, timeout, tries, flags), shared by
// every check that asks the same way. A channel lives while a check holds it; when the last
// holder lets go, it is destroyed on a later loop turn (never inside a c-ares callback).
// Holders must let go before DnsChannels is destroyed (its destructor destroys the channels
// still waiting for their turn; one released after it is destroyed at once).
class DnsChannels {
 public:
  explicit DnsChannels(uv_loop_t* loop);
  ~DnsChannels();
  DnsChannels(const DnsChannels&) = delete;
  DnsChannels& operator=(const DnsChannels&) = delete;

  std::shared_ptr<AresChannel> get(const AresChannelOptions& options);
  std::size_t size() const;  // live channels, for tests

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netmond
