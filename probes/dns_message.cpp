#include "dns_message.h"

#include "base/address.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace netmond {

namespace {

struct TypeName {
  RrType type;
  std::string_view name;
};

constexpr std::array kTypes = {
    TypeName{RrType::A, "A"},         TypeName{RrType::AAAA, "AAAA"}, TypeName{RrType::MX, "MX"},
    TypeName{RrType::CNAME, "CNAME"}, TypeName{RrType::NS, "NS"},     TypeName{RrType::TXT, "TXT"},
    TypeName{RrType::SOA, "SOA"},     TypeName{RrType::PTR, "PTR"},   TypeName{RrType::SRV, "SRV"},
    TypeName{RrType::CAA, "CAA"},
};

constexpr std::array<std::string_view, 11> kRcodes = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                      "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                                      "NXRRSET", "NOTAUTH", "NOTZONE"};

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Reads the wire bit by bit with every bound checked; the first failure is kept.
class Reader {
 public:
  explicit Reader(std::string_view wire) : wire_(wire) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t offset() const { return pos_; }
  std::size_t size() const { return wire_.size(); }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

  std::uint8_t u8() {
    if (!need(1, "byte")) return 0;
    return static_cast<std::uint8_t>(wire_[pos_++]);
  }
  std::uint16_t u16() {
    if (!need(2, "16-bit field")) return 0;
    auto v = static_cast<std::uint16_t>((static_cast<std::uint8_t>(wire_[pos_]) << 8) |
                                        static_cast<std::uint8_t>(wire_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t hi = u16();
    return (hi << 16) | u16();
  }
  std::string_view bytes(std::size_t n, const char* what) {
    if (!need(n, what)) return {};
    auto v = wire_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  void skip_to(std::size_t pos) { pos_ = pos; }

  // A domain name at the current position, following compression pointers; in
  // presentation form with a trailing dot ("." for the root).
  std::string name() {
    std::string out;
    std::size_t pos = pos_;
    std::size_t resume = 0;  // where reading continues after the first pointer
    bool jumped = false;
    std::size_t wire_length = 0;
    // Every pointer must go strictly backwards (RFC 1035 pointers point to a prior
    // occurrence), which bounds the walk and rules out loops.
    std::size_t limit = pos;
    for (;;) {
      if (pos >= wire_.size()) {
        fail(fmt::format("truncated name at offset {}", pos));
        return out;
      }
      const auto len = static_cast<std::uint8_t>(wire_[pos]);
      if ((len & 0xC0) == 0xC0) {
        if (pos + 1 >= wire_.size()) {
          fail(fmt::format("truncated compression pointer at offset {}", pos));
          return out;
        }
        const std::size_t target = ((len & 0x3F) << 8) | static_cast<std::uint8_t>(wire_[pos + 1]);
        if (target >= limit) {
          fail(fmt::format("compression loop at offset {}", pos));
          return out;
        }
        if (!jumped) resume = pos + 2;
        jumped = true;
        limit = target;
        pos = target;
        continue;
      }
      if ((len & 0xC0) != 0) {
        fail(fmt::format("bad label type 0x{:02x} at offset {}", len, pos));
        return out;
      }
      if (len == 0) {
        pos += 1;
        break;
      }
      if (pos + 1 + len > wire_.size()) {
        fail(fmt::format("truncated label at offset {}", pos));
        return out;
      }
      wire_length += len + 1;
      if (wire_length > 255) {
        fail(fmt::format("name longer than 255 bytes at offset {}", pos_));
        return out;
      }
      append_label(wire_.substr(pos + 1, len), &out);
      pos += 1 + len;
    }
    pos_ = jumped ? resume : pos;
    return out.empty() ? "." : out;
  }

 private:
  bool need(std::size_t n, const char* what) {
    if (!ok()) return false;
    if (pos_ + n > wire_.size()) {
      fail(fmt::format("truncated {} at offset {}", what, pos_));
      return false;
    }
    return true;
  }

  // dig escapes dots, backslashes, quotes and bytes outside printable ASCII in labels.
  static void append_label(std::string_view label, std::string* out) {
    for (char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
          c == '$')
        *out += fmt::format("\\{}", ch);
      else if (c < 0x21 || c > 0x7E)
        *out += fmt::format("\\{:03}", c);
      else
        *out += ch;
    }
    *out += '.';
  }

  std::string_view wire_;
  std::size_t pos_ = 0;
  std::string error_;
};

// A character-string (TXT, CAA value) as dig prints it: quoted, with escapes.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\')
      out += fmt::format("\\{}", ch);
    else if (c < 0x20 || c > 0x7E)
      out += fmt::format("\\{:03}", c);
    else
      out += ch;
  }
  return out + "\"";
}

// The record data in presentation form; `r` is positioned at the RDATA of `rdlength` bytes.
std::string rdata(Reader& r, std::uint16_t type, std::uint16_t rdlength) {
  const std::size_t start = r.offset();
  const std::size_t end = start + rdlength;
  if (end > r.size()) {
    r.fail(fmt::format("truncated record data at offset {}", start));
    return "";
  }
  std::string out;
  switch (static_cast<RrType>(type)) {
    case RrType::A: {
      if (rdlength != 4) {
        r.fail(fmt::format("A record of {} bytes at offset {}", rdlength, start));
        return "";
      }
      auto b = r.bytes(4, "A record");
      out = fmt::format("{}.{}.{}.{}", static_cast<std::uint8_t>(b[0]),
                        static_cast<std::uint8_t>(b[1]), static_cast<std::uint8_t>(b[2]),
                        static_cast<std::uint8_t>(b[3]));
      break;
    }
    case RrType::AAAA: {
      if (rdlength != 16) {
        r.fail(fmt::format("AAAA record of {} bytes at offset {}", rdlength, start));
        return "";
      }
      auto b = r.bytes(16, "AAAA record");
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(AF_INET6, b.data(), text, sizeof text);
      out = text;
      break;
    }
    case RrType::NS:
    case RrType::CNAME:
    case RrType::PTR: out = r.name(); break;
    case RrType::MX: {
      std::uint16_t pref = r.u16();
      out = fmt::format("{} {}", pref, r.name());
      break;
    }
    case RrType::SRV: {
      std::uint16_t prio = r.u16(), weight = r.u16(), port = r.u16();
      out = fmt::format("{} {} {} {}", prio, weight, port, r.name());
      break;
    }
    case RrType::SOA: {
      std::string mname = r.name();
      std::string rname = r.name();
      std::uint32_t serial = r.u32(), refresh = r.u32(), retry = r.u32(), expire = r.u32(),
                    minimum = r.u32();
      out = fmt::format("{} {} {} {} {} {} {}", mname, rname, serial, refresh, retry, expire,
                        minimum);
      break;
    }
    case RrType::TXT: {
      while (r.ok() && r.offset() < end) {
        std::uint8_t n = r.u8();
        if (r.offset() + n > end) {
          r.fail(fmt::format("TXT string overruns its record at offset {}", r.offset()));
          return "";
        }
        if (!out.empty()) out += ' ';
        out += quoted(r.bytes(n, "TXT string"));
      }
      break;
    }
    case RrType::CAA: {
      std::uint8_t flags = r.u8();
      std::uint8_t tag_len = r.u8();
      if (r.offset() + tag_len > end) {
        r.fail(fmt::format("CAA tag overruns its record at offset {}", r.offset()));
        return "";
      }
      const std::size_t tag_at = r.offset();
      std::string_view tag = r.bytes(tag_len, "CAA tag");
      // RFC 8659 §4.1: one or more ASCII letters and digits. Anything else is refused, as
      // BIND refuses it: printed as is, a tag would carry a server's control bytes into the
      // result's message and the log (found by fuzz/dns_answer_fuzz.cpp).
      if (r.ok() && (tag.empty() || !std::all_of(tag.begin(), tag.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) && (c & 0x80) == 0;
                     }))) {
        r.fail(fmt::format("CAA tag is not letters and digits at offset {}", tag_at));
        return "";
      }
      std::string_view value = r.bytes(end - std::min(end, r.offset()), "CAA value");
      out = fmt::format("{} {} {}", flags, tag, quoted(value));
      break;
    }
    default: {
      // RFC 3597's generic form: "\# 4 c0000201".
      auto b = r.bytes(rdlength, "record data");
      out = fmt::format("\\# {}", rdlength);
      if (rdlength > 0) out += ' ';
      for (char c : b) out += fmt::format("{:02x}", static_cast<std::uint8_t>(c));
      break;
    }
  }
  if (!r.ok()) return "";
  if (r.offset() != end) {
    r.fail(fmt::format("{} record data of {} bytes does not match its content at offset {}",
                       rr_type_name(type), rdlength, start));
    return "";
  }
  return out;
}

}  // namespace

