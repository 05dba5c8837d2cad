#include "support/dns_fakes.h"

#include "base/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <csignal>
#include <deque>
#include <stdexcept>

namespace netmond::test {

namespace {

// RFC 1035 header bits, in the second 16-bit word.
constexpr std::uint16_t kQr = 0x8000;
constexpr std::uint16_t kAa = 0x0400;
constexpr std::uint16_t kTc = 0x0200;
constexpr std::uint16_t kRd = 0x0100;
constexpr std::uint16_t kRa = 0x0080;
constexpr std::uint16_t kAd = 0x0020;
constexpr std::size_t kHeader = 12;
// A TCP client sending more than this without a complete message is not a DNS client.
constexpr std::size_t kMaxTcpBuffer = 70000;

std::uint16_t get16(std::string_view s, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(s[at]) << 8) |
                                    static_cast<unsigned char>(s[at + 1]));
}

void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put32(std::string& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v & 0xffff));
}

// Decodes the header and first question of `q`; *question_end is the offset after its
// QCLASS. Compression is not expected in a query and refused.
bool decode(std::string_view q, FakeDnsQuery* out, std::size_t* question_end) {
  if (q.size() < kHeader) return false;
  out->id = get16(q, 0);
  out->rd = (get16(q, 2) & kRd) != 0;
  out->edns = get16(q, 10) > 0;
  if (get16(q, 4) == 0) return false;
  std::size_t pos = kHeader;
  std::string name;
  for (int labels = 0; labels < 128; ++labels) {
    if (pos >= q.size()) return false;
    auto len = static_cast<unsigned char>(q[pos]);
    if (len == 0) {
      ++pos;
      if (pos + 4 > q.size()) return false;
      out->name = std::move(name);
      out->type = get16(q, pos);
      *question_end = pos + 4;
      return true;
    }
    if (len > 63 || pos + 1 + len > q.size()) return false;
    if (!name.empty()) name += '.';
    name.append(q.substr(pos + 1, len));
    pos += 1 + len;
  }
  return false;
}

std::string encode_name(std::string_view name) {
  std::string out;
  while (!name.empty()) {
    std::size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    out.push_back(static_cast<char>(label.size()));
    out.append(label);
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  out.push_back('\0');
  return out;
}

std::string header(std::uint16_t id, std::uint16_t flags, std::uint16_t an) {
  std::string h;
  put16(h, id);
  put16(h, flags);
  put16(h, 1);  // QDCOUNT
  put16(h, an);
  put16(h, 0);
  put16(h, 0);
  return h;
}

// One record owned by the question's name (a pointer to offset 12).
void answer(std::string& out, std::uint16_t type, std::uint32_t ttl, std::string_view rdata) {
  put16(out, 0xc00c);
  put16(out, type);
  put16(out, 1);  // IN
  put32(out, ttl);
  put16(out, static_cast<std::uint16_t>(rdata.size()));
  out.append(rdata);
}

std::string address_bytes(int family, const std::string& text) {
  unsigned char buf[16];
  if (::inet_pton(family, text.c_str(), buf) != 1)
    throw std::invalid_argument("FakeDnsServer: not an address: " + text);
  return std::string(reinterpret_cast<char*>(buf), family == AF_INET ? 4 : 16);
}

// The records of `type` that Answer returns, as RDATA.
std::vector<std::string> rdatas(const FakeDnsOptions& o, std::uint16_t type) {
  std::vector<std::string> out;
  if (type == 1)
    for (const auto& a : o.a) out.push_back(address_bytes(AF_INET, a));
  if (type == 28)
    for (const auto& a : o.aaaa) out.push_back(address_bytes(AF_INET6, a));
  if (type == 16)
    for (const auto& t : o.txt) out.push_back(static_cast<char>(t.size()) + t);
  return out;
}

}  // namespace

