#include "support/peers.h"

#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace netmond::test {

namespace {

SockAddr must_parse(const std::string& ip, std::uint16_t port = 0) {
  auto a = parse_ip(ip, port);
  if (!a) throw std::invalid_argument("not an IP literal: " + ip);
  return *a;
}

}  // namespace

Fd bound_socket(const std::string& ip, int type, std::uint16_t* port) {
  SockAddr a = must_parse(ip);
  Fd fd(::socket(a.family(), type | SOCK_CLOEXEC, 0));
  if (!fd || ::bind(fd.get(), a.get(), a.length) != 0)
    throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
  SockAddr local;
  local.length = sizeof local.storage;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
  *port = local.port();
  return fd;
}

TcpListener::TcpListener(const std::string& ip, int backlog) {
  fd_ = bound_socket(ip, SOCK_STREAM | SOCK_NONBLOCK, &port_);  // accept_peer never blocks
  if (::listen(fd_.get(), backlog) != 0)
    throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
}

std::optional<SockAddr> TcpListener::accept_peer() {
  SockAddr peer;
  peer.length = sizeof peer.storage;
  int c = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer.storage), &peer.length,
                    SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c < 0) return std::nullopt;
  ::close(c);
  return peer;
}

std::vector<Fd> fill_accept_queue(const TcpListener& l, const std::string& ip) {
  std::vector<Fd> clients;
  SockAddr to = must_parse(ip, l.port());
  for (int i = 0; i < 8; ++i) {
    Fd c(::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(c.get(), to.get(), to.length);
    pollfd p{c.get(), POLLOUT, 0};
    bool completed = ::poll(&p, 1, 300) == 1;
    clients.push_back(std::move(c));
    // This handshake never completed: the queue is full and SYNs are being dropped.
    if (!completed) return clients;
  }
  return {};
}

std::uint16_t closed_tcp_port(const std::string& ip) {
  std::uint16_t port = 0;
  bound_socket(ip, SOCK_STREAM, &port);  // closed again at once
  return port;
}

std::uint16_t closed_udp_port(const std::string& ip) {
  std::uint16_t port = 0;
  bound_socket(ip, SOCK_DGRAM, &port);
  return port;
}

UdpPeer::UdpPeer(uv_loop_t* loop, const std::string& ip, Respond respond)
    : respond_(std::move(respond)) {
  fd_ = bound_socket(ip, SOCK_DGRAM, &port_);
  poll_.init(loop, fd_.get());
  poll_.start(UV_READABLE, [this](int status, int) {
    if (status == 0) on_readable();
  });
}

namespace {

// The Internet checksum (RFC 1071) of `data`.
std::uint16_t inet_checksum(const std::string& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < data.size(); i += 2)
    sum += static_cast<std::uint32_t>(static_cast<unsigned char>(data[i]) << 8 |
                                      static_cast<unsigned char>(data[i + 1]));
  if (data.size() % 2 != 0)
    sum += static_cast<std::uint32_t>(static_cast<unsigned char>(data.back()) << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

void put16(std::string& s, std::size_t at, std::uint16_t v) {
  s[at] = static_cast<char>(v >> 8);
  s[at + 1] = static_cast<char>(v & 0xff);
}

}  // namespace

void send_icmp_port_unreachable(const SockAddr& prober, const SockAddr& server,
                                std::string_view quoted) {
  if (prober.family() != AF_INET || server.family() != AF_INET)
    throw std::invalid_argument("send_icmp_port_unreachable: IPv4 only");
  const auto& from = reinterpret_cast<const sockaddr_in&>(prober.storage);
  const auto& to = reinterpret_cast<const sockaddr_in&>(server.storage);
  // The datagram as it left the prober: IPv4 header, UDP header, payload.
  std::string ip(20, '\0');
  ip[0] = 0x45;  // version 4, 5 words of header
  put16(ip, 2, static_cast<std::uint16_t>(20 + 8 + quoted.size()));
  ip[8] = 64;  // TTL
  ip[9] = IPPROTO_UDP;
  std::memcpy(&ip[12], &from.sin_addr, 4);
  std::memcpy(&ip[16], &to.sin_addr, 4);
  put16(ip, 10, inet_checksum(ip));
  std::string udp(8, '\0');
  put16(udp, 0, prober.port());
  put16(udp, 2, server.port());
  put16(udp, 4, static_cast<std::uint16_t>(8 + quoted.size()));
  // The ICMP message: type 3 (destination unreachable), code 3 (port), the quote.
  std::string icmp(8, '\0');
  icmp[0] = 3;
  icmp[1] = 3;
  icmp += ip;
  icmp += udp;
  icmp.append(quoted);
  put16(icmp, 2, inet_checksum(icmp));
  Fd raw(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (!raw) throw std::runtime_error(std::string("raw ICMP socket: ") + std::strerror(errno));
  // From the server's address to the prober's: the kernel delivers it locally.
  sockaddr_in dest = from;
  dest.sin_port = 0;
  if (::sendto(raw.get(), icmp.data(), icmp.size(), 0, reinterpret_cast<sockaddr*>(&dest),
               sizeof dest) != static_cast<ssize_t>(icmp.size()))
    throw std::runtime_error(std::string("sending an ICMP error: ") + std::strerror(errno));
}

void UdpPeer::send(std::string_view payload, const SockAddr& to) const {
  ::sendto(fd_.get(), payload.data(), payload.size(), 0, to.get(), to.length);
}

void UdpPeer::on_readable() {
  for (;;) {
    char buf[2048];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return;
    ++received_;
    SockAddr sender;
    std::memcpy(&sender.storage, &from, sizeof from);
    sender.length = len;
    last_sender_ = sender;
    if (!respond_) continue;
    if (auto reply = respond_(std::string_view(buf, static_cast<size_t>(n))))
      ::sendto(fd_.get(), reply->data(), reply->size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

std::optional<std::string> nxdomain_reply(std::string_view query) {
  if (query.size() < 12) return std::nullopt;
  std::string r(query);
  // Header: keep the id and RD, set QR and RA, RCODE 3; one question, no records.
  r[2] = static_cast<char>(0x80 | (query[2] & 0x01));
  r[3] = static_cast<char>(0x80 | 0x03);
  r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
  // Drop anything after the question (an EDNS OPT record would be ARCOUNT, zeroed above).
  size_t pos = 12;
  while (pos < r.size() && r[pos] != 0) pos += 1 + static_cast<unsigned char>(r[pos]);
  pos += 1 + 4;  // the root label, QTYPE and QCLASS
  if (pos > r.size()) return std::nullopt;
  r.resize(pos);
  return r;
}

}  // namespace netmond::test
