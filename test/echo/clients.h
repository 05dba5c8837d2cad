// Plain-socket clients for the echo server tests: a UDP socket bound where the test says
// (a low port, a second loopback address), and a TCP round trip run on its own thread
// while the test's loop serves. Loopback only.
#pragma once

#include "base/address.h"
#include "base/fd.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace netmond::test {

struct Datagram {
  std::string data;
  SockAddr from;
};

class UdpClient {
 public:
  // Bound to ip:port (port 0: any); check ok() (a port below 1024 needs root).
  explicit UdpClient(const std::string& ip, std::uint16_t port = 0) {
    auto a = parse_ip(ip, port);
    fd_.reset(socket(a->family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (a->family() == AF_INET6) {
      int on = 1;
      setsockopt(fd_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    }
    if (bind(fd_.get(), a->get(), a->length) != 0) {
      error_ = errno;
      fd_.reset();
    }
  }
  bool ok() const { return fd_.valid(); }
  int error() const { return error_; }
  int fd() const { return fd_.get(); }

  bool send(const SockAddr& to, std::string_view data) {
    return sendto(fd_.get(), data.data(), data.size(), 0, to.get(), to.length) ==
           static_cast<ssize_t>(data.size());
  }
  // Waits up to `limit` for a datagram (0: only what is already there).
  std::optional<Datagram> recv(std::chrono::milliseconds limit = std::chrono::milliseconds(0)) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(limit.count())) <= 0) return std::nullopt;
    Datagram d;
    d.data.resize(65536);
    d.from.length = sizeof d.from.storage;
    ssize_t n = recvfrom(fd_.get(), d.data.data(), d.data.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&d.from.storage), &d.from.length);
    if (n < 0) return std::nullopt;
    d.data.resize(static_cast<size_t>(n));
    return d;
  }

 private:
  Fd fd_;
  int error_ = 0;
};

// Connects to `to`, sends `data`, half-closes, and reads until EOF or `limit`, reading
// and writing at once (the server echoes while we send). What came back; nullopt if the
// connection failed.
inline std::optional<std::string> tcp_echo_roundtrip(
    const SockAddr& to, const std::string& data,
    std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  Fd fd(socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (connect(fd.get(), to.get(), to.length) != 0 && errno != EINPROGRESS) return std::nullopt;
  auto until = std::chrono::steady_clock::now() + limit;
  std::string got;
  size_t sent = 0;
  bool shut = false;
  char buf[65536];
  while (std::chrono::steady_clock::now() < until) {
    if (sent == data.size() && !shut) {
      if (shutdown(fd.get(), SHUT_WR) != 0) return std::nullopt;
      shut = true;
    }
    pollfd p{fd.get(), static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 100) < 0) return std::nullopt;
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN) return std::nullopt;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n == 0) return got;
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN) return got.empty() ? std::nullopt : std::optional(got);
    }
  }
  return got;
}

}  // namespace netmond::test
