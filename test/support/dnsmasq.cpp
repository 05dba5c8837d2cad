#include "support/dnsmasq.h"

#include "base/address.h"
#include "base/fd.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace netmond::test {

namespace {

using namespace std::chrono_literals;

constexpr const char* kDnsmasq = "/usr/sbin/dnsmasq";
// Sends dnsmasq SIGTERM should the test process die without running ~Dnsmasq.
constexpr const char* kSetpriv = "/usr/bin/setpriv";
constexpr int kStartAttempts = 5;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string absolute(std::string_view name) {
  std::string out(name);
  if (out.empty() || out.back() != '.') out += '.';
  return out;
}

// A name in uncompressed wire form, as hex digits (for --dns-rr).
std::string name_hex(std::string_view name) {
  std::string out;
  char buf[3];
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(dot - start));
    out += buf;
    for (std::size_t i = start; i < dot; ++i) {
      std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(name[i]));
      out += buf;
    }
    start = dot + 1;
  }
  return out + "00";
}

std::string u32_hex(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// Binds UDP and TCP sockets on 127.0.0.1 (and ::1 when `v6`) to one port the kernel chose
// for the first, and returns it once all four are free; 0 when that failed. The sockets
// are closed again: dnsmasq binds its own, and start() retries should anyone take the port
// in between.
std::uint16_t free_port(bool v6) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::vector<Fd> held;
    std::uint16_t port = 0;
    bool ok = true;
    for (const char* ip : {"127.0.0.1", "::1"}) {
      if (!v6 && ip[0] == ':') continue;
      for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        auto addr = parse_ip(ip, port);
        Fd fd(::socket(addr->family(), type | SOCK_CLOEXEC, 0));
        int on = 1;
        if (fd && addr->family() == AF_INET6)
          ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        if (!fd || ::bind(fd.get(), addr->get(), addr->length) != 0) {
          ok = false;
          break;
        }
        if (port == 0) {
          SockAddr local;
          local.length = sizeof local.storage;
          ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
          port = local.port();
        }
        held.push_back(std::move(fd));
      }
      if (!ok) break;
    }
    if (ok) return port;
  }
  return 0;
}

bool have_ipv6_loopback() {
  auto addr = parse_ip("::1", 0);
  Fd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  return fd && ::bind(fd.get(), addr->get(), addr->length) == 0;
}

void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() < 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
}

}  // namespace

std::string dns_query_bytes(std::uint16_t id, std::string_view name, std::uint16_t type) {
  std::string q;
  put16(q, id);
  put16(q, 0x0100);  // RD
  put16(q, 1);       // QDCOUNT
  put16(q, 0);
  put16(q, 0);
  put16(q, 0);
  std::string_view rest = name;
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  while (!rest.empty()) {
    std::size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    q.push_back(static_cast<char>(label.size()));
    q.append(label);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
  }
  q.push_back('\0');
  put16(q, type);
  put16(q, 1);  // IN
  return q;
}

