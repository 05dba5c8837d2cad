// The commands that talk to a running netmond over its control socket: status, run,
// reload, watch, version. Each sends one request (docs/control.md) and prints the answer
// for people, or as it came with --json.
#include "base/duration.h"
#include "commands.h"
#include "control_client.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <optional>

namespace netmond::ctl {
namespace {

using json = nlohmann::ordered_json;

struct CommandLine {
  std::vector<std::string> positional;
  bool json = false;
};

// A command's usage line, help text and how many positional arguments it takes.
struct Spec {
  std::string_view name;
  std::string_view usage;
  std::string_view help;
  size_t max_positional;
};

// Parses the options every control command takes (--json, -h/--help) into `out`. Returns
// the exit code when that is all there is to do: help printed, or a usage error.
std::optional<int> prologue(const Spec& spec, const Args& args, CommandLine* out) {
  for (const std::string& a : args) {
    if (a == "--json") {
      out->json = true;
    } else if (a == "-h" || a == "--help") {
      fmt::print("Usage: {}\n\n{}", spec.usage, spec.help);
      return kExitOk;
    } else if (a.starts_with("-")) {
      fmt::print(stderr, "netmonctl {}: unknown option '{}'\nUsage: {}\n", spec.name, a,
                 spec.usage);
      return kExitUsage;
    } else {
      out->positional.push_back(a);
    }
  }
  if (out->positional.size() > spec.max_positional) {
    fmt::print(stderr, "netmonctl {}: unexpected argument '{}'\nUsage: {}\n", spec.name,
               out->positional[spec.max_positional], spec.usage);
    return kExitUsage;
  }
  return std::nullopt;
}

// One request, one response; nullopt (after printing why) when the daemon cannot be
// reached or does not answer.
std::optional<json> ask(const json& request) {
  auto client = ControlClient::connect(control_socket());
  if (!client || !client->send(request)) return std::nullopt;
  return client->receive();
}

bool failed(const json& response) {
  if (response.value("ok", false)) return false;
  fmt::print(stderr, "netmonctl: {}\n", response.value("error", std::string("request failed")));
  return true;
}

void print_json(const json& j) { fmt::print("{}\n", j.dump()); }

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string latency(const json& j) {
  auto it = j.find("latency_ms");
  if (it == j.end() || !it->is_number()) return "-";
  return format_latency(
      std::chrono::nanoseconds(static_cast<std::int64_t>(it->get<double>() * 1e6)));
}

std::string upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// How long ago an RFC 3339 UTC time was: "42s", "5m", "3h12m", "2d4h"; "-" if unknown.
std::string age(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 || strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr)
    return "-";
  long long s = std::max<long long>(0, std::time(nullptr) - timegm(&tm));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{}h", s / 86400, s % 86400 / 3600);
}

std::string colour_state(const std::string& state, size_t width, bool colour) {
  std::string padded = fmt::format("{:<{}}", upper(state), width);
  if (!colour) return padded;
  const char* code = state == "up" ? "32" : state == "down" ? "31;1" : "33";
  return fmt::format("\033[{}m{}\033[0m", code, padded);
}

void print_table(const json& checks, bool colour) {
  const std::vector<std::string> head = {"NAME",    "TYPE", "TARGET",   "STATE",  "SINCE",
                                         "LATENCY", "RUNS", "FAILURES", "MESSAGE"};
  std::vector<std::vector<std::string>> rows;
  for (const json& c : checks) {
    std::string message = text(c, "message");
    if (message.size() > 72) message = message.substr(0, 69) + "...";
    rows.push_back({text(c, "name"), text(c, "type"), text(c, "target"), text(c, "state"),
                    age(text(c, "since")), latency(c), std::to_string(c.value("runs", 0)),
                    std::to_string(c.value("failures", 0)), message});
  }
  std::vector<size_t> width(head.size());
  for (size_t i = 0; i < head.size(); ++i) {
    width[i] = head[i].size();
    for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& r, bool is_head) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      const bool last = i + 1 == r.size();
      if (i == 3 && !is_head)
        line += colour_state(r[i], width[i], colour);
      else
        line += last ? r[i] : fmt::format("{:<{}}", r[i], width[i]);
      if (!last) line += "  ";
    }
    fmt::print("{}\n", line);
  };
  print_row(head, true);
  for (const auto& r : rows) print_row(r, false);
}

volatile std::sig_atomic_t g_interrupted = 0;

}  // namespace

std::string result_line(const json& e) {
  std::string line =
      fmt::format("{} {} {} ", text(e, "check"), upper(text(e, "state")), latency(e));
  if (!e.value("ok", false)) line += text(e, "reason") + ": ";
  line += text(e, "message");
  if (unsigned a = e.value("attempts", 1u); a > 1) line += fmt::format(" (attempt {})", a);
  return line;
}

