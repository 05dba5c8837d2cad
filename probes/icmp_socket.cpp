#include "icmp_socket.h"

#include "base/uv.h"

#include <fmt/format.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <linux/icmp.h>
#include <linux/net_tstamp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

namespace netmond {

// ---- Identifiers -----------------------------------------------------------------------------

namespace {

struct IdPool {
  std::mutex mutex;
  std::vector<bool> used = std::vector<bool>(65536);
  std::mt19937 random{std::random_device{}()};

  std::uint16_t draw() {
    std::lock_guard lock(mutex);
    std::uniform_int_distribution<unsigned> pick(1, 65535);  // 0 asks a ping socket for any
    std::uint16_t id = 0;
    // With 65535 identifiers and a few hundred checks a free one comes within a few draws;
    // after many misses a shared one does no harm beyond wasted filtering (cookies still
    // tell the checks apart).
    for (int i = 0; i < 64; ++i) {
      id = static_cast<std::uint16_t>(pick(random));
      if (!used[id]) break;
    }
    used[id] = true;
    return id;
  }
  void release(std::uint16_t id) {
    std::lock_guard lock(mutex);
    used[id] = false;
  }
};

IdPool& id_pool() {
  static IdPool pool;
  return pool;
}

}  // namespace

IcmpId::IcmpId() : value_(id_pool().draw()) {}

IcmpId::~IcmpId() { id_pool().release(value_); }

void IcmpId::redraw() {
  const std::uint16_t old = value_;
  value_ = id_pool().draw();  // before releasing the old one, so it cannot come back
  id_pool().release(old);
}

// ---- Opening ---------------------------------------------------------------------------------

namespace {

constexpr std::size_t kIpv4MaxHeader = 60;
// Room for ICMP errors, which quote the request: up to 576 bytes in all for IPv4 and the
// minimum MTU, 1280, for IPv6.
constexpr std::size_t kErrorRoom = 1280;

bool permission(int err) { return err == EPERM || err == EACCES; }

std::string read_ping_group_range() {
  // Per network namespace: the file shows the namespace of the thread that opens it.
  std::ifstream in("/proc/sys/net/ipv4/ping_group_range");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.empty() ? "unknown" : text;
}

// The classic BPF program of a raw socket: passes an echo reply with `id`, or an ICMP
// error quoting an echo request with `id`, and nothing else. IPv4 programs see the IP header
// first, ICMPv6 programs the ICMPv6 header. Jump offsets count from the next instruction;
// a load beyond the packet's end rejects it.
std::vector<sock_filter> echo_filter(int family, std::uint16_t id) {
  if (family == AF_INET) {
    return {
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),                    // 0: X = IP header length
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),                     // 1: ICMP type
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, 0),              // 2: echo reply -> 7
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 5, 0),              // 3: unreachable -> 9
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 11, 4, 0),             // 4: time exceeded -> 9
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 12, 3, 0),             // 5: parameter problem -> 9
        BPF_STMT(BPF_RET | BPF_K, 0),                              // 6: anything else
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4),                     // 7: reply identifier
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 11, 12),           // 8: ours -> 20, else 21
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 8 + 9),                 // 9: quoted IP protocol
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMP, 0, 10),  // 10: ICMP, else 21
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 8),                     // 11: quoted IP version/IHL
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x0f),                 // 12
        BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2),                    // 13: quoted header length
        BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),                    // 14
        BPF_STMT(BPF_MISC | BPF_TAX, 0),                           // 15: X = both headers
        BPF_STMT(BPF_LD | BPF_B | BPF_IND, 8),                     // 16: quoted ICMP type
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 8, 0, 3),              // 17: echo request, else 21
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 8 + 4),                 // 18: quoted identifier
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),             // 19: ours -> 20, else 21
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),                     // 20: accept
        BPF_STMT(BPF_RET | BPF_K, 0),                              // 21: reject
    };
  }
  return {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                      // 0: ICMPv6 type
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 129, 5, 0),             // 1: echo reply -> 7
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 6, 0),               // 2: unreachable -> 9
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2, 5, 0),               // 3: packet too big -> 9
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 4, 0),               // 4: time exceeded -> 9
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 3, 0),               // 5: parameter problem -> 9
      BPF_STMT(BPF_RET | BPF_K, 0),                               // 6: anything else
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),                      // 7: reply identifier
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 6, 7),              // 8: ours -> 15, else 16
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + 6),                  // 9: quoted next header
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 5),  // 10: ICMPv6, else 16
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + 40),                 // 11: quoted ICMPv6 type
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 128, 0, 3),             // 12: echo request, else 16
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 8 + 40 + 4),             // 13: quoted identifier
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),              // 14: ours -> 15, else 16
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),                      // 15: accept
      BPF_STMT(BPF_RET | BPF_K, 0),                               // 16: reject
  };
}