struct FakeDnsServer::Connection {
  uv::TcpStream stream;
  char buf[16 * 1024];
  std::string in;               // received, not yet a complete message
  std::deque<std::string> out;  // front is being written while `writing`
  bool writing = false;
  bool open = true;
};

std::optional<std::string> FakeDnsServer::reply(const FakeDnsOptions& o, std::string_view query,
                                                bool tcp, FakeDnsQuery* decoded) {
  if (o.fault == DnsFault::Silent) return std::nullopt;
  if (o.fault == DnsFault::Noise) return std::string("this is not a DNS message");
  FakeDnsQuery q;
  std::size_t question_end = 0;
  bool ok = decode(query, &q, &question_end);
  if (decoded != nullptr) *decoded = q;
  if (!ok) return std::nullopt;

  std::uint16_t flags = kQr | kRa | (q.rd ? kRd : 0) | (o.aa ? kAa : 0) | (o.ad ? kAd : 0);
  std::uint16_t id = q.id;
  std::string question(query.substr(kHeader, question_end - kHeader));
  std::uint16_t rcode = 0;
  std::vector<std::string> records;
  switch (o.fault) {
    case DnsFault::Answer:
    case DnsFault::WrongId:
    case DnsFault::OtherQuestion: records = rdatas(o, q.type); break;
    case DnsFault::Truncated:
      if (tcp)
        records = rdatas(o, q.type);
      else
        flags |= kTc;
      break;
    case DnsFault::TruncatedPartial:
      records = rdatas(o, q.type);
      if (!tcp) flags |= kTc;
      break;
    case DnsFault::ServFail: rcode = 2; break;
    case DnsFault::NxDomain: rcode = 3; break;
    case DnsFault::Refused: rcode = 5; break;
    default: break;
  }
  if (o.fault == DnsFault::WrongId) id ^= 0x5555;
  if (o.fault == DnsFault::OtherQuestion) {
    question = encode_name(kFakeOtherName);
    put16(question, q.type);
    put16(question, 1);
  }

  if (o.fault == DnsFault::Garbage) {
    std::string r = header(id, flags, 1) + question;
    r.push_back(static_cast<char>(63));
    r += "truncated";
    return r;
  }
  if (o.fault == DnsFault::CompressionLoop) {
    std::string r = header(id, flags, 1) + question;
    // At `at`: the label "a", then a pointer to `at` again: a name that never ends.
    auto at = static_cast<std::uint16_t>(r.size());
    r += "\x01"
         "a";
    put16(r, static_cast<std::uint16_t>(0xc000 | at));
    put16(r, 1);
    put16(r, 1);
    put32(r, o.ttl);
    put16(r, 4);
    r += address_bytes(AF_INET, "192.0.2.1");
    return r;
  }
  std::string r = header(id, static_cast<std::uint16_t>(flags | rcode),
                         static_cast<std::uint16_t>(records.size())) +
                  question;
  const std::size_t records_start = r.size();
  for (const auto& rdata : records) answer(r, q.type, o.ttl, rdata);
  // Cut inside the first record's RDATA (its fixed part is 12 bytes with the pointer).
  if (o.fault == DnsFault::TruncatedPartial && !tcp && !records.empty())
    r.resize(records_start + 12 + records.front().size() / 2);
  return r;
}

FakeDnsServer::FakeDnsServer(uv_loop_t* loop, DnsFault fault)
    : FakeDnsServer(loop, FakeDnsOptions(fault)) {}

