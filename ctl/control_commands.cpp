// The commands that talk to a running netmond over its control socket: status, run,
// reload, watch, version. Each sends one request (docs/control.md) and prints the answer
// for people, or as it came with --json.
#include "base/duration.h"
#include "commands.h"
#include "control_client.h"
#include "status_text.h"

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

volatile std::sig_atomic_t g_interrupted = 0;

}  // namespace

int status_command(const Args& args) {
  static constexpr Spec kSpec{
      "status", "netmonctl [-s SOCKET] status [NAME] [--json | --names]",
      "Shows every check of the running netmond (or the one named NAME): type, target,\n"
      "state and since when, the last latency and message, runs and failures.\n"
      "--json prints the daemon's response as it came (docs/control.md).\n"
      "--names prints only the check names, one per line (for scripts and completion).\n",
      1};
  // --names is status's own option; the rest are every control command's.
  Args rest;
  bool names = false;
  for (const std::string& a : args) {
    if (a == "--names")
      names = true;
    else
      rest.push_back(a);
  }
  CommandLine cl;
  if (auto done = prologue(kSpec, rest, &cl)) return *done;
  if (names && cl.json) {
    fmt::print(stderr, "netmonctl status: --json and --names exclude each other\nUsage: {}\n",
               kSpec.usage);
    return kExitUsage;
  }
  json request = {{"command", "status"}};
  if (!cl.positional.empty()) request["check"] = cl.positional[0];
  auto response = ask(request);
  if (!response) return kExitConnect;
  if (cl.json) print_json(*response);
  if (failed(*response)) return kExitFailed;
  if (names) {
    for (const std::string& name : check_names(*response)) fmt::print("{}\n", name);
  } else if (!cl.json) {
    fmt::print("{}", status_table((*response)["checks"], isatty(STDOUT_FILENO) == 1));
  }
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
    else if (json_text(*e, "event") == "state_change")
      fmt::print("{} {} state {} -> {}: {}\n", json_text(*e, "ts"), json_text(*e, "check"),
                 upper_case(json_text(*e, "from")), upper_case(json_text(*e, "to")),
                 json_text(*e, "message"));
    else
      fmt::print("{} {}\n", json_text(*e, "ts"), result_line(*e));
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
    fmt::print("netmond {} (pid {}, {} checks from {})\n", json_text(*response, "version"),
               response->value("pid", 0), response->value("checks", 0),
               json_text(*response, "config"));
  return kExitOk;
}

}  // namespace netmond::ctl