SockAddr any_address(int family) { return *parse_ip(family == AF_INET6 ? "::" : "0.0.0.0"); }

int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

// Software receive stamps only. Unlike SO_TIMESTAMPNS, which stamps a packet at recvmsg()
// when it came in while stamping was off (a loop-latency RTT that looks like a kernel one),
// these are either the time the packet was received or absent.
constexpr int kReceiveStamps = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;

}  // namespace

std::shared_ptr<const void> hold_receive_timestamps() {
  static std::mutex mutex;
  static std::weak_ptr<const Fd> held;
  std::lock_guard lock(mutex);
  if (auto fd = held.lock()) return fd;
  auto fd = std::make_shared<const Fd>(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  // Without it the runs' own sockets still ask for stamps, only later.
  if (fd->valid()) set_int(fd->get(), SOL_SOCKET, SO_TIMESTAMPING, kReceiveStamps);
  held = fd;
  return fd;
}

std::string icmp_open_problem(int ping_errno, int raw_errno, unsigned gid,
                              std::string_view ping_group_range) {
  std::string range;
  std::istringstream words{std::string(ping_group_range)};
  for (std::string w; words >> w;) range += (range.empty() ? "" : " ") + w;
  std::string ping =
      ping_errno == EACCES
          ? fmt::format("ping sockets not allowed for gid {} (net.ipv4.ping_group_range = {})", gid,
                        range)
          : fmt::format("ping sockets unavailable ({})", uv::error_text(-ping_errno));
  std::string raw = permission(raw_errno)
                        ? "no CAP_NET_RAW for raw sockets"
                        : fmt::format("raw socket failed ({})", uv::error_text(-raw_errno));
  std::string m = "cannot open an ICMP socket: " + ping + " and " + raw;
  if (ping_errno == EACCES && permission(raw_errno))
    m += "; grant CAP_NET_RAW or widen ping_group_range";
  return m;
}

int IcmpSocket::fail(Step step, int err, std::string text) {
  failed_step_ = step;
  error_ = std::move(text);
  socket_.close();
  return err;
}

int IcmpSocket::open(uv_loop_t* loop, const Options& o, DatagramFn on_datagram,
                     DrainedFn on_drained, ErrorFn on_error) {
  close();
  family_ = o.family;
  failed_step_ = Step::None;
  error_.clear();
  on_datagram_ = std::move(on_datagram);
  on_drained_ = std::move(on_drained);
  on_error_ = std::move(on_error);
  const int protocol = family_ == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  auto readable = [this] { on_readable(); };
  auto error = [this](const SocketError& e) {
    ErrorFn fn = on_error_;  // it may close or destroy this socket
    if (fn) fn(e);
  };

  // A ping socket, bound to the identifier: the kernel then delivers only our replies.
  SockAddr local = o.source ? *o.source : any_address(family_);
  local.set_port(o.id);
  kind_ = Kind::Ping;
  int rc = socket_.open(loop, family_, &local, o.device, readable, error, SOCK_DGRAM, protocol);
  if (rc != 0 && socket_.failed_step() == DatagramSocket::Step::Socket &&
      (rc == -EACCES || rc == -EPERM || rc == -EPROTONOSUPPORT || rc == -EAFNOSUPPORT)) {
    const int ping_errno = -rc;
    kind_ = Kind::Raw;
    local.set_port(0);
    rc = socket_.open(loop, family_, o.source ? &local : nullptr, o.device, readable, error,
                      SOCK_RAW, protocol);
    if (rc != 0 && socket_.failed_step() == DatagramSocket::Step::Socket)
      return fail(Step::Socket, rc,
                  icmp_open_problem(ping_errno, -rc, static_cast<unsigned>(getegid()),
                                    read_ping_group_range()));
    if (rc == 0) rc = open_raw(loop, o);
    if (rc != 0 && failed_step_ != Step::None) return rc;
  }
  if (rc != 0) {
    const std::string why = uv::error_text(rc);
    switch (socket_.failed_step()) {
      case DatagramSocket::Step::Device:
        return fail(Step::Device, rc, "cannot bind to interface '" + o.device + "': " + why);
      case DatagramSocket::Step::Bind:
        return fail(Step::Bind, rc,
                    (o.source ? "cannot bind to source address " + o.source->ip()
                              : fmt::format("cannot bind to ICMP identifier {}", o.id)) +
                        ": " + why);
      case DatagramSocket::Step::Watch:
        return fail(Step::Watch, rc, "cannot watch the ICMP socket: " + why);
      default: return fail(Step::Socket, rc, "cannot open an ICMP socket: " + why);
    }
  }

  const int fd = socket_.fd();
  const bool v6 = family_ == AF_INET6;
  rc = set_int(fd, SOL_SOCKET, SO_TIMESTAMPING, kReceiveStamps);
  if (rc == 0)
    rc = v6 ? set_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            : set_int(fd, IPPROTO_IP, IP_RECVTTL, 1);
  if (rc == 0 && o.ttl != 0) {
    const int ttl = static_cast<int>(o.ttl);
    rc = v6 ? set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl)
            : set_int(fd, IPPROTO_IP, IP_TTL, ttl);
  }
  if (rc != 0)
    return fail(Step::Option, rc, "cannot set up the ICMP socket: " + uv::error_text(rc));
  buffer_.resize(std::max(o.payload + icmp::kHeaderSize + kIpv4MaxHeader, kErrorRoom) + 1);
  return 0;
}