std::optional<RrType> rr_type_from_name(std::string_view name) {
  const std::string u = upper(name);
  for (const auto& t : kTypes)
    if (t.name == u) return t.type;
  return std::nullopt;
}

std::string rr_type_name(std::uint16_t type) {
  for (const auto& t : kTypes)
    if (static_cast<std::uint16_t>(t.type) == type) return std::string(t.name);
  if (type == static_cast<std::uint16_t>(RrType::OPT)) return "OPT";
  return fmt::format("TYPE{}", type);
}

std::vector<std::string_view> rr_type_names() {
  std::vector<std::string_view> names;
  for (const auto& t : kTypes) names.push_back(t.name);
  return names;
}

std::string rcode_name(int rcode) {
  if (rcode >= 0 && static_cast<std::size_t>(rcode) < kRcodes.size())
    return std::string(kRcodes[static_cast<std::size_t>(rcode)]);
  if (rcode == 16) return "BADVERS";
  return fmt::format("RCODE{}", rcode);
}

std::optional<int> rcode_from_name(std::string_view name) {
  const std::string u = upper(name);
  for (std::size_t i = 0; i < kRcodes.size(); ++i)
    if (kRcodes[i] == u) return static_cast<int>(i);
  return std::nullopt;
}

std::optional<std::string> reverse_name(std::string_view ip) {
  auto a = parse_ip(ip);
  if (!a) return std::nullopt;
  std::string out;
  if (a->family() == AF_INET) {
    const auto* b = reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(a->get())->sin_addr);
    return fmt::format("{}.{}.{}.{}.in-addr.arpa", b[3], b[2], b[1], b[0]);
  }
  const auto* b = reinterpret_cast<const std::uint8_t*>(
      &reinterpret_cast<const sockaddr_in6*>(a->get())->sin6_addr);
  for (int i = 15; i >= 0; --i) out += fmt::format("{:x}.{:x}.", b[i] & 0xF, b[i] >> 4);
  return out + "ip6.arpa";
}

