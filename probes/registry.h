// The registry: the one list of probe types. Adding a type adds one alternative here.
#pragma once

#include "dns.h"
#include "http.h"
#include "icmp.h"
#include "ntp.h"
#include "params.h"
#include "probe.h"
#include "tcp.h"
#include "udp.h"
#include "udp_echo.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace netmond {

using ProbeSpec =
    std::variant<TcpSpec, UdpSpec, UdpEchoSpec, HttpSpec, HttpsSpec, DnsSpec, IcmpSpec, NtpSpec>;

enum class TypeKind { Implemented, Planned, Unknown };

struct TypeLookup {
  TypeKind kind = TypeKind::Unknown;
  std::string canonical;  // "icmp" for "ping", "udp_echo" for "echo"; lower-case
};

// Maps a configured type name (any case, aliases included) to its canonical name.
TypeLookup lookup_type(std::string_view configured);
// Every configured name the loader accepts, for "did you mean".
std::vector<std::string_view> known_type_names();

// Parses the type-specific keys of an Implemented type into `out`.
bool parse_spec(std::string_view canonical_type, Params& p, ProbeSpec* out);
std::string_view type_of(const ProbeSpec& spec);
std::string name_suffix(const ProbeSpec& spec);
std::string describe_target(const Endpoint& e, const ProbeSpec& spec);
// Why the server's `address` does not suit this spec ("" when it does), for types that read
// more from the address than its host (http takes a URL from it).
std::string address_problem(const std::string& address, const ProbeSpec& spec);
// The checks one configured service becomes: itself, or one per variant (dns: one per record
// type), each with the name part an explicitly named service appends ("" for none).
struct Expanded {
  ProbeSpec spec;
  std::string name_part;
};
std::vector<Expanded> expand(const ProbeSpec& spec);
// Whether the endpoint's ip_version changes what the check does (false for a dns check that
// asks the system's resolvers): ip_version both then makes one check, not two identical ones.
bool uses_ip_version(const Endpoint& e, const ProbeSpec& spec);
std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const ProbeSpec& spec);

}  // namespace netmond
