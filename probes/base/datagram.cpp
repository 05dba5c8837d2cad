#include "base/datagram.h"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace netmond {

namespace {
constexpr int kIcmpDestUnreach = 3;   // ICMP_DEST_UNREACH
constexpr int kIcmpPortUnreach = 3;   // ICMP_PORT_UNREACH
constexpr int kIcmp6DestUnreach = 1;  // ICMP6_DST_UNREACH
constexpr int kIcmp6PortUnreach = 4;  // ICMP6_DST_UNREACH_NOPORT
constexpr std::size_t kPayloadKept = 512;
constexpr int kDiscardedPerCall = 64;
}  // namespace

bool SocketError::icmp() const {
  return origin == SO_EE_ORIGIN_ICMP || origin == SO_EE_ORIGIN_ICMP6;
}

bool SocketError::destination_unreachable() const {
  return (origin == SO_EE_ORIGIN_ICMP && type == kIcmpDestUnreach) ||
         (origin == SO_EE_ORIGIN_ICMP6 && type == kIcmp6DestUnreach);
}

bool SocketError::port_unreachable() const {
  if (origin == SO_EE_ORIGIN_NONE) return error == ECONNREFUSED;
  return (origin == SO_EE_ORIGIN_ICMP && type == kIcmpDestUnreach && code == kIcmpPortUnreach) ||
         (origin == SO_EE_ORIGIN_ICMP6 && type == kIcmp6DestUnreach && code == kIcmp6PortUnreach);
}

std::string SocketError::unreachable_text() const {
  if (origin == SO_EE_ORIGIN_ICMP) {
    switch (code) {
      case 0: return "network unreachable";
      case 1: return "host unreachable";
      case 2: return "protocol unreachable";
      case 4: return "fragmentation needed";
      case 9:
      case 10:
      case 13: return "administratively prohibited";
      default: return "destination unreachable";
    }
  }
  switch (code) {  // ICMPv6 destination unreachable codes
    case 0: return "no route to destination";
    case 1: return "administratively prohibited";
    case 3: return "address unreachable";
    case 5:
    case 6: return "rejected by policy";
    default: return "destination unreachable";
  }
}

std::string SocketError::describe() const {
  if (!icmp()) return uv::error_text(-error);
  std::string s = origin == SO_EE_ORIGIN_ICMP ? "ICMP" : "ICMPv6";
  s += " type " + std::to_string(type) + " code " + std::to_string(code);
  if (offender) s += " from " + offender->ip();
  return s;
}

