// `netmonctl` on a terminal (or `netmonctl shell`): the interactive shell, the seed's
// "Enter command:" console done with a line editor. Each line is split into words and
// run by the same function as the subcommand of that name, so the output is the
// subcommands' own. libedit (its readline interface) gives editing, history and tab
// completion: of commands, of check names (asked from the daemon at the moment of the
// Tab), and of probe types.
#include "commands.h"
#include "console.h"
#include "control_client.h"
#include "registry.h"

#include <editline/readline.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace netmond::ctl {
namespace {

volatile std::sig_atomic_t g_prompt_interrupted = 0;

// Splits a line into words: blanks separate, single and double quotes group, a backslash
// escapes the next character. nullopt (and `error`) for an unterminated quote.
std::optional<std::vector<std::string>> split_words(const std::string& line, std::string* error) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote != 0) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < line.size())
        word += line[++i];
      else
        word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::exchange(word, {}));
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote != 0) {
    *error = fmt::format("unterminated {} quote", quote == '"' ? "double" : "single");
    return std::nullopt;
  }
  if (in_word) words.push_back(word);
  return words;
}

// The names of the running daemon's checks; empty when it cannot be asked. Quiet: this
// runs while the user types.
std::vector<std::string> check_names() {
  std::vector<std::string> names;
  auto client = ControlClient::connect(control_socket(), /*quiet=*/true);
  if (!client || !client->send({{"command", "status"}})) return names;
  auto response = client->receive();
  return response ? ctl::check_names(*response) : names;
}

// The candidates for the word being completed, given the words before it.
std::vector<std::string> candidates(const std::vector<std::string>& before) {
  std::vector<std::string> out;
  if (before.empty()) {
    for (const Command& c : commands()) out.emplace_back(c.name);
    out.emplace_back("exit");
    out.emplace_back("quit");
  } else if (before.size() == 1 && (before[0] == "status" || before[0] == "run")) {
    out = check_names();
  } else if (before.size() == 1 && before[0] == "probe") {
    for (std::string_view t : known_type_names()) out.emplace_back(t);
  } else if (before.size() == 1 && before[0] == "help") {
    for (const Command& c : commands()) out.emplace_back(c.name);
  }
  return out;
}

char** complete(const char* text, int start, int /*end*/) {
  std::string error;
  auto before = split_words(std::string(rl_line_buffer, static_cast<size_t>(start)), &error);
  return Console::complete_from(text, before ? candidates(*before) : std::vector<std::string>{});
}

// Where the history is kept between sessions: $XDG_STATE_HOME/netmonctl_history or
// ~/.local/state/netmonctl_history; "" (history for this session only) without a home.
std::string history_file() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state == '/')
    return std::string(state) + "/netmonctl_history";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/')
    return std::string(home) + "/.local/state/netmonctl_history";
  return "";
}

constexpr std::string_view kShellHelp =
    "Commands: status [NAME], run NAME, reload, watch (Ctrl-C ends it), version,\n"
    "probe TYPE TARGET [--set KEY=VALUE]..., echo HOST[:PORT], help [COMMAND], exit.\n"
    "Tab completes commands, check names and probe types; 'help COMMAND' or\n"
    "'COMMAND --help' shows a command's options.\n";

}  // namespace

int shell_command(const Args& args) {
  if (!args.empty()) {
    if (args[0] == "-h" || args[0] == "--help") {
      fmt::print(
          "Usage: netmonctl [-s SOCKET] shell\n\n"
          "The interactive shell (also what 'netmonctl' alone starts on a terminal): a\n"
          "'netmond> ' prompt taking the commands of netmonctl, with line editing, history\n"
          "(kept in ~/.local/state/netmonctl_history) and Tab completion of commands, check\n"
          "names and probe types. 'exit', 'quit' or Ctrl-D leaves it.\n");
      return kExitOk;
    }
    fmt::print(stderr, "netmonctl shell: unexpected argument '{}'\n", args[0]);
    return kExitUsage;
  }
  rl_readline_name = "netmonctl";  // for $if netmonctl in ~/.editrc / ~/.inputrc
  rl_attempted_completion_function = complete;
  using_history();
  const std::string history = history_file();
  if (!history.empty()) read_history(history.c_str());

  // Ctrl-C at the prompt drops the line being typed, as in a shell; it never ends netmonctl.
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) { g_prompt_interrupted = 1; };
  sigaction(SIGINT, &sa, &old);

  const bool terminal = isatty(STDIN_FILENO) == 1;
  if (terminal) fmt::print("netmonctl shell: 'help' lists the commands, 'exit' leaves.\n");
  std::fflush(stdout);
  for (;;) {
    g_prompt_interrupted = 0;
    char* raw = readline("netmond> ");
    if (raw == nullptr) {
      if (g_prompt_interrupted) {
        fmt::print("\n");
        continue;
      }
      if (terminal) fmt::print("\n");  // Ctrl-D: end the prompt's line
      break;
    }
    std::string line(raw);
    std::free(raw);
    std::string error;
    auto words = split_words(line, &error);
    if (!words) {
      fmt::print(stderr, "netmonctl: {}\n", error);
      continue;
    }
    if (words->empty()) continue;
    add_history(line.c_str());
    const std::string& name = (*words)[0];
    if (name == "exit" || name == "quit") break;
    if (name == "shell") {
      fmt::print(stderr, "netmonctl: already in the shell\n");
      continue;
    }
    if (name == "help" && words->size() == 1) {
      fmt::print("{}", kShellHelp);
      continue;
    }
    const Command* c = find_command(name);
    if (c == nullptr) {
      unknown_command(name);
      continue;
    }
    c->run(Args(words->begin() + 1, words->end()));
    std::fflush(stdout);
    std::fflush(stderr);
  }
  sigaction(SIGINT, &old, nullptr);
  if (!history.empty()) {
    stifle_history(1000);
    if (write_history(history.c_str()) != 0) {
      // The directory may not exist yet (a fresh account): make it once, then try again.
      const std::string dir = history.substr(0, history.rfind('/'));
      std::string parent = dir.substr(0, dir.rfind('/'));
      ::mkdir(parent.c_str(), 0700);
      ::mkdir(dir.c_str(), 0700);
      write_history(history.c_str());
    }
  }
  return kExitOk;
}

}  // namespace netmond::ctl
