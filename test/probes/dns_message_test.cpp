// DNS wire format without I/O: the query netmond sends, and responses decoded into dig's
// presentation form, including hostile bytes (loops, overruns, lies about lengths).
#include "dns_message.h"

#include <catch2/catch.hpp>

#include <string>

using namespace netmond;

namespace {

// A response builder for the tests: header, one question, then records appended raw.
struct Wire {
  std::string w;
  void u8(unsigned v) { w += static_cast<char>(v); }
  void u16(unsigned v) {
    u8(v >> 8);
    u8(v & 0xFF);
  }
  void u32(unsigned v) {
    u16(v >> 16);
    u16(v & 0xFFFF);
  }
  void name(const std::string& dotted) {
    std::size_t start = 0;
    while (start < dotted.size()) {
      auto dot = dotted.find('.', start);
      if (dot == std::string::npos) dot = dotted.size();
      u8(static_cast<unsigned>(dot - start));
      w += dotted.substr(start, dot - start);
      start = dot + 1;
    }
    u8(0);
  }
  void header(unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns = 0,
              unsigned ar = 0) {
    u16(id);
    u16(flags);
    u16(qd);
    u16(an);
    u16(ns);
    u16(ar);
  }
  // A record whose owner is a pointer to the question name (offset 12).
  void record(unsigned type, unsigned ttl, const std::string& rdata) {
    u16(0xC00C);
    u16(type);
    u16(1);
    u32(ttl);
    u16(static_cast<unsigned>(rdata.size()));
    w += rdata;
  }
};

std::string bytes(std::initializer_list<unsigned> b) {
  std::string s;
  for (unsigned v : b) s += static_cast<char>(v);
  return s;
}

Wire response_for(const std::string& qname, unsigned qtype, unsigned an, unsigned flags = 0x8180) {
  Wire w;
  w.header(0x1234, flags, 1, an);
  w.name(qname);
  w.u16(qtype);
  w.u16(1);
  return w;
}

}  // namespace

TEST_CASE("dns: the query on the wire", "[dns]") {
  std::string q, error;
  DnsQueryOptions o;
  REQUIRE(encode_dns_query(0xBEEF, "google.com.", 15, o, &q, &error));
  Wire expect;
  expect.header(0xBEEF, 0x0100, 1, 0, 0, 1);  // RD, one question, one OPT
  expect.name("google.com");
  expect.u16(15);
  expect.u16(1);
  expect.u8(0);  // OPT: root owner, type 41, UDP size 1232, no flags, no options
  expect.u16(41);
  expect.u16(1232);
  expect.u32(0);
  expect.u16(0);
  CHECK(q == expect.w);

  o.recursion_desired = false;
  o.authentic_data = true;
  o.edns_udp_size = 0;
  REQUIRE(encode_dns_query(1, "example.com", 1, o, &q, &error));
  CHECK(q.substr(2, 2) == bytes({0x00, 0x20}));  // AD only
  CHECK(q.substr(10, 2) == bytes({0, 0}));       // no OPT

  CHECK_FALSE(encode_dns_query(1, std::string(64, 'a') + ".com", 1, o, &q, &error));
  CHECK(error.find("longer than 63") != std::string::npos);
  CHECK_FALSE(encode_dns_query(1, "a..b", 1, o, &q, &error));
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'x') + ".";
  CHECK_FALSE(encode_dns_query(1, long_name, 1, o, &q, &error));
  CHECK(error == "the name is longer than 255 bytes");
}

