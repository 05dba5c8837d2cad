#include "config.h"

#include "base/address.h"
#include "base/duration.h"
#include "yaml_documents.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

namespace netmond {

// Checks only this host, so a daemon started without any configuration file is useful and
// sends nothing off the machine. Later issues add loopback icmp and dns queries to the
// system resolvers (issue 3 §2).
const char* const kEmbeddedDefaultConfig = R"(# netmond built-in default: checks this host only.
servers:
  - address: 127.0.0.1
    services:
      # The local echo server (netmond-echo on 127.0.0.1:10100) echoes byte for byte.
      - {type: udp_echo, name: local-echo}
      - {type: tcp, port: 22, name: local-ssh}
)";

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kDefaultInterval{60'000};
constexpr milliseconds kMinInterval{100};
constexpr milliseconds kMaxDefaultTimeout{5'000};
constexpr unsigned kMaxAfter = 100;
constexpr unsigned kMaxRetries = 10;
constexpr size_t kMaxInterfaceName = 15;  // IFNAMSIZ - 1: the kernel's limit

enum class IpChoice { Any, V4, V6, Both };

// A value one level (defaults, server, service) may set, with where it was set: errors found
// only after merging the levels (timeout > interval, family conflicts) point at the line that
// set the offending value, not at the check that inherited it.
template <typename T>
struct Setting {
  std::optional<T> value;
  YAML::Mark mark;
  std::string map_path;  // "servers[1]"; the key name is implied by the field
};

// The keys a service inherits from its server, and a server from `defaults`.
struct Inherited {
  Setting<milliseconds> interval;
  Setting<milliseconds> timeout;
  Setting<unsigned> fail_after;
  Setting<unsigned> recover_after;
  Setting<unsigned> retries;
  Setting<IpChoice> ip_version;
  Setting<std::string> source_address;
  Setting<std::string> interface;
};

// The most specific level that set the value, or nullptr.
template <typename T>
const Setting<T>* pick(const Setting<T>& service, const Setting<T>& server,
                       const Setting<T>& defaults) {
  if (service.value) return &service;
  if (server.value) return &server;
  if (defaults.value) return &defaults;
  return nullptr;
}

std::string join_path(const std::string& map_path, std::string_view key) {
  return map_path.empty() ? std::string(key) : fmt::format("{}.{}", map_path, key);
}

// The key and value nodes of `key` in `map`; `found` is false when the key is absent.
struct Entry {
  YAML::Node key;
  YAML::Node value;
  bool found = false;
};

Entry find_entry(const YAML::Node& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it)
    if (it->first.IsScalar() && it->first.Scalar() == key) return {it->first, it->second, true};
  return {};
}

// yaml-cpp places an empty value ("key:" with nothing after it) at the start of the next
// line; the key is where a reader looks.
YAML::Mark mark_of(const Entry& e) { return e.value.IsNull() ? e.key.Mark() : e.value.Mark(); }

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", n.Scalar());
    default: return "nothing";
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string family_name(int family) { return family == AF_INET6 ? "IPv6" : "IPv4"; }

std::string choice_name(IpChoice c) {
  switch (c) {
    case IpChoice::V4: return "4";
    case IpChoice::V6: return "6";
    case IpChoice::Both: return "both";
    default: return "any";
  }
}

struct Server {
  std::string prefix;  // for derived check names: the server's name, else its address
  std::string host;
  std::string address;
  std::optional<SockAddr> literal;  // set when the address is an IP literal
  bool usable = false;              // false when address is missing: no checks are built
  Inherited settings;
};

class Loader {
 public:
  explicit Loader(Diagnostics* diag) : diag_(diag) {}

  void load(const YAML::Node& root, Config* out) {
    if (root.IsNull()) {
      diag_->error(YAML::Mark::null_mark(), "",
                   "the configuration is empty (it needs at least a 'servers' list)");
      return;
    }
    if (!root.IsMap()) {
      diag_->error(root.Mark(), "",
                   fmt::format("expected a map with 'servers' (and optionally 'defaults', "
                               "'log', 'control' and 'metrics'), got {}",
                               describe(root)));
      return;
    }
    Params top(root, "", diag_);
    top.accept("defaults");
    top.accept("log");
    top.accept("control");
    top.accept("metrics");
    top.require("servers");
    top.reject_unknown();

    if (Entry e = find_entry(root, "defaults"); e.found && optional_map(e, "defaults")) {
      Params p(e.value, "defaults", diag_);
      read_inherited(p, e.value, &defaults_);
      p.reject_unknown();
    }
    if (Entry e = find_entry(root, "log"); e.found && optional_map(e, "log")) {
      Params p(e.value, "log", diag_);
      read_log(p, &out->log);
      p.reject_unknown();
    }
    if (Entry e = find_entry(root, "control"); e.found && optional_map(e, "control")) {
      Params p(e.value, "control", diag_);
      read_control(p, &out->control);
      p.reject_unknown();
    }
    if (Entry e = find_entry(root, "metrics"); e.found && optional_map(e, "metrics")) {
      Params p(e.value, "metrics", diag_);
      read_metrics(p, &out->metrics);
      p.reject_unknown();
    }
    if (Entry e = find_entry(root, "servers"); e.found) {
      if (!e.value.IsSequence()) {
        diag_->error(mark_of(e), "servers",
                     fmt::format("expected a list of servers, got {}", describe(e.value)));
      } else if (e.value.size() == 0) {
        diag_->error(mark_of(e), "servers",
                     "the server list is empty: configure at least one server");
      } else {
        for (size_t i = 0; i < e.value.size(); ++i)
          load_server(e.value[i], fmt::format("servers[{}]", i), out);
      }
    }
  }

 private:
  // `defaults` and `log` may be present but empty (every key commented out).
  bool optional_map(const Entry& e, std::string_view name) {
    if (e.value.IsMap()) return true;
    if (!e.value.IsNull())
      diag_->error(mark_of(e), std::string(name),
                   fmt::format("expected a map, got {}", describe(e.value)));
    return false;
  }

  void read_log(Params& p, LogConfig* out) {
    p.get_choice("level", {"trace", "debug", "info", "warn", "error"}, &out->level);
    std::string s;
    if (p.get_choice("format", {"text", "json"}, &s))
      out->format = s == "json" ? LogFormat::Json : LogFormat::Text;
    if (p.get_choice("results", {"all", "changes"}, &s))
      out->results = s == "changes" ? LogResults::Changes : LogResults::All;
    if (p.get_choice("target", {"auto", "stdout", "journal"}, &s))
      out->target = s == "journal"  ? LogTarget::Journal
                    : s == "stdout" ? LogTarget::Stdout
                                    : LogTarget::Auto;
  }

  void read_control(Params& p, ControlConfig* out) {
    std::string s;
    if (!p.get("socket", &s)) return;
    if (!s.empty() && s.front() != '/')
      p.error("socket", fmt::format("'{}' is not an absolute path (or \"\" for no socket)", s));
    else if (s.size() >= sizeof(sockaddr_un::sun_path))
      p.error("socket", fmt::format("the path is {} bytes long; a Unix socket path has at most {}",
                                    s.size(), sizeof(sockaddr_un::sun_path) - 1));
    else
      out->socket = s;
  }

  void read_metrics(Params& p, MetricsConfig* out) {
    std::string s;
    if (p.get("listen", &s)) {
      std::string why;
      if (!s.empty() && !parse_listen_address(s, &why))
        p.error("listen", fmt::format("'{}': {}", s, why));
      else
        out->listen = s;
    }
    if (p.get("textfile", &s)) {
      if (!s.empty() && s.front() != '/')
        p.error("textfile", fmt::format("'{}' is not an absolute path (or \"\" for none)", s));
      else if (!s.empty() && s.back() == '/')
        p.error("textfile", fmt::format("'{}' names a directory; name the file (*.prom)", s));
      else
        out->textfile = s;
    }
  }

  template <typename T>
  void set(Setting<T>* s, T value, const Params& p, const YAML::Node& map, std::string_view key) {
    s->value = std::move(value);
    s->mark = mark_of(find_entry(map, key));
    s->map_path = p.path();
  }

  void read_inherited(Params& p, const YAML::Node& map, Inherited* out) {
    milliseconds d{};
    if (p.get_duration("interval", &d)) {
      if (d < kMinInterval)
        p.error("interval", fmt::format("interval {} is below the minimum of {}",
                                        format_duration(d), format_duration(kMinInterval)));
      else
        set(&out->interval, d, p, map, "interval");
    }
    if (p.get_duration("timeout", &d)) {
      if (d.count() <= 0)
        p.error("timeout", "timeout must be longer than 0");
      else
        set(&out->timeout, d, p, map, "timeout");
    }
    unsigned u = 0;
    if (p.get("fail_after", &u, 1, kMaxAfter)) set(&out->fail_after, u, p, map, "fail_after");
    if (p.get("recover_after", &u, 1, kMaxAfter))
      set(&out->recover_after, u, p, map, "recover_after");
    if (p.get("retries", &u, 0, kMaxRetries)) set(&out->retries, u, p, map, "retries");
    std::string s;
    if (p.get_choice("ip_version", {"any", "4", "6", "both"}, &s)) {
      IpChoice c = s == "4"      ? IpChoice::V4
                   : s == "6"    ? IpChoice::V6
                   : s == "both" ? IpChoice::Both
                                 : IpChoice::Any;
      set(&out->ip_version, c, p, map, "ip_version");
    }
    if (p.get("source_address", &s)) {
      if (!parse_ip(s))
        p.error("source_address", fmt::format("expected a local IP address, got '{}'", s));
      else
        set(&out->source_address, s, p, map, "source_address");
    }
    if (p.get("interface", &s)) {
      if (s.empty())
        p.error("interface", "interface name is empty");
      else if (s.size() > kMaxInterfaceName || s.find_first_of("/ \t") != std::string::npos)
        p.error("interface", fmt::format("'{}' is not a valid interface name (at most {} "
                                         "characters, no '/' or spaces)",
                                         s, kMaxInterfaceName));
      else
        set(&out->interface, s, p, map, "interface");
    }
  }

  // A `name` key, which must be a non-empty string.
  bool read_name(Params& p, std::string* out) {
    if (!p.get("name", out)) return false;
    if (out->empty()) {
      p.error("name", "name is empty");
      return false;
    }
    return true;
  }

  void load_server(const YAML::Node& node, const std::string& path, Config* out) {
    if (!node.IsMap()) {
      diag_->error(
          node.Mark(), path,
          fmt::format("expected a map with 'address' and 'services', got {}", describe(node)));
      return;
    }
    Server server;
    Params p(node, path, diag_);
    p.require("address");
    p.require("services");
    if (p.get("address", &server.address)) {
      server.host = host_of(server.address);
      server.literal = parse_ip(server.host);
      server.usable = true;
      if (server.address.empty())
        p.error("address", "address is empty");
      else if (server.host.empty())
        p.error("address", fmt::format("no host in '{}'", server.address));
      else if (!server.literal && !valid_hostname(server.host))
        p.error("address",
                fmt::format("'{}' is not an IP address, a hostname or a URL", server.address));
    }
    std::string name;
    server.prefix = read_name(p, &name) ? name : server.address;
    read_inherited(p, node, &server.settings);
    p.reject_unknown();
    // What every service of this server inherits, checked even if its services are broken
    // (the services' own merges find the same problems; tidy() drops the repeats).
    merge(server, Inherited{});

    Entry e = find_entry(node, "services");
    if (!e.found) return;
    std::string services_path = join_path(path, "services");
    if (!e.value.IsSequence()) {
      diag_->error(mark_of(e), services_path,
                   fmt::format("expected a list of services, got {}", describe(e.value)));
      return;
    }
    if (e.value.size() == 0) {
      diag_->error(mark_of(e), services_path,
                   "the service list is empty: configure at least one service");
      return;
    }
    for (size_t j = 0; j < e.value.size(); ++j)
      load_service(e.value[j], fmt::format("{}[{}]", services_path, j), server, out);
  }

  // Looks up a configured type name; records an error for unknown and planned types.
  std::optional<std::string> resolve_type(const std::string& configured, const YAML::Mark& mark,
                                          const std::string& path) {
    TypeLookup t = lookup_type(configured);
    switch (t.kind) {
      case TypeKind::Implemented: return t.canonical;
      case TypeKind::Planned: {
        std::string alias =
            lower(configured) == t.canonical ? "" : fmt::format(" ({})", t.canonical);
        diag_->error(mark, path,
                     fmt::format("service type '{}'{} is not implemented yet", configured, alias));
        return std::nullopt;
      }
      case TypeKind::Unknown: break;
    }
    std::vector<std::string_view> names = known_type_names();
    std::string suggestion = closest_match(configured, names);
    if (!suggestion.empty()) {
      diag_->error(
          mark, path,
          fmt::format("unknown service type '{}' (did you mean '{}'?)", configured, suggestion));
    } else {
      std::string list;
      for (auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
      diag_->error(mark, path,
                   fmt::format("unknown service type '{}' (known types: {})", configured, list));
    }
    return std::nullopt;
  }

  void load_service(const YAML::Node& node, const std::string& path, const Server& server,
                    Config* out) {
    Inherited settings;
    std::string name;
    YAML::Mark name_mark = node.Mark();
    std::string name_path = path;
    std::optional<ProbeSpec> spec;

    if (node.IsScalar()) {
      spec = bare_spec(node, path);
    } else if (node.IsMap()) {
      Params p(node, path, diag_);
      p.require("type");
      std::string configured;
      std::optional<std::string> type;
      if (p.get("type", &configured))
        type = resolve_type(configured, mark_of(find_entry(node, "type")), p.path_of("type"));
      if (read_name(p, &name)) {
        name_mark = mark_of(find_entry(node, "name"));
        name_path = p.path_of("name");
      }
      read_inherited(p, node, &settings);
      // The type's own keys are known only for an implemented type; for a missing, unknown
      // or planned one, its other keys are left unjudged rather than reported as unknown.
      if (type) {
        size_t before = diag_->size();
        ProbeSpec s;
        parse_spec(*type, p, &s);
        p.reject_unknown();
        if (diag_->size() == before) spec = s;
      }
    } else {
      diag_->error(
          node.Mark(), path,
          fmt::format("expected a service type name or a map with 'type', got {}", describe(node)));
      return;
    }
    // Merged even when the service itself is broken, so that every problem is reported.
    Merged m = merge(server, settings);
    if (!spec || !server.usable) return;
    if (std::string why = address_problem(server.address, *spec); !why.empty()) {
      diag_->error(node.Mark(), path, "address '" + server.address + "': " + why);
      return;
    }
    // One check per variant (dns: per record type), "NAME/A" when the service is named.
    for (Expanded& e : expand(*spec)) {
      Merged one = m;
      one.check.spec = std::move(e.spec);
      std::string one_name = name;
      if (!one_name.empty() && !e.name_part.empty()) one_name += "/" + e.name_part;
      add_checks(std::move(one), server, one_name, name_mark, name_path, out);
    }
  }

  // A service written as a bare type name ("tcp"): that type with no parameters.
  std::optional<ProbeSpec> bare_spec(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> type = resolve_type(node.Scalar(), node.Mark(), path);
    if (!type) return std::nullopt;
    // Parsed from an empty map so that the type's required keys are reported; the reports
    // are then moved to the string itself, as an empty map has no position.
    Diagnostics scratch(diag_->file());
    Params p(YAML::Node(YAML::NodeType::Map), path, &scratch);
    ProbeSpec s;
    parse_spec(*type, p, &s);
    for (const Diagnostic& d : scratch.list())
      diag_->error(node.Mark(), path,
                   fmt::format("{} (a bare '{}' takes no parameters; write a map such as "
                               "{{type: {}, ...}})",
                               d.message, node.Scalar(), *type));
    if (!scratch.empty()) return std::nullopt;
    return s;
  }

  struct Merged {
    CheckConfig check;  // without name, spec and endpoint.ip_version
    IpChoice ip_version = IpChoice::Any;
  };

  // The check's settings after service over server over defaults; records the errors that
  // only the merged values reveal.
  Merged merge(const Server& server, const Inherited& svc) {
    const Inherited& srv = server.settings;
    Merged m;
    CheckConfig& c = m.check;
    c.endpoint.host = server.host;
    c.endpoint.address = server.address;

    const auto* interval = pick(svc.interval, srv.interval, defaults_.interval);
    c.interval = interval ? *interval->value : kDefaultInterval;
    if (const auto* timeout = pick(svc.timeout, srv.timeout, defaults_.timeout)) {
      c.timeout = *timeout->value;
      if (c.timeout > c.interval) {
        std::string where;
        if (!interval)
          where = " (the default)";
        else if (interval->map_path != timeout->map_path)
          where = fmt::format(" set at line {} ({})", interval->mark.line + 1,
                              join_path(interval->map_path, "interval"));
        diag_->error(timeout->mark, join_path(timeout->map_path, "timeout"),
                     fmt::format("timeout {} is longer than the interval {}{}",
                                 format_duration(c.timeout), format_duration(c.interval), where));
      }
    } else {
      c.timeout = std::min(kMaxDefaultTimeout, c.interval);
    }
    if (const auto* s = pick(svc.fail_after, srv.fail_after, defaults_.fail_after))
      c.fail_after = *s->value;
    if (const auto* s = pick(svc.recover_after, srv.recover_after, defaults_.recover_after))
      c.recover_after = *s->value;
    if (const auto* s = pick(svc.retries, srv.retries, defaults_.retries)) c.retries = *s->value;
    if (const auto* s = pick(svc.interface, srv.interface, defaults_.interface))
      c.endpoint.interface = *s->value;

    const auto* source = pick(svc.source_address, srv.source_address, defaults_.source_address);
    if (source) c.endpoint.source_address = *source->value;
    const auto* version = pick(svc.ip_version, srv.ip_version, defaults_.ip_version);
    check_families(server, version, source);
    if (version) m.ip_version = *version->value;
    return m;
  }

  // Names the check and adds it, or its /v4 and /v6 pair for ip_version both.
  void add_checks(Merged m, const Server& server, const std::string& explicit_name,
                  const YAML::Mark& name_mark, const std::string& name_path, Config* out) {
    // "http://host/" + "http" reads "http://host/http", not "http://host//http".
    std::string_view prefix = server.prefix;
    while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
    std::string base = explicit_name.empty()
                           ? fmt::format("{}/{}", prefix, name_suffix(m.check.spec))
                           : explicit_name;
    CheckConfig& c = m.check;
    auto add = [&](std::string name, IpVersion v) {
      c.name = std::move(name);
      c.endpoint.ip_version = v;
      if (remember_name(c.name, name_mark, name_path, explicit_name.empty()))
        out->checks.push_back(c);
    };
    IpChoice ip = m.ip_version;
    if (ip == IpChoice::Both && !uses_ip_version(c.endpoint, c.spec)) ip = IpChoice::Any;
    switch (ip) {
      case IpChoice::Both:
        add(base + "/v4", IpVersion::V4);
        add(base + "/v6", IpVersion::V6);
        break;
      case IpChoice::V4: add(base, IpVersion::V4); break;
      case IpChoice::V6: add(base, IpVersion::V6); break;
      case IpChoice::Any: add(base, IpVersion::Any); break;
    }
  }

  // The address, ip_version and source_address must agree on the address family. Reported
  // at the ip_version or source_address that conflicts, wherever it was set.
  void check_families(const Server& server, const Setting<IpChoice>* version,
                      const Setting<std::string>* source) {
    IpChoice ip = version ? *version->value : IpChoice::Any;
    if (server.literal && version) {
      int family = server.literal->family();
      std::string path = join_path(version->map_path, "ip_version");
      if (ip == IpChoice::Both)
        diag_->error(version->mark, path,
                     fmt::format("ip_version both needs a hostname, but '{}' is an {} address",
                                 server.address, family_name(family)));
      else if ((ip == IpChoice::V4 && family == AF_INET6) ||
               (ip == IpChoice::V6 && family == AF_INET))
        diag_->error(version->mark, path,
                     fmt::format("ip_version {} does not match the {} address '{}'",
                                 choice_name(ip), family_name(family), server.address));
    }
    if (!source) return;
    int family = parse_ip(*source->value)->family();
    std::string path = join_path(source->map_path, "source_address");
    if (ip == IpChoice::Both) {
      diag_->error(source->mark, path,
                   fmt::format("source_address '{}' is an {} address, but ip_version both also "
                               "needs the other family",
                               *source->value, family_name(family)));
    } else if ((ip == IpChoice::V4 && family == AF_INET6) ||
               (ip == IpChoice::V6 && family == AF_INET)) {
      diag_->error(source->mark, path,
                   fmt::format("source_address '{}' is an {} address, but ip_version is {}",
                               *source->value, family_name(family), choice_name(ip)));
    } else if (server.literal && server.literal->family() != family) {
      diag_->error(
          source->mark, path,
          fmt::format("source_address '{}' is an {} address, but '{}' is {}", *source->value,
                      family_name(family), server.address, family_name(server.literal->family())));
    }
  }

  // Records a check name; false (with an error at the second one) when it is taken.
  bool remember_name(const std::string& name, const YAML::Mark& mark, const std::string& path,
                     bool derived) {
    auto [it, inserted] = names_.emplace(name, mark.line + 1);
    if (inserted) return true;
    diag_->error(mark, path,
                 fmt::format("duplicate check name '{}' (first defined at line {}){}", name,
                             it->second, derived ? "; give one of them a 'name'" : ""));
    return false;
  }

  Diagnostics* diag_;
  Inherited defaults_;
  std::map<std::string, int> names_;  // check name -> line that defined it
};

// Orders diagnostics as the file reads and drops exact repeats (a bad value in `defaults`
// is found once per check that inherits it).
std::vector<Diagnostic> tidy(const std::vector<Diagnostic>& in) {
  std::vector<Diagnostic> out;
  std::set<std::tuple<int, int, std::string, std::string>> seen;
  for (const auto& d : in)
    if (seen.emplace(d.line, d.column, d.path, d.message).second) out.push_back(d);
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return out;
}

}  // namespace

std::optional<SockAddr> parse_listen_address(std::string_view text, std::string* why) {
  HostPortText parts;
  if (split_host_port(text, &parts) != SplitError::None || !parts.port) {
    *why = "expected IP:PORT, e.g. 127.0.0.1:9469 or [::1]:9469";
    return std::nullopt;
  }
  std::optional<SockAddr> addr = parse_ip(parts.host);
  if (!addr) {
    *why = fmt::format("'{}' is not an IP address (a host name is not resolved here)", parts.host);
    return std::nullopt;
  }
  if (addr->family() == AF_INET6 && !parts.bracketed) {
    *why = "write an IPv6 address in brackets, e.g. [::1]:9469";
    return std::nullopt;
  }
  unsigned port = 0;
  std::string_view digits = *parts.port;
  bool numeric =
      !digits.empty() && digits.size() <= 5 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) port = static_cast<unsigned>(std::stoul(std::string(digits)));
  if (!numeric || port < 1 || port > 65535) {
    *why = fmt::format("the port '{}' is not 1..65535", digits);
    return std::nullopt;
  }
  addr->set_port(static_cast<std::uint16_t>(port));
  return addr;
}

