// DNS answer handling and presentation (probes/dns_message.h, probes/dns.cpp): the dns
// probe decodes every response c-ares hands it with parse_dns_message, which walks the
// header, question and records (compression pointers included) and writes each record's
// data in dig's presentation form; the probe then judges the records and puts them in its
// result, its log line and the control socket's JSON. The bytes are the DNS server's.
//
// Properties: every name and record datum is printable ASCII (dig's escapes), as the
// result's JSON and the journal need; a decoded question name that encode_dns_query
// accepts encodes to a query that decodes to the same question.
#include "check.h"
#include "dns_message.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace netmond;
using netmond::fuzzing::check;

namespace {

bool printable(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  DnsMessage m;
  std::string error;
  if (!parse_dns_message(wire, &m, &error)) {
    check(!error.empty());
    return 0;
  }
  check(wire.size() >= 12);
  check(printable(m.question_name));
  (void)rcode_name(m.rcode);
  (void)rr_type_name(m.question_type);
  for (const auto* section : {&m.answers, &m.authority, &m.additional})
    for (const DnsRecord& r : *section) {
      check(!r.name.empty() && r.name.back() == '.' && printable(r.name));
      check(printable(r.data));
      (void)rr_type_name(r.type);
    }

  // The question round trip (escaped names are left out: the query encoder takes names as
  // configured, without dig's escapes).
  if (!m.question_name.empty() && m.question_name.find('\\') == std::string::npos) {
    std::string query, why;
    if (encode_dns_query(m.id, m.question_name, m.question_type, DnsQueryOptions{}, &query, &why)) {
      DnsMessage again;
      check(parse_dns_message(query, &again, &error));
      check(again.id == m.id && again.question_type == m.question_type);
      check(again.question_name == m.question_name);
    }
  }
  return 0;
}