int IcmpSocket::open_raw(uv_loop_t*, const Options& o) {
  const int fd = socket_.fd();
  const bool v6 = family_ == AF_INET6;
  // ICMP errors arrive as datagrams that quote our request, through the filter. The error
  // queue would add a second copy of each, for every raw ICMP socket of the host whose
  // addresses match, and a pending socket error that breaks the next read.
  int rc = v6 ? set_int(fd, IPPROTO_IPV6, IPV6_RECVERR, 0) : set_int(fd, IPPROTO_IP, IP_RECVERR, 0);
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
  if (rc == 0) {
    std::vector<sock_filter> program = echo_filter(family_, o.id);
    sock_fprog prog{static_cast<unsigned short>(program.size()), program.data()};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) rc = -errno;
  }
  if (rc != 0)
    return fail(Step::Option, rc, "cannot filter the raw ICMP socket: " + uv::error_text(rc));
  // What arrived before the filter was attached is anybody's: drop it.
  char scratch[1];
  while (::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  return 0;
}

icmp::Framing IcmpSocket::framing() const {
  if (family_ == AF_INET6) return icmp::Framing::Ipv6;
  return kind_ == Kind::Raw ? icmp::Framing::Ipv4Raw : icmp::Framing::Ipv4Dgram;
}

long IcmpSocket::send_to(const SockAddr& to, std::string_view message, icmp::SendTime* at) {
  SockAddr dest = to;
  dest.set_port(0);  // raw IPv6 sockets take a non-zero port for a protocol number
  ssize_t n;
  do {
    at->monotonic = uv::now();
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    at->realtime = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    n = ::sendto(socket_.fd(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 dest.get(), dest.length);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : static_cast<long>(n);
}

void IcmpSocket::close() { socket_.close(); }

void IcmpSocket::on_readable() {
  std::weak_ptr<char> alive = alive_;
  while (socket_.is_open()) {
    IcmpDatagram d;
    alignas(cmsghdr) char control[256];
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_name = &d.from.storage;
    msg.msg_namelen = sizeof d.from.storage;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(socket_.fd(), &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: all read. Anything else is a pending socket error, whose details wait on
      // the error queue: the watcher reports it next (POLLERR).
      break;
    }
    d.at.monotonic = uv::now();
    if (static_cast<std::size_t>(n) > buffer_.size()) continue;  // cut short: not ours
    d.from.length = msg.msg_namelen;
    d.bytes = std::string_view(buffer_.data(), static_cast<std::size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING &&
          c->cmsg_len >= CMSG_LEN(sizeof(scm_timestamping))) {
        scm_timestamping stamps;
        std::memcpy(&stamps, CMSG_DATA(c), sizeof stamps);
        const timespec& ts = stamps.ts[0];  // software; [2] is the hardware stamp
        if (ts.tv_sec != 0 || ts.tv_nsec != 0)
          d.at.kernel = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
      } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                  (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
                 c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int ttl;
        std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
        d.ttl = ttl;
      }
    }
    DatagramFn fn = on_datagram_;  // it may close or destroy this socket
    if (fn) fn(d);
    if (alive.expired()) return;
  }
  DrainedFn drained = on_drained_;
  if (socket_.is_open() && drained) drained();
}

}  // namespace netmond
