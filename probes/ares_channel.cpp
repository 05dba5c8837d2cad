#include "ares_channel.h"

#include "base/fd.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace netmond {

namespace {

void init_library_once() {
  static std::once_flag once;
  // ares_library_init is not thread-safe and must precede ares_set_servers* (it returns
  // ARES_ENOTINITIALIZED otherwise); it is never undone, the process keeps c-ares loaded.
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

// What identifies a server: family, address bytes, port, IPv6 scope id. Not the bytes of
// sockaddr_storage, whose padding and sin6_flowinfo say nothing about the server.
using ServerKey = std::tuple<int, std::string, std::uint16_t, std::uint32_t>;

ServerKey server_key(const SockAddr& a) {
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a.get());
    return {AF_INET, std::string(reinterpret_cast<const char*>(&in->sin_addr), sizeof in->sin_addr),
            a.port(), 0};
  }
  if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.get());
    return {AF_INET6,
            std::string(reinterpret_cast<const char*>(&in6->sin6_addr), sizeof in6->sin6_addr),
            a.port(), in6->sin6_scope_id};
  }
  return {a.family(), std::string(), 0, 0};
}

auto options_key(const AresChannelOptions& o) {
  std::vector<ServerKey> servers;
  servers.reserve(o.servers.size());
  for (const auto& s : o.servers) servers.push_back(server_key(s));
  return std::tuple(std::move(servers), o.timeout, o.tries, o.flags,
                    o.local ? server_key(*o.local) : ServerKey{}, o.device);
}

}  // namespace

bool operator==(const AresChannelOptions& a, const AresChannelOptions& b) {
  return options_key(a) == options_key(b);
}

bool operator<(const AresChannelOptions& a, const AresChannelOptions& b) {
  return options_key(a) < options_key(b);
}

// ---------------------------------------------------------------------------------------
// AresChannel

namespace {

// c-ares opens, reads and writes its sockets through these: AresChannel::open_socket, then
// exactly the calls c-ares makes itself.
const ares_socket_functions kSocketFunctions = {
    [](int family, int type, int protocol, void* self) noexcept -> ares_socket_t {
      return static_cast<AresChannel*>(self)->open_socket(family, type, protocol);
    },
    [](ares_socket_t fd, void*) noexcept { return ::close(fd); },
    [](ares_socket_t fd, const sockaddr* address, ares_socklen_t length, void*) noexcept {
      return ::connect(fd, address, length);
    },
    [](ares_socket_t fd, void* buffer, size_t size, int flags, sockaddr* from,
       ares_socklen_t* from_length, void*) noexcept -> ares_ssize_t {
      return ::recvfrom(fd, buffer, size, flags, from, from_length);
    },
    [](ares_socket_t fd, const iovec* parts, int count, void*) noexcept -> ares_ssize_t {
      return ::writev(fd, parts, count);
    },
};

}  // namespace

int AresChannel::open_socket(int family, int type, int protocol) {
  auto failed = [this](std::string what) {
    socket_error_ = std::move(what) + ": " + uv::error_text(-errno);
    return ARES_SOCKET_BAD;
  };
  Fd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
  if (!fd) return failed("cannot create a socket");
  int on = 1;
  if (type == SOCK_STREAM) setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (!device_.empty() && setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, device_.c_str(),
                                     static_cast<socklen_t>(device_.size())) != 0)
    return failed("cannot bind to interface '" + device_ + "'");
  if (local_ && local_->family() == family) {
    SockAddr local = *local_;
    local.set_port(0);
    if (::bind(fd.get(), local.get(), local.length) != 0)
      return failed("cannot bind to source address " + local.ip());
  }
  socket_error_.clear();
  return fd.release();
}