int DatagramSocket::open(uv_loop_t* loop, int family, const SockAddr* bind_addr,
                         const std::string& device, ReadableFn on_readable, ErrorFn on_error,
                         int type, int protocol) {
  close();
  auto fail = [this](Step step) {
    int err = -errno;
    failed_step_ = step;
    close();
    return err;
  };
  fd_.reset(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
  if (!fd_) return fail(Step::Socket);
  int on = 1;
  int rc = family == AF_INET6 ? setsockopt(fd_.get(), IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on)
                              : setsockopt(fd_.get(), IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  if (rc != 0) return fail(Step::Option);
  if (!device.empty() && setsockopt(fd_.get(), SOL_SOCKET, SO_BINDTODEVICE, device.c_str(),
                                    static_cast<socklen_t>(device.size())) != 0)
    return fail(Step::Device);
  if (bind_addr != nullptr && ::bind(fd_.get(), bind_addr->get(), bind_addr->length) != 0)
    return fail(Step::Bind);
  on_readable_ = std::move(on_readable);
  on_error_ = std::move(on_error);
  if (int err = poll_.init(loop, fd_.get()); err != 0) {
    failed_step_ = Step::Watch;
    close();
    return err;  // libuv errors are negative errno values on Unix
  }
  watch();
  failed_step_ = Step::None;
  return 0;
}

int DatagramSocket::connect(const SockAddr& peer) {
  peer_.reset();
  if (::connect(fd_.get(), peer.get(), peer.length) != 0) {
    failed_step_ = Step::Connect;
    return -errno;
  }
  peer_ = peer;
  return 0;
}

bool DatagramSocket::connected_to(const SockAddr& peer) const {
  return is_open() && peer_ && peer_->same_endpoint(peer);
}

void DatagramSocket::set_callbacks(ReadableFn on_readable, ErrorFn on_error) {
  on_readable_ = std::move(on_readable);
  on_error_ = std::move(on_error);
}

void DatagramSocket::resume(ReadableFn on_readable, ErrorFn on_error) {
  discard_queued();
  set_callbacks(std::move(on_readable), std::move(on_error));
}

void DatagramSocket::idle() {
  set_callbacks([this] { discard_queued(); }, nullptr);
}

void DatagramSocket::discard_queued() {
  if (!is_open()) return;
  char buf[64];  // datagrams are cut: only their removal from the queue matters
  // Bounded, so that neither a peer that never stops sending nor an error that reading the
  // queues does not clear can hold the loop here: what is left waits for the next turn.
  int datagrams = 0;
  for (int errors = 0; errors < 2 && datagrams < kDiscardedPerCall;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n >= 0) {
      ++datagrams;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    ++errors;
    // A pending error (recv returned and cleared it): its details wait on the error queue.
    while (::recv(fd_.get(), buf, sizeof buf, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0 || errno == EINTR) {
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  }
}

long DatagramSocket::send(const void* data, std::size_t size) {
  ssize_t n;
  do n = ::send(fd_.get(), data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : static_cast<long>(n);
}

std::optional<std::size_t> DatagramSocket::receive(void* buf, std::size_t size, SockAddr* from) {
  if (!is_open()) return std::nullopt;
  iovec iov{buf, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (from != nullptr) {
    *from = SockAddr{};
    msg.msg_name = &from->storage;
    msg.msg_namelen = sizeof from->storage;
  }
  ssize_t n;
  // MSG_TRUNC: the datagram's real length even when `buf` is smaller.
  do n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    if (from != nullptr) from->length = msg.msg_namelen;
    return static_cast<std::size_t>(n);
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
  // A pending error (ECONNREFUSED after a port unreachable): its details, if any, are on
  // the error queue.
  SocketError bare;
  bare.error = errno;
  int reported = 0;
  if (drain_errors(&reported) && reported == 0) report(bare);
  return std::nullopt;
}

void DatagramSocket::close() {
  poll_.reset();  // before the fd: libuv must stop watching a descriptor that still exists
  fd_.reset();
  peer_.reset();
}

void DatagramSocket::watch() {
  poll_.start(UV_READABLE, [this](int status, int) { on_poll(status); });
}

void DatagramSocket::on_poll(int status) {
  if (status < 0) {
    // POLLERR: libuv stopped the watcher. Drain the queue, then watch again.
    int reported = 0;
    if (drain_errors(&reported) && is_open()) watch();
    return;
  }
  ReadableFn fn = on_readable_;  // the callback may close or destroy this socket
  if (fn) fn();
}

bool DatagramSocket::report(const SocketError& e) {
  std::weak_ptr<char> alive = alive_;
  ErrorFn fn = on_error_;
  if (fn) fn(e);
  return !alive.expired() && is_open();
}

bool DatagramSocket::drain_errors(int* reported) {
  for (;;) {
    char payload[kPayloadKept];
    alignas(cmsghdr) char control[512];
    sockaddr_storage name{};
    iovec iov{payload, sizeof payload};
    msghdr msg{};
    msg.msg_name = &name;
    msg.msg_namelen = sizeof name;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: the queue is empty
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
      bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if ((!v4 && !v6) || c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) continue;
      sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      SocketError e;
      e.error = static_cast<int>(ee.ee_errno);
      e.origin = ee.ee_origin;
      if (e.icmp()) {
        e.type = ee.ee_type;
        e.code = ee.ee_code;
      }
      // The offender address follows the struct (SO_EE_OFFENDER); AF_UNSPEC when unknown.
      std::size_t room = c->cmsg_len - CMSG_LEN(sizeof ee);
      const unsigned char* off = CMSG_DATA(c) + sizeof ee;
      sockaddr_storage addr{};
      std::memcpy(&addr, off, std::min(room, sizeof addr));
      socklen_t len = addr.ss_family == AF_INET    ? sizeof(sockaddr_in)
                      : addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                   : 0;
      if (len != 0 && room >= len) {
        SockAddr a;
        std::memcpy(&a.storage, &addr, len);
        a.length = len;
        e.offender = a;
      }
      e.payload.assign(payload, std::min(static_cast<std::size_t>(n), sizeof payload));
      ++*reported;
      if (!report(e)) return false;
    }
  }
  // Reading the queue cleared the socket's pending error; without IP_RECVERR details
  // (none queued) SO_ERROR still holds it, and reading it clears it too.
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0 && *reported == 0) {
    SocketError e;
    e.error = err;
    ++*reported;
    return report(e);
  }
  return true;
}

}  // namespace netmond
