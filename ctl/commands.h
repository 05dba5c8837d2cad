// netmonctl's commands. Each is one entry of the table in main.cpp: a name, a one-line
// summary for `netmonctl --help`, and a function given the arguments after the command's
// name. A command prints its own help for -h/--help.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace netmond::ctl {

// Exit codes shared by every command (documented in docs/netmonctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;   // the command ran and found a problem
inline constexpr int kExitUsage = 2;    // bad command line
inline constexpr int kExitConnect = 3;  // netmond's control socket cannot be reached

using Args = std::vector<std::string>;

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(const Args& args);
};

// The table of commands (main.cpp), and lookups in it for the shell.
std::span<const Command> commands();
const Command* find_command(std::string_view name);
// Prints "unknown command 'x' (did you mean 'y'?)" to stderr; returns kExitUsage.
int unknown_command(std::string_view name);

// `netmonctl shell`, and `netmonctl` alone on a terminal: the interactive shell
// (shell.cpp).
int shell_command(const Args& args);

// `netmonctl echo HOST[:PORT] [MESSAGE] [OPTIONS]`: the RFC 862 echo client.
int echo_command(const Args& args);

// The commands of the control socket (control_commands.cpp), talking to the socket named
// by control_socket() (control_client.h).
int status_command(const Args& args);
int run_command(const Args& args);
int reload_command(const Args& args);
int watch_command(const Args& args);
int version_command(const Args& args);

// `netmonctl probe TYPE TARGET [--set KEY=VALUE]...`: one check, once, without the daemon
// (probe_command.cpp); also a Nagios/Icinga plugin with --format nagios.
int probe_command(const Args& args);

}  // namespace netmond::ctl