FakeDnsServer::FakeDnsServer(uv_loop_t* loop, FakeDnsOptions options)
    : options_(std::move(options)) {
  // libuv writes with write(2): answering a client that has left raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  int rc = 0;
  // UDP first on a port the kernel picks, then TCP on the same one; another port when
  // someone holds that one over TCP.
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto any = parse_ip("127.0.0.1", 0);
    rc = udp_.init(loop, AF_INET);
    if (rc == 0) rc = udp_.bind(any->get(), 0);
    if (rc != 0) break;
    SockAddr local;
    local.length = sizeof local.storage;
    ::getsockname(udp_.fileno(), reinterpret_cast<sockaddr*>(&local.storage), &local.length);
    port_ = local.port();
    auto same = parse_ip("127.0.0.1", port_);
    rc = tcp_.init(loop, AF_INET);
    if (rc == 0) rc = tcp_.bind(same->get(), 0);
    // libuv reports a bind error of a TCP handle at listen().
    if (rc == 0) rc = tcp_.listen(64, [this](int status) { on_connection(status); });
    if (rc != UV_EADDRINUSE) break;
  }
  if (rc == 0)
    rc = udp_.recv_start(udp_buf_, sizeof udp_buf_,
                         [this](ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                                unsigned) { on_datagram(nread, buf, addr); });
  if (rc != 0) throw std::runtime_error("FakeDnsServer: " + uv::error_text(rc));
}

FakeDnsServer::~FakeDnsServer() = default;  // handles close with their owners

std::string FakeDnsServer::server() const { return "127.0.0.1:" + std::to_string(port_); }

void FakeDnsServer::on_datagram(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr) {
  if (nread < 0 || addr == nullptr) return;
  ++udp_queries_;
  std::string_view query(buf->base, static_cast<std::size_t>(nread));
  FakeDnsQuery q;
  auto r = reply(options_, query, false, &q);
  q.tcp = false;
  if (!q.name.empty() || q.type != 0) queries_.push_back(q);
  // Loopback, small replies: the socket buffer has room; a lost reply is a lost datagram.
  if (r) udp_.try_send(r->data(), r->size(), addr);
}

void FakeDnsServer::on_connection(int status) {
  if (status < 0) return;
  auto owned = std::make_unique<Connection>();
  Connection& c = *owned;
  if (tcp_.accept(c.stream) != 0) return;
  connections_.push_back(std::move(owned));
  ++accepted_;
  int rc = c.stream.read_start(
      c.buf, sizeof c.buf, [this, &c](ssize_t nread, const uv_buf_t* b) { on_read(c, nread, b); });
  if (rc != 0) close(c);
}

void FakeDnsServer::on_read(Connection& c, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {  // EOF or reset: the client is gone
    close(c);
    return;
  }
  c.in.append(buf->base, static_cast<std::size_t>(nread));
  // Every complete message in the buffer (a client may send several); bounded by its size.
  while (c.open && c.in.size() >= 2) {
    std::size_t len = get16(c.in, 0);
    if (c.in.size() < 2 + len) break;
    std::string query = c.in.substr(2, len);
    c.in.erase(0, 2 + len);
    ++tcp_queries_;
    FakeDnsQuery q;
    auto r = reply(options_, query, true, &q);
    q.tcp = true;
    if (!q.name.empty() || q.type != 0) queries_.push_back(q);
    if (!r) continue;
    std::string framed;
    put16(framed, static_cast<std::uint16_t>(r->size()));
    c.out.push_back(framed + *r);
    write_next(c);
  }
  if (c.in.size() > kMaxTcpBuffer) close(c);
}

void FakeDnsServer::write_next(Connection& c) {
  if (!c.open || c.writing || c.out.empty()) return;
  c.writing = true;
  const std::string& data = c.out.front();
  int rc = c.stream.write(data.data(), data.size(), [this, &c](int status) {
    c.writing = false;
    if (status < 0) {  // EPIPE, ECONNRESET: the client left
      close(c);
      return;
    }
    c.out.pop_front();
    write_next(c);  // write callbacks run on a later loop turn: no recursion
  });
  if (rc != 0) close(c);
}

void FakeDnsServer::close(Connection& c) {
  if (!c.open) return;
  c.open = false;
  c.writing = false;
  c.out.clear();  // the pending write (if any) is dropped with the stream
  c.stream.reset();
}

}  // namespace netmond::test
