#include "raw_icmp_sockets.h"

#include "base/uv.h"

#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <utility>

namespace netmond {

namespace {

// The largest datagram an echo reply can be (the largest payload, ICMP and IPv4 headers);
// ICMP errors are smaller (576 bytes for IPv4, the minimum MTU 1280 for IPv6).
constexpr std::size_t kBuffer = icmp::kMaxPayload + icmp::kHeaderSize + 60 + 1;

int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

std::string source_text(const std::optional<SockAddr>& a) { return a ? a->ip() : std::string(); }

}  // namespace

bool RawIcmpSockets::Key::operator<(const Key& o) const {
  return std::tuple(family, source_text(source), device, ttl) <
         std::tuple(o.family, source_text(o.source), o.device, o.ttl);
}

// ---- One shared socket -------------------------------------------------------------------

class RawIcmpSockets::Socket : public std::enable_shared_from_this<Socket> {
 public:
  explicit Socket(int family) : family_(family), buffer_(kBuffer) {}

  int open(uv_loop_t* loop, const Key& key, DatagramSocket::Step* step);
  void add(Subscription* s) { subscribers_.emplace(s->id_, s); }
  void remove(Subscription* s);
  int fd() const { return socket_.fd(); }
  bool broken() const { return broken_; }
  void set_broken() { broken_ = true; }

 private:
  void on_readable();
  bool subscribed(std::uint16_t id, const Subscription* s) const;

  int family_;
  std::vector<char> buffer_;
  // Several checks share an identifier only when the identifiers ran out (IcmpId): each
  // then gets the datagrams of both and tells its own by the cookie.
  std::multimap<std::uint16_t, Subscription*> subscribers_;
  bool broken_ = false;
  DatagramSocket socket_;
};

int RawIcmpSockets::Socket::open(uv_loop_t* loop, const Key& key, DatagramSocket::Step* step) {
  const bool v6 = family_ == AF_INET6;
  const int protocol = v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  SockAddr local;
  if (key.source) local = *key.source, local.set_port(0);
  int rc = socket_.open(
      loop, family_, key.source ? &local : nullptr, key.device, [this] { on_readable(); },
      // The error queue is off (below): ICMP errors come as datagrams quoting the request.
      [](const SocketError&) {}, SOCK_RAW, protocol);
  if (rc != 0) {
    *step = socket_.failed_step();
    return rc;
  }
  const int fd = socket_.fd();
  // ICMP errors arrive as datagrams that quote our request. The error queue would add a
  // second copy of each, and a pending socket error that breaks the next read.
  rc = v6 ? set_int(fd, IPPROTO_IPV6, IPV6_RECVERR, 0) : set_int(fd, IPPROTO_IP, IP_RECVERR, 0);
  // Only echo replies and the errors that can quote an echo request get through.
  if (rc == 0 && !v6) {
    icmp_filter types{};
    types.data = ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) | (1u << ICMP_TIME_EXCEEDED) |
                   (1u << ICMP_PARAMETERPROB));
    if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &types, sizeof types) != 0) rc = -errno;
  }
  if (rc == 0 && v6) {
    icmp6_filter types;
    ICMP6_FILTER_SETBLOCKALL(&types);
    for (int t : {ICMP6_ECHO_REPLY, ICMP6_DST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED,
                  ICMP6_PARAM_PROB})
      ICMP6_FILTER_SETPASS(t, &types);
    if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &types, sizeof types) != 0) rc = -errno;
  }
  if (rc == 0) rc = set_icmp_socket_options(fd, family_, key.ttl);
  if (rc != 0) {
    *step = DatagramSocket::Step::Option;
    socket_.close();
    return rc;
  }
  // Every check's replies queue here, not in a socket of their own: room for thousands
  // (the default, ~208 KiB, holds a few hundred replies while the loop is busy, say during
  // a reload). SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN; without it the
  // kernel caps SO_RCVBUF there. Best effort: the default still works.
  constexpr int kReceiveBuffer = 4 << 20;
  if (set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, kReceiveBuffer) != 0)
    set_int(fd, SOL_SOCKET, SO_RCVBUF, kReceiveBuffer);
  return 0;
}

void RawIcmpSockets::Socket::remove(Subscription* s) {
  auto [begin, end] = subscribers_.equal_range(s->id_);
  for (auto it = begin; it != end; ++it) {
    if (it->second == s) {
      subscribers_.erase(it);
      return;
    }
  }
}

bool RawIcmpSockets::Socket::subscribed(std::uint16_t id, const Subscription* s) const {
  auto [begin, end] = subscribers_.equal_range(id);
  return std::any_of(begin, end, [s](const auto& e) { return e.second == s; });
}