bool encode_dns_query(std::uint16_t id, std::string_view name, std::uint16_t type,
                      const DnsQueryOptions& options, std::string* out, std::string* error) {
  std::string w;
  auto u16 = [&w](std::uint16_t v) {
    w += static_cast<char>(v >> 8);
    w += static_cast<char>(v & 0xFF);
  };
  u16(id);
  std::uint16_t flags = 0;
  if (options.recursion_desired) flags |= 0x0100;
  if (options.authentic_data) flags |= 0x0020;
  u16(flags);
  u16(1);                                   // QDCOUNT
  u16(0);                                   // ANCOUNT
  u16(0);                                   // NSCOUNT
  u16(options.edns_udp_size != 0 ? 1 : 0);  // ARCOUNT
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::size_t total = 1;
  while (!name.empty()) {
    const auto dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty()) {
      *error = "empty label in the name";
      return false;
    }
    if (label.size() > 63) {
      *error = fmt::format("label '{}' is longer than 63 bytes", label);
      return false;
    }
    total += label.size() + 1;
    w += static_cast<char>(label.size());
    w += label;
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    if (dot != std::string_view::npos && name.empty()) {
      *error = "empty label in the name";
      return false;
    }
  }
  if (total > 255) {
    *error = "the name is longer than 255 bytes";
    return false;
  }
  w += '\0';
  u16(type);
  u16(1);  // IN
  if (options.edns_udp_size != 0) {
    // OPT pseudo-record (RFC 6891): root owner, UDP payload size, no flags, no options.
    w += '\0';
    u16(static_cast<std::uint16_t>(RrType::OPT));
    u16(options.edns_udp_size);
    u16(0);
    u16(0);
    u16(0);
  }
  *out = std::move(w);
  return true;
}

bool parse_dns_message(std::string_view wire, DnsMessage* out, std::string* error) {
  Reader r(wire);
  DnsMessage m;
  if (wire.size() < 12) {
    *error = fmt::format("{} bytes are too short for a DNS header", wire.size());
    return false;
  }
  m.id = r.u16();
  const std::uint16_t flags = r.u16();
  m.qr = flags & 0x8000;
  m.opcode = (flags >> 11) & 0xF;
  m.aa = flags & 0x0400;
  m.tc = flags & 0x0200;
  m.rd = flags & 0x0100;
  m.ra = flags & 0x0080;
  m.ad = flags & 0x0020;
  m.cd = flags & 0x0010;
  m.rcode = flags & 0xF;
  const std::uint16_t qd = r.u16(), an = r.u16(), ns = r.u16(), ar = r.u16();
  if (qd > 1) {
    *error = fmt::format("{} questions (expected at most 1)", qd);
    return false;
  }
  if (qd == 1) {
    m.question_name = r.name();
    m.question_type = r.u16();
    m.question_class = r.u16();
  }
  auto section = [&](std::uint16_t count, std::vector<DnsRecord>* records, bool additional) {
    for (std::uint16_t i = 0; i < count && r.ok(); ++i) {
      DnsRecord rec;
      rec.name = r.name();
      rec.type = r.u16();
      rec.klass = r.u16();
      rec.ttl = r.u32();
      const std::uint16_t rdlength = r.u16();
      if (!r.ok()) return;
      if (additional && rec.type == static_cast<std::uint16_t>(RrType::OPT)) {
        // EDNS: the class is the sender's UDP size, the TTL carries the rcode's high bits.
        m.rcode |= static_cast<int>((rec.ttl >> 24) & 0xFF) << 4;
        r.bytes(rdlength, "OPT record data");
        continue;
      }
      rec.data = rdata(r, rec.type, rdlength);
      if (r.ok()) records->push_back(std::move(rec));
    }
  };
  section(an, &m.answers, false);
  section(ns, &m.authority, false);
  section(ar, &m.additional, true);
  if (!r.ok()) {
    *error = r.error();
    return false;
  }
  *out = std::move(m);
  return true;
}

}  // namespace netmond