namespace {

// Where `text` stops being well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), or npos. yaml-cpp would take Latin-1 bytes into names and
// strings, and they would reach the journal and the JSON of the control socket mangled.
size_t invalid_utf8_at(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    char32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// The position of byte `at` in `text`, as yaml-cpp marks positions (0-based line and
// column, the column in bytes).
YAML::Mark mark_at(std::string_view text, size_t at) {
  const std::string_view before = text.substr(0, at);
  const size_t line_start = before.rfind('\n');  // npos: on the first line
  YAML::Mark mark;
  mark.pos = static_cast<int>(at);
  mark.line = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  mark.column = static_cast<int>(line_start == std::string_view::npos ? at : at - line_start - 1);
  return mark;
}

}  // namespace

std::optional<Config> parse_config(const std::string& text, const std::string& file,
                                   std::vector<Diagnostic>* errors) {
  Diagnostics diag(file);
  Config config;
  if (size_t bad = invalid_utf8_at(text); bad != std::string_view::npos) {
    diag.error(mark_at(text, bad), "",
               fmt::format("not UTF-8 text (byte 0x{:02X}): netmond reads YAML in UTF-8",
                           static_cast<unsigned char>(text[bad])));
    errors->insert(errors->end(), diag.list().begin(), diag.list().end());
    return std::nullopt;
  }
  // yaml-cpp reports through exceptions; none may leave the loader.
  try {
    const YamlDocuments docs = load_yaml_documents(text);
    if (docs.stuck) {
      const auto at = static_cast<size_t>(docs.stuck->pos);
      const char c = at < text.size() ? text[at] : '\0';
      diag.error(*docs.stuck, "",
                 c > 0x20 && c < 0x7f ? fmt::format("YAML syntax error: unexpected '{}'", c)
                                      : std::string("YAML syntax error: unexpected text"));
    } else {
      if (docs.second)
        diag.error(*docs.second, "", "only one YAML document is allowed (remove the '---')");
      Loader(&diag).load(docs.first, &config);
    }
  } catch (const YAML::ParserException& e) {
    diag.error(e.mark, "", fmt::format("YAML syntax error: {}", e.msg));
  } catch (const YAML::Exception& e) {
    diag.error(e.mark, "", fmt::format("cannot read the YAML: {}", e.msg));
  }
  if (diag.empty()) return config;
  std::vector<Diagnostic> list = tidy(diag.list());
  errors->insert(errors->end(), list.begin(), list.end());
  return std::nullopt;
}

std::optional<Config> load_config(const std::filesystem::path& file,
                                  std::vector<Diagnostic>* errors) {
  auto cannot_read = [&](int err) {
    Diagnostic d;
    d.file = file.string();
    d.message = fmt::format("cannot read: {}", std::strerror(err));
    errors->push_back(std::move(d));
    return std::nullopt;
  };
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot_read(errno);
  std::string text;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return cannot_read(err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // A bound, so that a wrong path (a disk image, /dev/zero) cannot exhaust the memory
    // of a running daemon on reload; 100,000 checks take about 10 MiB.
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      Diagnostic d;
      d.file = file.string();
      d.message =
          fmt::format("larger than {} MiB: not a configuration file", kMaxConfigBytes >> 20);
      errors->push_back(std::move(d));
      return std::nullopt;
    }
  }
  ::close(fd);
  return parse_config(text, file.string(), errors);
}

}  // namespace netmond