int status_command(const Args& args) {
  static constexpr Spec kSpec{
      "status", "netmonctl [-s SOCKET] status [NAME] [--json]",
      "Shows every check of the running netmond (or the one named NAME): type, target,\n"
      "state and since when, the last latency and message, runs and failures.\n"
      "--json prints the daemon's response as it came (docs/control.md).\n",
      1};
  CommandLine cl;
  if (auto done = prologue(kSpec, args, &cl)) return *done;
  json request = {{"command", "status"}};
  if (!cl.positional.empty()) request["check"] = cl.positional[0];
  auto response = ask(request);
  if (!response) return kExitConnect;
  if (cl.json) print_json(*response);
  if (failed(*response)) return kExitFailed;
  if (!cl.json) print_table((*response)["checks"], isatty(STDOUT_FILENO) == 1);
  return kExitOk;
}

int run_command(const Args& args) {
  static constexpr Spec kSpec{
      "run", "netmonctl [-s SOCKET] run NAME [--json]",
      "Runs the check NAME now, out of its schedule, and prints its result (if a run is\n"
      "in flight, that run's). Exit status 0 when the run succeeded, 1 when not.\n",
      1};
  CommandLine cl;
  if (auto done = prologue(kSpec, args, &cl)) return *done;
  if (cl.positional.empty()) {
    fmt::print(stderr, "netmonctl run: missing NAME\nUsage: {}\n", kSpec.usage);
    return kExitUsage;
  }
  auto response = ask({{"command", "run"}, {"check", cl.positional[0]}});
  if (!response) return kExitConnect;
  if (cl.json) print_json(*response);
  if (failed(*response)) return kExitFailed;
  const json& r = (*response)["result"];
  if (!cl.json) fmt::print("{}\n", result_line(r));
  return r.value("ok", false) ? kExitOk : kExitFailed;
}

int reload_command(const Args& args) {
  static constexpr Spec kSpec{
      "reload", "netmonctl [-s SOCKET] reload [--json]",
      "Reloads netmond's configuration, as SIGHUP does, and prints what changed; a broken\n"
      "file is not applied: its errors are printed and the exit status is 1.\n",
      0};
  CommandLine cl;
  if (auto done = prologue(kSpec, args, &cl)) return *done;
  auto response = ask({{"command", "reload"}});
  if (!response) return kExitConnect;
  if (cl.json) {
    print_json(*response);
    return response->value("ok", false) ? kExitOk : kExitFailed;
  }
  if (auto it = response->find("errors"); it != response->end() && it->is_array())
    for (const json& e : *it)
      if (e.is_string()) fmt::print(stderr, "{}\n", e.get<std::string>());
  if (failed(*response)) return kExitFailed;
  fmt::print("reloaded: {} added, {} removed, {} changed, {} unchanged\n",
             response->value("added", 0), response->value("removed", 0),
             response->value("changed", 0), response->value("unchanged", 0));
  return kExitOk;
}

int watch_command(const Args& args) {
  static constexpr Spec kSpec{
      "watch", "netmonctl [-s SOCKET] watch [--json]",
      "Prints every result and state change of the running netmond as it happens, until\n"
      "Ctrl-C. --json prints the events as netmond's JSON log lines.\n",
      0};
  CommandLine cl;
  if (auto done = prologue(kSpec, args, &cl)) return *done;
  auto client = ControlClient::connect(control_socket());
  if (!client || !client->send({{"command", "watch"}})) return kExitConnect;
  // No SA_RESTART: Ctrl-C interrupts the blocking read, and we end cleanly. The previous
  // handlers come back on return: in the shell, Ctrl-C ends a watch, not the shell.
  struct Handlers {
    struct sigaction old_int {
    }, old_term{};
    Handlers() {
      g_interrupted = 0;
      struct sigaction sa {};
      sa.sa_handler = [](int) { g_interrupted = 1; };
      sigaction(SIGINT, &sa, &old_int);
      sigaction(SIGTERM, &sa, &old_term);
    }
    ~Handlers() {
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
    }
  } handlers;
  bool interrupted = false;
  auto ack = client->receive(&interrupted);
  if (interrupted) return kExitOk;
  if (!ack) return kExitConnect;
  if (failed(*ack)) return kExitFailed;
  for (;;) {
    auto e = client->receive(&interrupted);
    if (interrupted || g_interrupted) return kExitOk;
    if (!e) return kExitConnect;
    if (cl.json)
      print_json(*e);
    else if (text(*e, "event") == "state_change")
      fmt::print("{} {} state {} -> {}: {}\n", text(*e, "ts"), text(*e, "check"),
                 upper(text(*e, "from")), upper(text(*e, "to")), text(*e, "message"));
    else
      fmt::print("{} {}\n", text(*e, "ts"), result_line(*e));
    std::fflush(stdout);  // line by line, also into a pipe
  }
}

int version_command(const Args& args) {
  static constexpr Spec kSpec{"version", "netmonctl [-s SOCKET] version [--json]",
                              "Prints the version of the running netmond.\n", 0};
  CommandLine cl;
  if (auto done = prologue(kSpec, args, &cl)) return *done;
  auto response = ask({{"command", "version"}});
  if (!response) return kExitConnect;
  if (cl.json) print_json(*response);
  if (failed(*response)) return kExitFailed;
  if (!cl.json)
    fmt::print("netmond {} (pid {}, {} checks from {})\n", text(*response, "version"),
               response->value("pid", 0), response->value("checks", 0), text(*response, "config"));
  return kExitOk;
}

}  // namespace netmond::ctl
