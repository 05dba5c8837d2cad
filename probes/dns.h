// dns: one DNS query per run, sent to a chosen server through a shared c-ares channel
// (DnsChannels), with the answer judged on its rcode, its flags and its records.
//
//   answers as expected             -> Ok, "A google.com: 142.251.46.238"
//   NXDOMAIN / SERVFAIL / REFUSED   -> Unexpected, "NXDOMAIN" (any rcode but expect_rcode)
//   NOERROR without answers         -> Unexpected, "no answer for google.com IN CNAME"
//   an answer expectation failed    -> Unexpected, "answer 1.2.3.4 did not match expect"
//   malformed response              -> BadResponse, "malformed response (compression loop
//                                      at offset 12)"
//   silence                         -> Timeout, "timeout after 5s (3 tries)"
//   refused / closed / unreachable  -> Refused, "no answer from 192.0.2.1:53: refused, ..."
// A UDP answer with TC set is asked again over TCP (protocol: udp); protocol: tcp always
// uses TCP.
#pragma once

#include "params.h"
#include "probe.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace netmond {

struct DnsSpec {
  static constexpr std::string_view kType = "dns";
  std::string server;  // IP or hostname; "" = the server's address if an IP literal,
                       // else the system's resolvers
  std::uint16_t port = 53;
  bool tcp = false;               // protocol: tcp
  std::string query;              // "" = the server's address if a hostname, else example.com
  std::uint16_t record_type = 1;  // one per check: record_types expands into several checks
  std::vector<std::uint16_t> record_types{1};  // as configured (for expansion only)
  int expect_rcode = 0;                        // NOERROR
  unsigned min_answers = 1;
  std::vector<std::string> expect;        // PCRE2 patterns, each must match an answer's data
  bool recursion = true;                  // RD
  std::vector<std::string> expect_flags;  // "AA", "AD", "RA", "RD"
  unsigned tries = 3;                     // c-ares tries within the timeout
  bool operator==(const DnsSpec&) const = default;
  std::string name_suffix() const;  // "dns/A"
  // What an explicitly named check gets appended per record type: "A" (name "x" -> "x/A").
  std::string expansion_name() const;
  // One spec per record type, each with record_type set (the config loader's expansion).
  std::vector<DnsSpec> expand() const;
  // Whether ip_version changes anything: it picks the family used to reach `server`; a
  // check that asks the system's resolvers has no server of its own to pick for.
  bool uses_ip_version(const Endpoint& e) const;
};

bool parse(Params& p, DnsSpec* out);
std::string describe_target(const Endpoint& e, const DnsSpec& s);  // "google.com A @8.8.8.8:53"
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const DnsSpec& s);

}  // namespace netmond
