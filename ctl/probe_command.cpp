// `netmonctl probe TYPE TARGET [--set KEY=VALUE]...`: runs one check once, without the
// daemon, with the daemon's own code: the --set pairs become one service of a
// configuration that netmond's config loader validates (so every key, default and error
// is the config file's), and the check runs on a loop as `netmond --once` runs it. With
// --format nagios it is a monitoring-plugins check (status line, perfdata, exit 0..3).
#include "ares_channel.h"
#include "commands.h"
#include "config.h"
#include "curl_multi.h"
#include "log.h"
#include "nagios.h"
#include "raw_icmp_sockets.h"
#include "registry.h"
#include "report.h"
#include "resolver.h"
#include "scheduler.h"
#include "status_text.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace netmond::ctl {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kUsage =
    "netmonctl probe TYPE TARGET [--set KEY=VALUE]... [--json]\n"
    "       netmonctl probe TYPE TARGET [--set KEY=VALUE]... --format nagios\n"
    "                       [-w|--warning RANGE] [-c|--critical RANGE]";

constexpr std::string_view kHelp =
    "Runs one check once, here and now, without netmond. TARGET is the server's address\n"
    "(an IP, a hostname or, for http, a URL); each --set KEY=VALUE is one key of the\n"
    "service as in /etc/netmond.yaml, validated the same way (VALUE is YAML:\n"
    "--set record_types=[A,MX], --set timeout=2s). A list of record types or\n"
    "ip_version=both runs several checks.\n"
    "Types: {}\n"
    "\n"
    "Options:\n"
    "  --set KEY=VALUE       a key of the check (repeatable); see netmond.yaml(5)\n"
    "  --json                print each result as netmond's JSON result line\n"
    "  --format FMT          text (default), json, or nagios\n"
    "  -w, --warning RANGE   nagios: WARNING when the time in seconds (the latency; for\n"
    "                        icmp and udp_echo the average RTT) raises the alert\n"
    "  -c, --critical RANGE  nagios: CRITICAL likewise; RANGE as the monitoring plugins\n"
    "                        take it: 0.5 (above 0.5), 0.1: (below), @0.1:0.5 (inside)\n"
    "\n"
    "Exit status: 0 every check succeeded; 1 one failed; 2 usage or configuration error.\n"
    "With --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, or the\n"
    "probe could not run at all, e.g. ICMP without the privilege).\n"
    "Example: netmonctl probe dns 127.0.0.1 --set port=5353 --set query=example.test \\\n"
    "           --set record_types=MX\n";

enum class Format { Text, Json, Nagios };

struct ProbeArgs {
  std::string type, target;
  std::vector<std::pair<std::string, std::string>> sets;
  Format format = Format::Text;
  std::optional<std::string> warning, critical;
};

// A usage error, in the form the output format asks for.
int usage_error(Format format, const std::string& message) {
  if (format == Format::Nagios) {
    fmt::print("UNKNOWN - {}\n", message);
    return static_cast<int>(nagios::Status::Unknown);
  }
  fmt::print(stderr, "netmonctl probe: {}\nUsage: {}\n", message, kUsage);
  return kExitUsage;
}

// Parses the arguments; the exit code when that is all there is to do.
std::optional<int> parse_args(const Args& args, ProbeArgs* out) {
  std::vector<std::string> positional;
  std::string error;
  auto value = [&](size_t& i, std::string_view option) -> std::optional<std::string> {
    if (i + 1 >= args.size()) {
      error = fmt::format("{} needs a value", option);
      return std::nullopt;
    }
    return args[++i];
  };
  for (size_t i = 0; i < args.size() && error.empty(); ++i) {
    const std::string& a = args[i];
    std::optional<std::string> v;
    if (a == "-h" || a == "--help") {
      // The type names (aliases too) from the registry: the list cannot go stale.
      fmt::print("Usage: {}\n\n", kUsage);
      fmt::print(fmt::runtime(kHelp), fmt::join(known_type_names(), " "));
      return kExitOk;
    } else if (a == "--json") {
      out->format = Format::Json;
    } else if (a == "--format" || a.starts_with("--format=")) {
      v = a == "--format" ? value(i, a) : a.substr(9);
      if (!v) break;
      if (*v == "text")
        out->format = Format::Text;
      else if (*v == "json")
        out->format = Format::Json;
      else if (*v == "nagios")
        out->format = Format::Nagios;
      else
        error = fmt::format("--format '{}': expected text, json or nagios", *v);
    } else if (a == "--set" || a.starts_with("--set=")) {
      v = a == "--set" ? value(i, a) : a.substr(6);
      if (!v) break;
      const size_t eq = v->find('=');
      if (eq == std::string::npos || eq == 0)
        error = fmt::format("--set '{}': expected KEY=VALUE", *v);
      else
        out->sets.emplace_back(v->substr(0, eq), v->substr(eq + 1));
    } else if (a == "-w" || a == "--warning") {
      out->warning = value(i, a);
    } else if (a == "-c" || a == "--critical") {
      out->critical = value(i, a);
    } else if (a.starts_with("-") && a.size() > 1) {
      error = fmt::format("unknown option '{}'", a);
    } else {
      positional.push_back(a);
    }
  }
  if (error.empty() && positional.size() < 2) error = "missing TYPE and TARGET";
  if (error.empty() && positional.size() > 2)
    error = fmt::format("unexpected argument '{}'", positional[2]);
  if (error.empty() && out->format != Format::Nagios && (out->warning || out->critical))
    error = "--warning and --critical go with --format nagios";
  if (!error.empty()) return usage_error(out->format, error);
  out->type = positional[0];
  out->target = positional[1];
  return std::nullopt;
}