void RawIcmpSockets::Socket::on_readable() {
  // A callback may end its run and destroy its check, the last owner of this socket: it
  // lives on until the batch is handled.
  std::shared_ptr<Socket> self = shared_from_this();
  const icmp::Framing framing = family_ == AF_INET6 ? icmp::Framing::Ipv6 : icmp::Framing::Ipv4Raw;
  std::vector<std::pair<std::uint16_t, Subscription*>> touched;
  std::vector<Subscription*> targets;
  IcmpDatagram d;
  // Until EAGAIN (with the error queue off, no other error is expected), or a batch: the
  // socket sees every echo reply of the host, and another program's ping flood must not
  // keep the loop here. The poll is level-triggered: the rest is read on the next turn.
  constexpr int kBatch = 256;
  for (int read = 0;
       read < kBatch && socket_.is_open() && next_icmp_datagram(socket_.fd(), buffer_, &d);
       ++read) {
    const icmp::Packet p = icmp::parse_packet(framing, d.bytes);
    if (p.kind != icmp::Packet::Kind::EchoReply && p.kind != icmp::Packet::Kind::Error) continue;
    targets.clear();
    auto [begin, end] = subscribers_.equal_range(p.id);
    for (auto it = begin; it != end; ++it) targets.push_back(it->second);
    for (Subscription* s : targets) {
      if (!subscribed(p.id, s)) continue;  // an earlier callback ended it
      if (!s->touched_) {  // listed once per batch; the flag dies with the subscription
        s->touched_ = true;
        touched.emplace_back(p.id, s);
      }
      DatagramFn fn = s->on_datagram_;  // it may destroy the subscription
      fn(d);
    }
  }
  for (auto [id, s] : touched) {
    if (!subscribed(id, s)) continue;
    s->touched_ = false;
    DrainedFn fn = s->on_drained_;
    fn();
  }
}

// ---- Subscriptions and the set of sockets ------------------------------------------------

RawIcmpSockets::Subscription::~Subscription() {
  if (socket_) socket_->remove(this);
}

long RawIcmpSockets::Subscription::send_to(const SockAddr& to, std::string_view message,
                                           icmp::SendTime* at) {
  const long n = send_icmp(socket_->fd(), to, message, at);
  if (n == -ENODEV || n == -ENXIO) socket_->set_broken();
  return n;
}

RawIcmpSockets::RawIcmpSockets(uv_loop_t* loop) : loop_(loop) {}

RawIcmpSockets::~RawIcmpSockets() = default;

std::unique_ptr<RawIcmpSockets::Subscription> RawIcmpSockets::subscribe(
    const Key& key, std::uint16_t id, DatagramFn on_datagram, DrainedFn on_drained, int* err,
    DatagramSocket::Step* step) {
  std::shared_ptr<Socket> socket = sockets_[key].lock();
  if (!socket || socket->broken()) {
    socket = std::make_shared<Socket>(key.family);
    if (int rc = socket->open(loop_, key, step); rc != 0) {
      sockets_.erase(key);
      *err = rc;
      return nullptr;
    }
    sockets_[key] = socket;
  }
  // Entries of sockets that closed since: forgotten.
  std::erase_if(sockets_, [](const auto& e) { return e.second.expired(); });
  std::unique_ptr<Subscription> s(new Subscription);
  s->socket_ = socket;
  s->id_ = id;
  s->on_datagram_ = std::move(on_datagram);
  s->on_drained_ = std::move(on_drained);
  socket->add(s.get());
  return s;
}

int RawIcmpSockets::ping_refusal(int family) const {
  return family == AF_INET6 ? ping_refusal_v6_ : ping_refusal_v4_;
}

void RawIcmpSockets::set_ping_refusal(int family, int err) {
  (family == AF_INET6 ? ping_refusal_v6_ : ping_refusal_v4_) = err;
}

std::size_t RawIcmpSockets::open_sockets() const {
  return static_cast<std::size_t>(std::count_if(sockets_.begin(), sockets_.end(),
                                                [](const auto& e) { return !e.second.expired(); }));
}

// ---- Options, sending and reading ---------------------------------------------------------

int set_icmp_socket_options(int fd, int family, unsigned ttl) {
  const bool v6 = family == AF_INET6;
  int rc = set_int(fd, SOL_SOCKET, SO_TIMESTAMPING, kIcmpReceiveStamps);
  if (rc == 0)
    rc = v6 ? set_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            : set_int(fd, IPPROTO_IP, IP_RECVTTL, 1);
  if (rc == 0 && ttl != 0) {
    const int hops = static_cast<int>(ttl);
    rc = v6 ? set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, hops)
            : set_int(fd, IPPROTO_IP, IP_TTL, hops);
  }
  return rc;
}

long send_icmp(int fd, const SockAddr& to, std::string_view message, icmp::SendTime* at) {
  SockAddr dest = to;
  dest.set_port(0);  // raw IPv6 sockets take a non-zero port for a protocol number
  ssize_t n;
  do {
    at->monotonic = uv::now();
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    at->realtime = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    n = ::sendto(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL, dest.get(),
                 dest.length);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : static_cast<long>(n);
}

bool next_icmp_datagram(int fd, std::span<char> buffer, IcmpDatagram* d) {
  alignas(cmsghdr) char control[256];
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  ssize_t n;
  do {
    *d = IcmpDatagram{};
    msg.msg_name = &d->from.storage;
    msg.msg_namelen = sizeof d->from.storage;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno != EINTR) return false;
    // Interrupted, or cut short: larger than any reply of ours can be, so not ours.
  } while (n < 0 || static_cast<std::size_t>(n) > buffer.size());
  d->at.monotonic = uv::now();
  d->from.length = msg.msg_namelen;
  d->bytes = std::string_view(buffer.data(), static_cast<std::size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING &&
        c->cmsg_len >= CMSG_LEN(sizeof(scm_timestamping))) {
      scm_timestamping stamps;
      std::memcpy(&stamps, CMSG_DATA(c), sizeof stamps);
      const timespec& ts = stamps.ts[0];  // software; [2] is the hardware stamp
      if (ts.tv_sec != 0 || ts.tv_nsec != 0)
        d->at.kernel = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
               c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int ttl;
      std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      d->ttl = ttl;
    }
  }
  return true;
}

}  // namespace netmond
