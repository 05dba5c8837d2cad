// netmonctl: netmond's command-line client. `netmonctl COMMAND [ARGS]`; the commands are
// the table below, so a new one is a function and a line.
#include "commands.h"
#include "control_client.h"
#include "params.h"

#include <netmond/version.h>

#include <fmt/format.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <span>

namespace netmond::ctl {
namespace {

int help_command(const Args& args);

constexpr Command kCommands[] = {
    {"status", "show the running netmond's checks: state, latency, last message", status_command},
    {"run", "run one check now and print its result", run_command},
    {"reload", "reload netmond's configuration (as SIGHUP) and print what changed", reload_command},
    {"watch", "print netmond's results and state changes as they happen", watch_command},
    {"version", "print the version of the running netmond", version_command},
    {"probe", "run one check once, without the daemon (also a Nagios plugin)", probe_command},
    {"echo", "check an RFC 862 echo server: RTT, loss, duplicates, reordering, corruption",
     echo_command},
    {"shell", "the interactive shell (what netmonctl alone starts on a terminal)", shell_command},
    {"help", "print the help of netmonctl or of a command", help_command},
};

}  // namespace

std::span<const Command> commands() { return kCommands; }

const Command* find_command(std::string_view name) {
  for (const Command& c : kCommands)
    if (c.name == name) return &c;
  return nullptr;
}

int unknown_command(std::string_view name) {
  std::vector<std::string_view> names;
  for (const Command& c : kCommands) names.push_back(c.name);
  std::string suggestion = closest_match(name, names);
  fmt::print(stderr, "netmonctl: unknown command '{}'{}\n", name,
             suggestion.empty() ? "" : fmt::format(" (did you mean '{}'?)", suggestion));
  fmt::print(stderr, "Run 'netmonctl --help' for the list of commands.\n");
  return kExitUsage;
}

namespace {

std::string usage() {
  std::string s =
      "Usage: netmonctl [--help | --version] [-s SOCKET] COMMAND [ARGS]\n"
      "\n"
      "The netmond command-line client.\n"
      "\n"
      "Options:\n"
      "  -s, --socket SOCKET  netmond's control socket (default /run/netmond/control.sock)\n"
      "\n"
      "Commands:\n";
  for (const Command& c : kCommands) s += fmt::format("  {:<8} {}\n", c.name, c.summary);
  s += "\n"
       "Run 'netmonctl COMMAND --help' for a command's arguments and options.\n"
       "\n"
       "Exit status: 0 success; 1 the command found a problem; 2 usage error;\n"
       "3 netmond's control socket cannot be reached.\n"
       "Documentation: netmonctl(1), /usr/share/doc/netmond/netmonctl.md\n";
  return s;
}

int help_command(const Args& args) {
  if (args.empty()) {
    fmt::print("{}", usage());
    return kExitOk;
  }
  if (args.size() > 1 || args[0].starts_with("-")) {
    fmt::print(stderr, "Usage: netmonctl help [COMMAND]\n");
    return kExitUsage;
  }
  const Command* c = find_command(args[0]);
  if (c == nullptr) return unknown_command(args[0]);
  return c->run({"--help"});
}

int run(std::span<char*> argv) {
  if (argv.empty()) {
    // On a terminal, the shell; in a script, no command is a usage error.
    if (isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1) return shell_command({});
    fmt::print(stderr, "{}", usage());
    return kExitUsage;
  }
  std::string_view first = argv[0];
  // -s SOCKET, --socket SOCKET, --socket=SOCKET: before the command.
  if (first == "-s" || first == "--socket" || first.starts_with("--socket=")) {
    size_t used = 1;
    if (first.starts_with("--socket=")) {
      control_socket() = std::string(first.substr(9));
    } else if (argv.size() < 2) {
      fmt::print(stderr, "netmonctl: {} needs a value\n", first);
      return kExitUsage;
    } else {
      control_socket() = argv[1];
      used = 2;
    }
    if (control_socket().empty()) {
      fmt::print(stderr, "netmonctl: {}: the socket path is empty\n", first);
      return kExitUsage;
    }
    return run(argv.subspan(used));
  }
  if (first == "-h" || first == "--help") return help_command({});
  if (first == "--version") {
    fmt::print("netmonctl {}\n", kVersion);
    return kExitOk;
  }
  if (first.starts_with("-")) {
    fmt::print(stderr, "netmonctl: unknown option '{}'\n", first);
    fmt::print(stderr, "Run 'netmonctl --help' for usage.\n");
    return kExitUsage;
  }
  const Command* c = find_command(first);
  if (c == nullptr) return unknown_command(first);
  return c->run(Args(argv.begin() + 1, argv.end()));
}

}  // namespace
}  // namespace netmond::ctl

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout or TCP peer is an error value, not death
  return netmond::ctl::run(std::span<char*>(argv + 1, static_cast<std::size_t>(argc - 1)));
}