// The configuration text of the one service. Values are parsed as YAML, so lists and
// numbers are what they would be in the file.
std::optional<std::string> config_text(const ProbeArgs& a, std::string* error) {
  YAML::Node service;
  service["type"] = a.type;
  for (const auto& [key, text] : a.sets) {
    if (key == "type") {
      *error = "--set type: the type is the first argument";
      return std::nullopt;
    }
    if (service[key]) {
      *error = fmt::format("--set {}: given twice", key);
      return std::nullopt;
    }
    try {
      service[key] = text.empty() ? YAML::Node(std::string()) : YAML::Load(text);
    } catch (const YAML::Exception& e) {
      *error = fmt::format("--set {}={}: not a valid YAML value: {}", key, text, e.msg);
      return std::nullopt;
    }
  }
  YAML::Node server;
  server["address"] = a.target;
  server["services"].push_back(service);
  YAML::Node root;
  root["control"]["socket"] = "";
  root["servers"].push_back(server);
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str());
}

// "servers[0].services[0].port: must be ..." -> "--set port: must be ...".
std::string explain(const Diagnostic& d) {
  constexpr std::string_view service = "servers[0].services[0]";
  constexpr std::string_view server = "servers[0]";
  std::string_view path = d.path;
  if (path.starts_with(service)) {
    path.remove_prefix(service.size());
    if (path == ".type") return fmt::format("TYPE: {}", d.message);
    if (path.empty()) return d.message;  // the service as a whole: a missing or unknown key
    return fmt::format("--set {}: {}", path.substr(1), d.message);
  }
  if (path.starts_with(server)) return fmt::format("TARGET: {}", d.message);
  return d.path.empty() ? d.message : fmt::format("{}: {}", d.path, d.message);
}

struct Outcome {
  CheckConfig check;
  Result result;
  json event;
};

// Collects one result per check and stops the loop when all are in.
class Collector : public Reporter {
 public:
  Collector(uv_loop_t* loop, size_t expected) : loop_(loop), expected_(expected) {}
  void result(const CheckConfig& check, const CheckState& state, const Result& r,
              const RunInfo& info) override {
    outcomes.push_back(
        {check, r, result_json(check, state, r, info, std::chrono::system_clock::now())});
    if (outcomes.size() == expected_) uv_stop(loop_);
  }
  void transition(const CheckConfig&, Health, Health, const Result&) override {}
  std::vector<Outcome> outcomes;

 private:
  uv_loop_t* loop_;
  size_t expected_;
};

// Runs every check once, concurrently, as `netmond --once` does.
std::vector<Outcome> run_checks(const std::vector<CheckConfig>& checks) {
  uv_loop_t loop{};
  uv_loop_init(&loop);
  std::vector<Outcome> outcomes;
  {
    Collector collector(&loop, checks.size());
    Resolver resolver(&loop);
    CurlMulti curl(&loop);
    DnsChannels dns(&loop);
    RawIcmpSockets icmp(&loop);
    ProbeContext context{&loop, resolver, curl, dns, icmp};
    Scheduler scheduler(&loop, collector, [&context](const CheckConfig& c) {
      return make_probe(context, c.endpoint, c.spec);
    });
    scheduler.apply(checks, /*periodic=*/false);
    scheduler.run_all_now();
    uv_run(&loop, UV_RUN_DEFAULT);
    outcomes = std::move(collector.outcomes);
  }                               // the scheduler first, then what its probes used
  uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks
  uv_loop_close(&loop);
  return outcomes;
}

