// DNS messages (RFC 1035) as the dns probe needs them: a query to send, and a response
// decoded into its header, question and records, each record in dig's presentation form.
// Pure functions, no I/O: tested against hand-made and hostile bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netmond {

// Record types the dns probe knows by name.
enum class RrType : std::uint16_t {
  A = 1,
  NS = 2,
  CNAME = 5,
  SOA = 6,
  PTR = 12,
  MX = 15,
  TXT = 16,
  AAAA = 28,
  SRV = 33,
  OPT = 41,
  CAA = 257,
};

// "A", "aaaa", ... -> the type; nullopt for names the probe does not support.
std::optional<RrType> rr_type_from_name(std::string_view name);
// "A", "MX", ...; "TYPE65" for others (RFC 3597).
std::string rr_type_name(std::uint16_t type);
// Every supported name, for errors and "did you mean".
std::vector<std::string_view> rr_type_names();

// "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", ... "RCODE11".
std::string rcode_name(int rcode);
// The inverse, for expect_rcode; nullopt when unknown.
std::optional<int> rcode_from_name(std::string_view name);

// "192.0.2.1" -> "1.2.0.192.in-addr.arpa"; an IPv6 literal -> its ip6.arpa name; nullopt
// when `ip` is not an IP literal.
std::optional<std::string> reverse_name(std::string_view ip);

struct DnsQueryOptions {
  bool recursion_desired = true;       // RD
  bool authentic_data = false;         // AD in the query: ask a validating resolver for AD
  std::uint16_t edns_udp_size = 1232;  // 0: no EDNS(0) OPT record
};

// The wire form of a query for `name` (presentation form, trailing dot optional) and `type`;
// false with *error for a name that cannot be encoded (label over 63, name over 255 bytes).
bool encode_dns_query(std::uint16_t id, std::string_view name, std::uint16_t type,
                      const DnsQueryOptions& options, std::string* out, std::string* error);

struct DnsRecord {
  std::string name;  // owner, presentation form with trailing dot: "google.com."
  std::uint16_t type = 0;
  std::uint16_t klass = 1;
  std::uint32_t ttl = 0;
  std::string data;  // dig's presentation form: "142.251.46.238", "10 smtp.google.com."
};

struct DnsMessage {
  std::uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false, ra = false, ad = false, cd = false;
  int opcode = 0;
  int rcode = 0;              // with the EDNS extended bits when an OPT record is present
  std::string question_name;  // presentation form with trailing dot; "" when no question
  std::uint16_t question_type = 0;
  std::uint16_t question_class = 0;
  std::vector<DnsRecord> answers, authority, additional;  // additional: without the OPT
};

// Decodes `wire`; false with *error ("compression loop at offset 12", "truncated record at
// offset 40", ...) for anything malformed. Every offset and length is checked: hostile
// input gives an error, never a read out of bounds.
bool parse_dns_message(std::string_view wire, DnsMessage* out, std::string* error);

}  // namespace netmond