std::optional<std::string> udp_exchange(const std::string& ip, std::uint16_t port,
                                        std::string_view query, std::chrono::milliseconds limit) {
  auto to = parse_ip(ip, port);
  if (!to) throw std::invalid_argument("not an IP literal: " + ip);
  Fd fd(::socket(to->family(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd || ::connect(fd.get(), to->get(), to->length) != 0) return std::nullopt;
  if (::send(fd.get(), query.data(), query.size(), 0) != static_cast<ssize_t>(query.size()))
    return std::nullopt;
  auto until = std::chrono::steady_clock::now() + limit;
  if (!wait_fd(fd.get(), POLLIN, until)) return std::nullopt;
  char buf[65536];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

std::optional<std::string> tcp_exchange(const std::string& ip, std::uint16_t port,
                                        std::string_view query, std::chrono::milliseconds limit) {
  auto to = parse_ip(ip, port);
  if (!to) throw std::invalid_argument("not an IP literal: " + ip);
  auto until = std::chrono::steady_clock::now() + limit;
  Fd fd(::socket(to->family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return std::nullopt;
  if (::connect(fd.get(), to->get(), to->length) != 0) {
    if (errno != EINPROGRESS || !wait_fd(fd.get(), POLLOUT, until)) return std::nullopt;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return std::nullopt;
  }
  std::string framed;
  put16(framed, static_cast<std::uint16_t>(query.size()));
  framed.append(query);
  // A query is far below the socket buffer: one send takes it all.
  if (::send(fd.get(), framed.data(), framed.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(framed.size()))
    return std::nullopt;
  std::string in;
  char buf[65536];
  for (;;) {
    if (in.size() >= 2) {
      std::size_t want =
          (static_cast<unsigned char>(in[0]) << 8) | static_cast<unsigned char>(in[1]);
      if (in.size() >= 2 + want) return in.substr(2, want);
    }
    if (!wait_fd(fd.get(), POLLIN, until)) return std::nullopt;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    in.append(buf, static_cast<std::size_t>(n));
  }
}

Dnsmasq::Dnsmasq() {
  ipv6_ = have_ipv6_loopback();
  std::string why;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::uint16_t port = free_port(ipv6_);
    if (port == 0) throw std::runtime_error("dnsmasq fixture: no free loopback port");
    if (start(port, &why)) return;
    // Someone took the port between our check and dnsmasq's bind: try another one.
    if (why.find("Address already in use") == std::string::npos) break;
  }
  throw std::runtime_error(why);
}

bool Dnsmasq::start(std::uint16_t port, std::string* why) {
  port_ = port;
  records_.clear();
  std::vector<std::string> argv = {
      kDnsmasq,
      // Debug mode: stays attached, no pid file, no user change, and answers TCP in this
      // one process (no forked children to clean up). Logs go to stderr only.
      "--no-daemon",
      "--log-facility=-",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      "--no-poll",
      "--pid-file=",
      "--user=root",
      "--bind-interfaces",
      "--port=" + std::to_string(port),
      "--listen-address=127.0.0.1",
      // Unknown names in test. are NXDOMAIN, not forwarded (there is nowhere to forward).
      "--local=/test/",
      "--local-ttl=" + std::to_string(kTtl),
      "--auth-ttl=" + std::to_string(kAuthTtl),
  };
  if (ipv6_) argv.push_back("--listen-address=::1");

  auto record = [&](std::string_view name, std::string type, std::uint16_t code, std::string data,
                    std::uint32_t ttl = kTtl) {
    records_.push_back({absolute(name), std::move(type), code, ttl, std::move(data)});
  };
  auto host = [&](std::string_view name, std::string_view v4, std::string_view v6,
                  std::string_view reverse4) {
    std::string opt = "--host-record=" + std::string(name) + "," + std::string(v4);
    if (!v6.empty()) opt += "," + std::string(v6);
    argv.push_back(opt);
    record(name, "A", 1, std::string(v4));
    if (!v6.empty()) record(name, "AAAA", 28, std::string(v6));
    // --host-record also serves the reverse of its first address of each family.
    record(reverse4, "PTR", 12, absolute(name));
  };
  host(kHost, kHostIp, kHostIp6, kHostReverse);
  record("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR", 12,
         absolute(kHost));
  host("mx1.test", "192.0.2.25", "", "25.2.0.192.in-addr.arpa");
  host("mx2.test", "192.0.2.26", "", "26.2.0.192.in-addr.arpa");

  for (const char* ip : {"192.0.2.10", "192.0.2.11"}) {
    argv.push_back("--address=/" + std::string(kMulti) + "/" + ip);
    record(kMulti, "A", 1, ip);
  }
  argv.push_back("--mx-host=" + std::string(kMail) + ",mx1.test,10");
  record(kMail, "MX", 15, "10 mx1.test.");
  argv.push_back("--mx-host=" + std::string(kMail) + ",mx2.test,20");
  record(kMail, "MX", 15, "20 mx2.test.");
  argv.push_back("--cname=" + std::string(kAlias) + "," + std::string(kHost));
  record(kAlias, "CNAME", 5, absolute(kHost));
  // dnsmasq splits the value at commas into character-strings.
  argv.push_back("--txt-record=" + std::string(kText) + ",v=spf1 -all");
  record(kText, "TXT", 16, "\"v=spf1 -all\"");
  argv.push_back("--txt-record=" + std::string(kText) + ",hello,world");
  record(kText, "TXT", 16, "\"hello\" \"world\"");
  argv.push_back("--srv-host=" + std::string(kService) + ",sip.test,5060,10,60");
  record(kService, "SRV", 33, "10 60 5060 sip.test.");
  argv.push_back("--ptr-record=" + std::string(kPtr) + "," + std::string(kHost));
  record(kPtr, "PTR", 12, absolute(kHost));
  argv.push_back("--caa-record=" + std::string(kCaa) + ",0,issue,letsencrypt.org");
  record(kCaa, "CAA", 257, "0 issue \"letsencrypt.org\"");
  // NS and SOA at the apex as raw RDATA: dnsmasq makes them itself only in an auth zone,
  // which would also take AA off this zone's answers.
  for (const char* ns : {"ns1.test", "ns2.test"}) {
    argv.push_back("--dns-rr=" + std::string(kZone) + ",2," + name_hex(ns));
    record(kZone, "NS", 2, absolute(ns));
  }
  argv.push_back("--dns-rr=" + std::string(kZone) + ",6," + name_hex("ns1.test") +
                 name_hex("hostmaster.test") + u32_hex(2024010101) + u32_hex(3600) + u32_hex(600) +
                 u32_hex(86400) + u32_hex(300));
  record(kZone, "SOA", 6, "ns1.test. hostmaster.test. 2024010101 3600 600 86400 300");
  for (int i = 1; i <= kBigRecords; ++i) {
    std::string text = "record " + std::to_string(i) + " " + std::string(100, 'x');
    argv.push_back("--txt-record=" + std::string(kBig) + "," + text);
    record(kBig, "TXT", 16, "\"" + text + "\"");
  }
  // An auth zone's records, asked on the recursive port, come without AA.
  argv.push_back("--auth-server=ns1.test");
  argv.push_back("--auth-zone=plain.test");
  argv.push_back("--host-record=" + std::string(kNotAuthoritative) + ",192.0.2.50");
  record(kNotAuthoritative, "A", 1, "192.0.2.50", kAuthTtl);

  if (::access(kSetpriv, X_OK) == 0) argv.insert(argv.begin(), {kSetpriv, "--pdeathsig", "TERM"});
  child_ = std::make_unique<ChildProcess>(std::move(argv));

  auto until = std::chrono::steady_clock::now() + 10s;
  while (!answers()) {
    if (auto code = child_->wait(0ms)) {
      *why = "dnsmasq exited with " + std::to_string(*code) +
             (*code == 127 ? " (cannot run " + std::string(kDnsmasq) + ": package dnsmasq-base)"
                           : "") +
             "\ndnsmasq stderr:\n" + child_->err();
      child_.reset();
      return false;
    }
    if (std::chrono::steady_clock::now() >= until) {
      *why = "dnsmasq did not answer within 10 s\ndnsmasq stderr:\n" + child_->err();
      stop();
      return false;
    }
  }
  return true;
}

bool Dnsmasq::answers() const {
  static constexpr std::uint16_t kId = 0x6e6d;
  auto reply = udp_exchange("127.0.0.1", port_, dns_query_bytes(kId, kHost, 1), 100ms);
  // Our id, QR, NOERROR, at least one answer.
  return reply && reply->size() >= 12 && static_cast<unsigned char>((*reply)[0]) == (kId >> 8) &&
         static_cast<unsigned char>((*reply)[1]) == (kId & 0xff) && ((*reply)[2] & 0x80) != 0 &&
         ((*reply)[3] & 0x0f) == 0 && ((*reply)[6] != 0 || (*reply)[7] != 0);
}

Dnsmasq::~Dnsmasq() { stop(); }

void Dnsmasq::stop() {
  if (!child_) return;
  child_->signal(SIGTERM);
  child_->wait(5s);
  child_.reset();  // SIGKILLs and reaps it if it is still there
}

std::string Dnsmasq::server() const { return "127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> Dnsmasq::data(std::string_view name, std::string_view type) const {
  std::string want = lower(absolute(name));
  std::vector<std::string> out;
  for (const ZoneRecord& r : records_)
    if (lower(r.name) == want && lower(r.type) == lower(type)) out.push_back(r.data);
  return out;
}

pid_t Dnsmasq::pid() const { return child_ ? child_->pid() : -1; }

std::string Dnsmasq::log() const { return child_ ? child_->err() : std::string(); }

}  // namespace netmond::test
