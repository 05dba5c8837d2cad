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

// Types the loader knows by name but that are not implemented yet: they are rejected with
// "not implemented yet", never silently skipped.
constexpr std::array kPlanned = {
    Alias{"http", "http"},         Alias{"https", "https"},
    Alias{"dns", "dns"},           Alias{"icmp", "icmp"},
    Alias{"ping", "icmp"},         Alias{"ntp", "ntp"},
    Alias{"udp_echo", "udp_echo"}, Alias{"udp_echo_client", "udp_echo"},
    Alias{"echo", "udp_echo"},
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
  for (const auto& a : kPlanned)
    if (a.name == t) return {TypeKind::Planned, std::string(a.canonical)};
  return {TypeKind::Unknown, t};
}

std::vector<std::string_view> known_type_names() {
  std::vector<std::string_view> names;
  Alternatives<ProbeSpec>::names(&names);
  for (const auto& a : kPlanned) names.push_back(a.name);
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

std::unique_ptr<Probe> make_probe(ProbeContext& ctx, const Endpoint& e, const ProbeSpec& spec) {
  return std::visit([&](const auto& s) { return make_probe(ctx, e, s); }, spec);
}

}  // namespace netmond
