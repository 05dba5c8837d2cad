#include "registry.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace netmond {

namespace {

struct Alias {
  std::string_view name;
  std::string_view canonical;
};

// Other names of types: implemented when their canonical type is in ProbeSpec, otherwise
// planned, i.e. known to the loader but not implemented yet, and rejected with "not
// implemented yet", never silently skipped.
constexpr std::array kAliases = {
    Alias{"udp_echo_client", "udp_echo"},  // the seed's names for the echo check
    Alias{"echo", "udp_echo"},
    Alias{"icmp", "icmp"},
    Alias{"ping", "icmp"},
    Alias{"ntp", "ntp"},
};

template <typename Spec, typename... Rest>
bool parse_alternative(std::string_view type, Params& p, ProbeSpec* out) {
  if (type == Spec::kType) {
    Spec spec;
    bool ok = parse(p, &spec);
    *out = spec;
    return ok;
  }
  if constexpr (sizeof...(Rest) > 0) return parse_alternative<Rest...>(type, p, out);
  return false;
}

template <typename>
struct Alternatives;
template <typename... Specs>
struct Alternatives<std::variant<Specs...>> {
  static bool parse(std::string_view type, Params& p, ProbeSpec* out) {
    return parse_alternative<Specs...>(type, p, out);
  }
  static bool implemented(std::string_view type) { return ((type == Specs::kType) || ...); }
  static void names(std::vector<std::string_view>* out) { (out->push_back(Specs::kType), ...); }
};

}  // namespace

TypeLookup lookup_type(std::string_view configured) {
  std::string t(configured);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (Alternatives<ProbeSpec>::implemented(t)) return {TypeKind::Implemented, t};
  for (const auto& a : kAliases) {
    if (a.name != t) continue;
    TypeKind kind = Alternatives<ProbeSpec>::implemented(a.canonical) ? TypeKind::Implemented
                                                                      : TypeKind::Planned;
    return {kind, std::string(a.canonical)};
  }
  return {TypeKind::Unknown, t};
}

std::vector<std::string_view> known_type_names() {
  std::vector<std::string_view> names;
  Alternatives<ProbeSpec>::names(&names);
  for (const auto& a : kAliases)  // "ntp" is an alias of itself until its type lands
    if (!Alternatives<ProbeSpec>::implemented(a.name)) names.push_back(a.name);
  return names;
}

bool parse_spec(std::string_view canonical_type, Params& p, ProbeSpec* out) {
  return Alternatives<ProbeSpec>::parse(canonical_type, p, out);
}

std::string_view type_of(const ProbeSpec& spec) {
  return std::visit([](const auto& s) { return std::decay_t<decltype(s)>::kType; }, spec);
}

std::string name_suffix(const ProbeSpec& spec) {
  return std::visit([](const auto& s) { return s.name_suffix(); }, spec);
}

std::string describe_target(const Endpoint& e, const ProbeSpec& spec) {
  return std::visit([&](const auto& s) { return describe_target(e, s); }, spec);
}

std::string address_problem(const std::string& address, const ProbeSpec& spec) {
  return std::visit(
      [&](const auto& s) -> std::string {
        if constexpr (requires { s.address_problem(address); })
          return s.address_problem(address);
        else
          return "";
      },
      spec);
}

std::vector<Expanded> expand(const ProbeSpec& spec) {
  return std::visit(
      [&](const auto& s) -> std::vector<Expanded> {
        if constexpr (requires { s.expand(); }) {
          std::vector<Expanded> out;
          for (auto& one : s.expand()) {
            std::string part = one.expansion_name();
            out.push_back({ProbeSpec(std::move(one)), std::move(part)});
          }
          return out;
        } else {
          return {{spec, ""}};
        }
      },
      spec);
}

bool uses_ip_version(const Endpoint& e, const ProbeSpec& spec) {
  return std::visit(
      [&](const auto& s) {
        if constexpr (requires { s.uses_ip_version(e); })
          return s.uses_ip_version(e);
        else
          return true;
      },
      spec);
}

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const ProbeSpec& spec) {
  return std::visit([&](const auto& s) { return make_probe(ctx, e, s); }, spec);
}

}  // namespace netmond