AresChannel::AresChannel(uv_loop_t* loop, const AresChannelOptions& options)
    : loop_(loop),
      timeout_timer_(loop),
      try_ms_(static_cast<std::uint64_t>(std::max<std::int64_t>(options.timeout.count(), 1))),
      grid_ms_(std::clamp<std::uint64_t>(try_ms_ / 16, 1, 10)),
      local_(options.local),
      device_(options.device) {
  init_library_once();
  ares_options opts{};
  opts.flags = options.flags;
  opts.timeout = static_cast<int>(options.timeout.count());
  opts.tries = options.tries < 1 ? 1 : options.tries;
  opts.sock_state_cb = [](void* data, ares_socket_t fd, int readable, int writable) noexcept {
    static_cast<AresChannel*>(data)->on_sock_state(fd, readable != 0, writable != 0);
  };
  opts.sock_state_cb_data = this;
  int rc = ares_init_options(
      &channel_, &opts,
      ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
  if (rc != ARES_SUCCESS) {
    channel_ = nullptr;
    error_ = std::string("resolver unavailable: ") + ares_strerror(rc);
    spdlog::error("{}", error_);
    return;
  }
  // The source address and interface are applied by open_socket(), not by c-ares.
  ares_set_socket_functions(channel_, &kSocketFunctions, this);
  if (options.servers.empty()) return;
  // Given as addresses rather than ares_set_servers_ports_csv: no string to build or parse.
  // The list must be set before any query is outstanding (c-ares answers ARES_ENOTIMP
  // otherwise), i.e. right after init.
  std::vector<ares_addr_port_node> nodes(options.servers.size());
  for (size_t i = 0; i < options.servers.size(); ++i) {
    const SockAddr& a = options.servers[i];
    auto& n = nodes[i];
    n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
    n.family = a.family();
    n.udp_port = n.tcp_port = a.port();
    if (a.family() == AF_INET) {
      std::memcpy(&n.addr.addr4, &reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr,
                  sizeof n.addr.addr4);
    } else if (a.family() == AF_INET6) {
      std::memcpy(&n.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_addr,
                  sizeof n.addr.addr6);
    } else {
      rc = ARES_EBADFAMILY;
      break;
    }
  }
  if (rc == ARES_SUCCESS) rc = ares_set_servers_ports(channel_, nodes.data());
  if (rc != ARES_SUCCESS) {
    error_ = std::string("cannot set DNS servers: ") + ares_strerror(rc);
    spdlog::error("{}", error_);
    // Never fall back to the system's servers: a channel without the servers asked for is
    // no channel. Nothing is outstanding and no socket is open yet.
    ares_destroy(channel_);
    channel_ = nullptr;
  }
}

AresChannel::~AresChannel() {
  // Outstanding queries call back with ARES_EDESTRUCTION (ignored, nobody is waiting any
  // more) and every socket is reported closed, emptying watches_, which is destroyed after
  // this body.
  if (channel_ != nullptr) ares_destroy(channel_);
}

ares_channel AresChannel::get() const { return channel_; }

void AresChannel::on_sock_state(ares_socket_t fd, bool readable, bool writable) {
  if (!readable && !writable) {
    // c-ares is about to close fd: stop watching it first (and this may be called from
    // within the poll callback of this very fd, which uv::Poll allows).
    watches_.erase(fd);
    return;
  }
  auto [it, inserted] = watches_.try_emplace(fd);
  Watch& w = it->second;
  if (inserted && w.poll.init(loop_, fd) != 0) {
    spdlog::warn("c-ares: cannot watch DNS socket {}", fd);
    watches_.erase(it);
    return;  // the query then ends by c-ares' own timeout
  }
  w.events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  watch(fd, w);
}

void AresChannel::watch(ares_socket_t fd, Watch& w) {
  w.poll.start(w.events, [this, fd](int status, int events) {
    if (status < 0) {
      // A pending socket error (libuv reports POLLERR as UV_EBADF and stops the watcher):
      // as Node does, let c-ares find it by trying to both read and write, then watch the
      // socket again if c-ares kept it.
      process(fd, fd);
      if (auto it = watches_.find(fd); it != watches_.end()) watch(fd, it->second);
      return;
    }
    process((events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
            (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
  });
}

void AresChannel::process(ares_socket_t read_fd, ares_socket_t write_fd) {
  ares_process_fd(channel_, read_fd, write_fd);
  after_submit();  // an answer may have made c-ares send again (another server, TCP)
}

void AresChannel::after_submit() {
  // uv_now may lag the clock (it is the turn's start): that only makes the timer early.
  std::uint64_t earliest_new = uv_now(loop_) + try_ms_;
  if (channel_ != nullptr && (!timeout_timer_.active() || earliest_new < timer_due_ms_))
    arm_timeout_timer(earliest_new);
}

void AresChannel::on_timeout_timer() {
  // Armed only by after_submit(), which needs a channel.
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    timeout_timer_.stop();  // nothing outstanding
    return;
  }
  // Rounded up to whole ms: firing before c-ares' time would only walk again for nothing.
  auto in_ms = static_cast<std::uint64_t>(tv.tv_sec) * 1000 +
               (static_cast<std::uint64_t>(tv.tv_usec) + 999) / 1000;
  uv_update_time(loop_);
  arm_timeout_timer(uv_now(loop_) + std::max(in_ms, grid_ms_));
}

void AresChannel::arm_timeout_timer(std::uint64_t due_ms) {
  timer_due_ms_ = due_ms;
  timeout_timer_.start_at(due_ms, [this] { on_timeout_timer(); });
}

// ---------------------------------------------------------------------------------------
// DnsChannels

namespace {

// Channels waiting for their destruction, and the loop turn that destroys them. Shared
// with every channel's deleter through a weak pointer: a channel released after its
// DnsChannels is gone (which the daemon's destruction order avoids) is destroyed at once.
struct Graveyard {
  explicit Graveyard(uv_loop_t* loop) : reaper(loop) {}

  void bury(AresChannel* channel) {
    // Adopted first, so the channel is destroyed even if post() throws.
    doomed.emplace_back(channel);
    reaper.post([this] { reap(); });
  }

  // Destroys every doomed channel. Their queries call back with ARES_EDESTRUCTION, and a
  // callback may drop another channel: it joins `doomed` and the loop takes it too.
  void reap() {
    while (!doomed.empty()) {
      std::vector<std::unique_ptr<AresChannel>> batch;
      batch.swap(doomed);
      batch.clear();
    }
  }

  std::vector<std::unique_ptr<AresChannel>> doomed;
  uv::Deferred reaper;
};

}  // namespace

struct DnsChannels::Impl {
  explicit Impl(uv_loop_t* l) : loop(l), graveyard(std::make_shared<Graveyard>(l)) {}

  void prune() {
    std::erase_if(channels, [](const auto& entry) { return entry.second.expired(); });
  }

  uv_loop_t* loop;
  std::map<AresChannelOptions, std::weak_ptr<AresChannel>> channels;
  std::shared_ptr<Graveyard> graveyard;
};

DnsChannels::DnsChannels(uv_loop_t* loop) : impl_(std::make_unique<Impl>(loop)) {}

DnsChannels::~DnsChannels() {
  // Channels released but not yet destroyed go now (their handles close; the loop must run
  // once more for the close callbacks), then the graveyard with its timer.
  impl_->graveyard->reap();
  impl_->graveyard.reset();
}

std::shared_ptr<AresChannel> DnsChannels::get(const AresChannelOptions& options) {
  auto it = impl_->channels.find(options);
  if (it != impl_->channels.end()) {
    if (auto live = it->second.lock()) return live;
  }
  impl_->prune();
  // The last holder may let go from inside a c-ares callback of this very channel, or while
  // ares_process_fd is running on it: ares_destroy there would pull the channel from under
  // c-ares. So the deleter never destroys, it hands the channel to a later loop turn.
  std::weak_ptr<Graveyard> graveyard = impl_->graveyard;
  std::shared_ptr<AresChannel> channel(new AresChannel(impl_->loop, options),
                                       [graveyard](AresChannel* c) {
                                         if (auto g = graveyard.lock())
                                           g->bury(c);
                                         else
                                           delete c;
                                       });
  impl_->channels.insert_or_assign(options, channel);
  return channel;
}

std::size_t DnsChannels::size() const {
  std::size_t live = 0;
  for (const auto& [options, channel] : impl_->channels) live += channel.expired() ? 0 : 1;
  return live + impl_->graveyard->doomed.size();
}

}  // namespace netmond