// The time the thresholds apply to: the average round-trip time where the probe measures
// one (icmp, udp_echo: their run also waits `spacing` between packets), else the run's
// latency.
double nagios_seconds(const Result& r) {
  if (auto rtt = r.details.find("rtt_ms"); rtt != r.details.end() && rtt->is_number())
    return rtt->get<double>() / 1000.0;
  return std::chrono::duration<double>(r.latency).count();
}

int print_nagios(const std::vector<Outcome>& outcomes, const std::optional<nagios::Range>& warning,
                 const std::optional<nagios::Range>& critical) {
  auto rank = [](nagios::Status s) {
    switch (s) {
      case nagios::Status::Ok: return 0;
      case nagios::Status::Unknown: return 1;
      case nagios::Status::Warning: return 2;
      case nagios::Status::Critical: break;
    }
    return 3;
  };
  nagios::Status worst = nagios::Status::Ok;
  std::vector<std::string> texts, perf;
  const bool several = outcomes.size() > 1;
  for (const Outcome& o : outcomes) {
    const double seconds = nagios_seconds(o.result);
    nagios::Status s = nagios::Status::Ok;
    std::string text = o.result.message;
    if (o.result.status == Status::LocalError) {
      s = nagios::Status::Unknown;
      text = fmt::format("{}: {}", code(o.result.status), o.result.message);
    } else if (!o.result.ok()) {
      s = nagios::Status::Critical;
      text = fmt::format("{}: {}", code(o.result.status), o.result.message);
    } else if (critical && critical->alerts(seconds)) {
      s = nagios::Status::Critical;
      text += fmt::format(" (time {:.6f}s, critical {})", seconds, critical->text());
    } else if (warning && warning->alerts(seconds)) {
      s = nagios::Status::Warning;
      text += fmt::format(" (time {:.6f}s, warning {})", seconds, warning->text());
    }
    if (rank(s) > rank(worst)) worst = s;
    texts.push_back(several ? fmt::format("{}: {}", o.check.name, text) : text);
    // A failed run has no meaningful time: perfdata only for answers.
    const std::string prefix = several ? o.check.name + " " : "";
    if (o.result.ok())
      perf.push_back(nagios::perfdata(prefix + "time", seconds, "s", warning, critical, 0.0));
    if (auto loss = o.result.details.find("loss");
        loss != o.result.details.end() && loss->is_number())
      perf.push_back(nagios::perfdata(prefix + "pl", loss->get<double>(), "%", std::nullopt,
                                      std::nullopt, 0.0));
  }
  std::string line = fmt::format("{} - {}", nagios::name(worst), fmt::join(texts, "; "));
  // '|' starts the perfdata: it must not appear in the text.
  for (char& c : line)
    if (c == '|' || c == '\n') c = c == '|' ? '/' : ' ';
  if (!perf.empty()) line += fmt::format(" | {}", fmt::join(perf, " "));
  fmt::print("{}\n", line);
  return static_cast<int>(worst);
}

}  // namespace

int probe_command(const Args& args) {
  ProbeArgs a;
  if (auto done = parse_args(args, &a)) return *done;

  std::optional<nagios::Range> warning, critical;
  std::string error;
  if (a.warning && !(warning = nagios::Range::parse(*a.warning, &error)))
    return usage_error(a.format, "--warning " + error);
  if (a.critical && !(critical = nagios::Range::parse(*a.critical, &error)))
    return usage_error(a.format, "--critical " + error);

  std::optional<std::string> text = config_text(a, &error);
  if (!text) return usage_error(a.format, error);
  std::vector<Diagnostic> errors;
  std::optional<Config> config = parse_config(*text, "netmonctl probe", &errors);
  if (!config) {
    std::vector<std::string> lines;
    for (const Diagnostic& d : errors) lines.push_back(explain(d));
    return usage_error(a.format, fmt::format("{}", fmt::join(lines, "; ")));
  }
  if (config->checks.empty()) return usage_error(a.format, "no check to run");

  // Probes log only what goes wrong inside netmond itself; keep stdout for the results.
  log::setup(LogFormat::Text, a.format == Format::Text ? spdlog::level::warn : spdlog::level::off);
  std::vector<Outcome> outcomes = run_checks(config->checks);

  if (a.format == Format::Nagios) return print_nagios(outcomes, warning, critical);
  bool all_ok = true;
  for (const Outcome& o : outcomes) {
    all_ok = all_ok && o.result.ok();
    fmt::print("{}\n", a.format == Format::Json ? o.event.dump() : result_line(o.event));
  }
  return all_ok ? kExitOk : kExitFailed;
}

}  // namespace netmond::ctl
