#include "source_filter.h"

#include "base/address.h"
#include "base/fd.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

namespace netmond {

namespace {

constexpr std::uint16_t kNfsPort = 2049;
constexpr std::uint16_t kFirstUnprivilegedPort = 1024;

std::uint16_t port_of(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
}

bool is_loopback(const IpAddr& a) {
  if (a.v4) return a.bytes[0] == 127;
  return a.bytes == std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
}

bool first_bytes_zero(const IpAddr& a, size_t n) {
  return std::all_of(a.bytes.begin(), a.bytes.begin() + static_cast<std::ptrdiff_t>(n),
                     [](std::uint8_t b) { return b == 0; });
}

bool is_bad_source(const IpAddr& a, const std::vector<std::uint32_t>& broadcasts) {
  if (a.v4) {
    std::uint32_t h = a.v4_host_order();
    std::uint8_t first = static_cast<std::uint8_t>(h >> 24);
    // 0/8 ("this network", including 0.0.0.0), 224/4 multicast, 255/8 (with the limited
    // broadcast 255.255.255.255), and the local networks' directed broadcasts.
    if (first == 0 || first == 255 || (first & 0xf0) == 224) return true;
    return std::find(broadcasts.begin(), broadcasts.end(), h) != broadcasts.end();
  }
  if (a.bytes[0] == 0xff) return true;  // multicast
  // ::/96 holds the unspecified address, ::1 and the deprecated IPv4-compatible ones.
  return first_bytes_zero(a, 12) && !is_loopback(a);
}

}  // namespace

std::optional<IpAddr> IpAddr::from(const sockaddr* sa) {
  IpAddr a;
  if (sa->sa_family == AF_INET) {
    a.v4 = true;
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return a;
  }
  if (sa->sa_family != AF_INET6) return std::nullopt;
  const auto& in6 = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&in6)) {
    a.v4 = true;
    std::memcpy(a.bytes.data(), in6.s6_addr + 12, 4);
  } else {
    std::memcpy(a.bytes.data(), in6.s6_addr, 16);
  }
  return a;
}

std::uint32_t IpAddr::v4_host_order() const {
  return std::uint32_t{bytes[0]} << 24 | std::uint32_t{bytes[1]} << 16 |
         std::uint32_t{bytes[2]} << 8 | bytes[3];
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  auto addr = IpAddr::from(ip->get());
  if (!addr) return std::nullopt;
  // An IPv4-mapped range ("::ffff:10.0.0.0/104") becomes the IPv4 range it maps.
  bool mapped = ip->family() == AF_INET6 && addr->v4;
  int max = addr->v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
      return std::nullopt;
    if (mapped) prefix -= 96;
    if (prefix < 0 || prefix > max) return std::nullopt;
  }
  Cidr c{*addr, prefix};
  for (int bit = prefix; bit < max; ++bit)
    c.base.bytes[static_cast<size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return c;
}

bool Cidr::contains(const IpAddr& a) const {
  if (a.v4 != base.v4) return false;
  int full = prefix / 8;
  if (!std::equal(base.bytes.begin(), base.bytes.begin() + full, a.bytes.begin())) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (a.bytes[static_cast<size_t>(full)] & mask) == base.bytes[static_cast<size_t>(full)];
}

ListenerScope scope_of(const sockaddr* bound) {
  auto a = IpAddr::from(bound);
  if (!a) return ListenerScope::NonLoopback;
  if (is_loopback(*a)) return ListenerScope::Loopback;
  if (first_bytes_zero(*a, a->v4 ? 4 : 16)) return ListenerScope::Wildcard;
  return ListenerScope::NonLoopback;
}

Verdict SourceFilter::check(const sockaddr* source, ListenerScope scope) const {
  auto a = IpAddr::from(source);
  if (!a || is_bad_source(*a, broadcasts_)) return Verdict::BadSource;
  if (scope == ListenerScope::NonLoopback && is_loopback(*a)) return Verdict::SpoofedLoopback;
  std::uint16_t port = port_of(source);
  if (!allow_low_ports_ && (port < kFirstUnprivilegedPort || port == kNfsPort))
    return Verdict::LowPort;
  if (!allowed(source)) return Verdict::NotAllowed;
  return Verdict::Answer;
}

bool SourceFilter::allowed(const sockaddr* source) const {
  if (allow_.empty()) return true;
  auto a = IpAddr::from(source);
  return a &&
         std::any_of(allow_.begin(), allow_.end(), [&](const Cidr& c) { return c.contains(*a); });
}

std::vector<std::uint32_t> local_broadcasts() {
  std::vector<std::uint32_t> out;
  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return out;
  // Bounded: more interfaces than this only means some broadcasts are not known.
  std::vector<ifreq> reqs(256);
  ifconf conf{};
  conf.ifc_len = static_cast<int>(reqs.size() * sizeof(ifreq));
  conf.ifc_req = reqs.data();
  if (ioctl(sock.get(), SIOCGIFCONF, &conf) != 0) return out;
  size_t n = static_cast<size_t>(conf.ifc_len) / sizeof(ifreq);
  for (size_t i = 0; i < n; ++i) {
    ifreq r = reqs[i];
    if (ioctl(sock.get(), SIOCGIFFLAGS, &r) != 0 || !(r.ifr_flags & IFF_BROADCAST)) continue;
    r = reqs[i];
    if (ioctl(sock.get(), SIOCGIFBRDADDR, &r) != 0) continue;
    auto* sin = reinterpret_cast<const sockaddr_in*>(&r.ifr_broadaddr);
    std::uint32_t b = ntohl(sin->sin_addr.s_addr);
    if (b != 0 && std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  }
  return out;
}

}  // namespace netmond
