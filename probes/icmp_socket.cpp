#include "icmp_socket.h"

#include "base/uv.h"

#include <fmt/format.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

SockAddr any_address(int family) { return *parse_ip(family == AF_INET6 ? "::" : "0.0.0.0"); }

int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

}  // namespace

std::shared_ptr<const void> hold_receive_timestamps() {
  static std::mutex mutex;
  static std::weak_ptr<const Fd> held;
  std::lock_guard lock(mutex);
  if (auto fd = held.lock()) return fd;
  auto fd = std::make_shared<const Fd>(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  // Without it the runs' own sockets still ask for stamps, only later.
  if (fd->valid()) set_int(fd->get(), SOL_SOCKET, SO_TIMESTAMPING, kIcmpReceiveStamps);
  held = fd;
  return fd;
}

std::string icmp_open_problem(int ping_errno, int raw_errno, unsigned gid,
                              std::string_view ping_group_range) {
  // Out of descriptors, the one cause that matters (the permissions said nothing then:
  // reading ping_group_range failed too).
  for (int e : {raw_errno, ping_errno})
    if (e == EMFILE || e == ENFILE) return "cannot open an ICMP socket: " + uv::error_text(-e);
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

int IcmpSocket::open(uv_loop_t* loop, RawIcmpSockets& raw, const Options& o, DatagramFn on_datagram,
                     DrainedFn on_drained, ErrorFn on_error) {
  close();
  family_ = o.family;
  failed_step_ = Step::None;
  error_.clear();
  on_datagram_ = std::move(on_datagram);
  on_drained_ = std::move(on_drained);
  on_error_ = std::move(on_error);
  if (int refused = raw.ping_refusal(family_); refused != 0) return open_raw(raw, o, refused);
  const int rc = open_ping(loop, o);
  if (rc != 0 && failed_step_ == Step::Socket &&
      (rc == -EACCES || rc == -EPERM || rc == -EPROTONOSUPPORT || rc == -EAFNOSUPPORT)) {
    raw.set_ping_refusal(family_, -rc);
    return open_raw(raw, o, -rc);
  }
  return rc;
}

// A ping socket, bound to the identifier: the kernel then delivers only our replies.
int IcmpSocket::open_ping(uv_loop_t* loop, const Options& o) {
  kind_ = Kind::Ping;
  SockAddr local = o.source ? *o.source : any_address(family_);
  local.set_port(o.id);
  const int protocol = family_ == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  auto error = [this](const SocketError& e) {
    ErrorFn fn = on_error_;  // it may close or destroy this socket
    if (fn) fn(e);
  };
  int rc = socket_.open(
      loop, family_, &local, o.device, [this] { on_readable(); }, error, SOCK_DGRAM, protocol);
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
  rc = set_icmp_socket_options(socket_.fd(), family_, o.ttl);
  if (rc != 0)
    return fail(Step::Option, rc, "cannot set up the ICMP socket: " + uv::error_text(rc));
  buffer_.resize(std::max(o.payload + icmp::kHeaderSize + kIpv4MaxHeader, kErrorRoom) + 1);
  return 0;
}

// A place on the shared raw socket for the family and options (raw_icmp_sockets.h).
int IcmpSocket::open_raw(RawIcmpSockets& raw, const Options& o, int ping_errno) {
  kind_ = Kind::Raw;
  failed_step_ = Step::None;  // the ping socket's failure is not the answer
  error_.clear();
  RawIcmpSockets::Key key{family_, o.source, o.device, o.ttl};
  int rc = 0;
  DatagramSocket::Step step = DatagramSocket::Step::None;
  raw_ = raw.subscribe(
      key, o.id,
      [this](const IcmpDatagram& d) {
        DatagramFn fn = on_datagram_;  // it may close or destroy this socket
        if (fn) fn(d);
      },
      [this] {
        DrainedFn fn = on_drained_;
        if (fn) fn();
      },
      &rc, &step);
  if (raw_) return 0;
  const std::string why = uv::error_text(rc);
  switch (step) {
    case DatagramSocket::Step::Socket: {
      // Out of descriptors, reading ping_group_range would fail as well, and the message
      // does not need it.
      const bool out_of_descriptors =
          -rc == EMFILE || -rc == ENFILE || ping_errno == EMFILE || ping_errno == ENFILE;
      return fail(Step::Socket, rc,
                  icmp_open_problem(ping_errno, -rc, static_cast<unsigned>(getegid()),
                                    out_of_descriptors ? "" : read_ping_group_range()));
    }
    case DatagramSocket::Step::Device:
      return fail(Step::Device, rc, "cannot bind to interface '" + o.device + "': " + why);
    case DatagramSocket::Step::Bind:
      return fail(Step::Bind, rc,
                  "cannot bind to source address " + (o.source ? o.source->ip() : "") + ": " + why);
    case DatagramSocket::Step::Watch:
      return fail(Step::Watch, rc, "cannot watch the ICMP socket: " + why);
    default: return fail(Step::Option, rc, "cannot set up the raw ICMP socket: " + why);
  }
}

icmp::Framing IcmpSocket::framing() const {
  if (family_ == AF_INET6) return icmp::Framing::Ipv6;
  return kind_ == Kind::Raw ? icmp::Framing::Ipv4Raw : icmp::Framing::Ipv4Dgram;
}

long IcmpSocket::send_to(const SockAddr& to, std::string_view message, icmp::SendTime* at) {
  return raw_ ? raw_->send_to(to, message, at) : send_icmp(socket_.fd(), to, message, at);
}

void IcmpSocket::close() {
  socket_.close();
  if (raw_) raw_lease_ = raw_->lease();  // the shared socket stays for the next run
  raw_.reset();
}

void IcmpSocket::on_readable() {
  std::weak_ptr<char> alive = alive_;
  IcmpDatagram d;
  // Until EAGAIN, or a pending socket error, whose details wait on the error queue: the
  // watcher reports it next (POLLERR).
  while (socket_.is_open() && next_icmp_datagram(socket_.fd(), buffer_, &d)) {
    DatagramFn fn = on_datagram_;  // it may close or destroy this socket
    if (fn) fn(d);
    if (alive.expired()) return;
  }
  DrainedFn drained = on_drained_;
  if (socket_.is_open() && drained) drained();
}

}  // namespace netmond