TEST_CASE("dns: every supported type in dig's presentation form", "[dns]") {
  Wire w = response_for("t.example", 1, 10);
  w.record(1, 300, bytes({142, 251, 46, 238}));
  w.record(28, 60, bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  Wire mx;
  mx.u16(10);
  mx.name("smtp.google.com");
  w.record(15, 300, mx.w);
  w.record(5, 300, bytes({0xC0, 0x0C}));  // CNAME pointing back at the question name
  w.record(16, 300, bytes({3, 'a', '"', 'b', 2, 'h', 'i'}));
  Wire srv;
  srv.u16(1);
  srv.u16(5);
  srv.u16(5060);
  srv.name("sip.t.example");
  w.record(33, 30, srv.w);
  Wire soa;
  soa.name("ns1.t.example");
  soa.name("hostmaster.t.example");
  for (unsigned v : {2024010101u, 7200u, 900u, 1209600u, 300u}) soa.u32(v);
  w.record(6, 3600, soa.w);
  Wire caa;
  caa.u8(0);
  caa.u8(5);
  caa.w += "issue";
  caa.w += "letsencrypt.org";
  w.record(257, 300, caa.w);
  w.record(12, 300, bytes({3, 'w', 'w', 'w', 0xC0, 0x0C}));  // PTR: www + pointer
  w.record(99, 300, bytes({0xAB, 0xCD}));                    // unknown type: RFC 3597

  DnsMessage m;
  std::string error;
  REQUIRE(parse_dns_message(w.w, &m, &error));
  CHECK(m.id == 0x1234);
  CHECK(m.qr);
  CHECK(m.rd);
  CHECK(m.ra);
  CHECK_FALSE(m.aa);
  CHECK(m.rcode == 0);
  CHECK(m.question_name == "t.example.");
  CHECK(m.question_type == 1);
  REQUIRE(m.answers.size() == 10);
  CHECK(m.answers[0].name == "t.example.");
  CHECK(m.answers[0].ttl == 300);
  CHECK(m.answers[0].data == "142.251.46.238");
  CHECK(m.answers[1].data == "2001:db8::1");
  CHECK(m.answers[2].data == "10 smtp.google.com.");
  CHECK(m.answers[3].data == "t.example.");
  CHECK(m.answers[4].data == R"("a\"b" "hi")");
  CHECK(m.answers[5].data == "1 5 5060 sip.t.example.");
  CHECK(m.answers[6].data ==
        "ns1.t.example. hostmaster.t.example. 2024010101 7200 900 1209600 300");
  CHECK(m.answers[7].data == R"(0 issue "letsencrypt.org")");
  CHECK(m.answers[8].data == "www.t.example.");
  CHECK(m.answers[9].data == "\\# 2 abcd");
  CHECK(rr_type_name(99) == "TYPE99");
}

TEST_CASE("dns: rcodes, flags and the EDNS extended rcode", "[dns]") {
  DnsMessage m;
  std::string error;
  Wire nx = response_for("nope.example", 1, 0, 0x8583);  // QR AA RD RA, NXDOMAIN
  REQUIRE(parse_dns_message(nx.w, &m, &error));
  CHECK(m.rcode == 3);
  CHECK(m.aa);
  CHECK(rcode_name(m.rcode) == "NXDOMAIN");
  CHECK(rcode_name(2) == "SERVFAIL");
  CHECK(rcode_name(5) == "REFUSED");
  CHECK(rcode_name(16) == "BADVERS");
  CHECK(rcode_from_name("servfail") == 2);
  CHECK_FALSE(rcode_from_name("nope"));

  Wire ext;
  ext.header(1, 0x8000, 1, 0, 0, 1);
  ext.name("x");
  ext.u16(1);
  ext.u16(1);
  ext.u8(0);
  ext.u16(41);
  ext.u16(1232);
  ext.u32(0x01000000);  // extended rcode 1 -> 16 (BADVERS)
  ext.u16(0);
  REQUIRE(parse_dns_message(ext.w, &m, &error));
  CHECK(m.rcode == 16);
  CHECK(m.additional.empty());  // the OPT is not a record
}

TEST_CASE("dns: hostile responses are errors, never reads out of bounds", "[dns]") {
  DnsMessage m;
  std::string error;
  CHECK_FALSE(parse_dns_message("short", &m, &error));
  CHECK(error == "5 bytes are too short for a DNS header");

  // A pointer to itself in the answer's owner name.
  Wire loop = response_for("x.example", 1, 1);
  const auto at = loop.w.size();
  loop.u16(0xC000 | static_cast<unsigned>(at));
  loop.u16(1);
  loop.u16(1);
  loop.u32(1);
  loop.u16(4);
  loop.u32(0);
  CHECK_FALSE(parse_dns_message(loop.w, &m, &error));
  CHECK(error == "compression loop at offset " + std::to_string(at));

  // Two pointers pointing at each other (a forward one is refused too).
  Wire pair;
  pair.header(1, 0x8000, 1, 0);
  pair.u16(0xC00E);  // offset 12 -> 14
  pair.u16(0xC00C);  // offset 14 -> 12
  pair.u16(1);
  pair.u16(1);
  CHECK_FALSE(parse_dns_message(pair.w, &m, &error));
  CHECK(error.starts_with("compression loop at offset"));

  // An A record that says it is 4 bytes long but the message ends.
  Wire cut = response_for("x.example", 1, 1);
  cut.u16(0xC00C);
  cut.u16(1);
  cut.u16(1);
  cut.u32(1);
  cut.u16(4);
  cut.u16(0x7F00);
  CHECK_FALSE(parse_dns_message(cut.w, &m, &error));
  CHECK(error.starts_with("truncated record data"));

  // An A record of 5 bytes; an MX whose name runs past its RDLENGTH.
  Wire a5 = response_for("x.example", 1, 1);
  a5.record(1, 1, bytes({1, 2, 3, 4, 5}));
  CHECK_FALSE(parse_dns_message(a5.w, &m, &error));
  CHECK(error.starts_with("A record of 5 bytes"));
  Wire mx = response_for("x.example", 15, 1);
  mx.record(15, 1, bytes({0, 10, 0xC0, 0x0C, 0}));
  CHECK_FALSE(parse_dns_message(mx.w, &m, &error));
  CHECK(error.find("does not match its content") != std::string::npos);

  // Counts that promise more records than there are bytes.
  Wire lie = response_for("x.example", 1, 3);
  lie.record(1, 1, bytes({1, 2, 3, 4}));
  CHECK_FALSE(parse_dns_message(lie.w, &m, &error));
  CHECK(error.starts_with("truncated"));

  // A label type that does not exist (0x40), a TXT string longer than its record.
  Wire label;
  label.header(1, 0x8000, 1, 0);
  label.u8(0x41);
  CHECK_FALSE(parse_dns_message(label.w, &m, &error));
  CHECK(error.starts_with("bad label type 0x41"));
  Wire txt = response_for("x.example", 16, 1);
  txt.record(16, 1, bytes({9, 'a'}));
  CHECK_FALSE(parse_dns_message(txt.w, &m, &error));
  CHECK(error.starts_with("TXT string overruns"));
}

// Found by fuzz/dns_answer_fuzz.cpp (its input is fuzz/corpus/dns_answer/caa-tag-control-bytes):
// a CAA tag went into the record's presentation form unescaped, so a server could put
// control bytes and bytes that are not UTF-8 into the check's message and the log line.
TEST_CASE("dns: a CAA tag that is not letters and digits is a malformed response", "[dns]") {
  DnsMessage m;
  std::string error;
  for (const std::string& tag :
       {std::string("is\x1b[31m"), std::string("iss\xff"), std::string("is sue"), std::string()}) {
    CAPTURE(tag);
    Wire w = response_for("x.example", 257, 1);
    w.record(257, 1, bytes({0, static_cast<unsigned>(tag.size())}) + tag + "ca.example");
    CHECK_FALSE(parse_dns_message(w.w, &m, &error));
    CHECK(error == "CAA tag is not letters and digits at offset 41");
  }
  Wire ok = response_for("x.example", 257, 1);
  ok.record(257, 1, bytes({128, 9}) + "issuewild" + ";");
  REQUIRE(parse_dns_message(ok.w, &m, &error));
  CHECK(m.answers[0].data == R"(128 issuewild ";")");
}

TEST_CASE("dns: PTR queries for IP addresses, names of types", "[dns]") {
  CHECK(reverse_name("192.0.2.1") == "1.2.0.192.in-addr.arpa");
  CHECK(reverse_name("2001:db8::1") ==
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  CHECK_FALSE(reverse_name("example.com"));
  CHECK(rr_type_from_name("aaaa") == RrType::AAAA);
  CHECK(rr_type_from_name("CAA") == RrType::CAA);
  CHECK_FALSE(rr_type_from_name("AXFR"));
  CHECK(rr_type_names().size() == 10);
}
