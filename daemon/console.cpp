#include "console.h"

#include "control.h"
#include "log.h"
#include "status_text.h"

#include <editline/readline.h>
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

namespace netmond {

namespace {

Console* g_console = nullptr;        // libedit's callbacks are plain functions
std::vector<std::string> g_matches;  // of the completion in progress

constexpr const char* kPrompt = "netmond> ";
constexpr const char* kHelp =
    "Commands: status [NAME], run NAME, reload, help, exit (or quit, or Ctrl-D).\n"
    "Tab completes commands and check names. Results print above the prompt.\n";

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

char* next_match(const char* text, int state) {
  static size_t index;
  if (state == 0) index = 0;
  const size_t len = std::strlen(text);
  while (index < g_matches.size()) {
    const std::string& m = g_matches[index++];
    if (m.compare(0, len, text) == 0) return ::strdup(m.c_str());
  }
  return nullptr;
}

// Prompt off: back to the start of the line and clear it.
void clear_prompt_line() { std::fputs("\r\033[K", stdout); }

}  // namespace

bool Console::wanted() {
  // INVOCATION_ID: started by systemd (whatever its stdin); never a console there.
  return isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 &&
         std::getenv("INVOCATION_ID") == nullptr && std::getenv("NOTIFY_SOCKET") == nullptr;
}

Console::Console(uv_loop_t* loop, Scheduler& scheduler, Hooks hooks)
    : scheduler_(scheduler), hooks_(std::move(hooks)) {
  g_console = this;
  rl_readline_name = "netmond";
  rl_attempted_completion_function = complete;
  using_history();
  rl_callback_handler_install(kPrompt, on_line);
  log::set_terminal_hooks(clear_prompt_line, [] {
    if (g_console != nullptr && !g_console->ended_) rl_forced_update_display();
  });
  if (stdin_.init(loop, STDIN_FILENO) == 0)
    stdin_.start(UV_READABLE, [](int status, int) {
      if (g_console == nullptr || g_console->ended_) return;
      if (status < 0) {  // the terminal went away (hangup): as Ctrl-D
        g_console->stdin_.stop();
        return on_line(nullptr);
      }
      rl_callback_read_char();
    });
}

Console::~Console() {
  log::set_terminal_hooks({}, {});
  stdin_.reset();
  if (!ended_) clear_prompt_line();
  rl_callback_handler_remove();  // restores the terminal's modes
  std::fflush(stdout);
  g_console = nullptr;
}

void Console::on_line(char* raw) {
  Console* self = g_console;
  if (self == nullptr) return std::free(raw);
  if (raw == nullptr) {  // Ctrl-D
    std::fputs("\n", stdout);
    self->handle("exit");
    return;
  }
  std::string line(raw);
  std::free(raw);
  if (line.find_first_not_of(" \t") != std::string::npos) add_history(line.c_str());
  self->handle(line);
  // libedit (3.1-2022) leaves its line mode after calling us, and its next el_gets would
  // read a whole line, blocking the loop: installing the handler again restores the
  // one-key mode, empties the line and draws a fresh prompt.
  if (g_console == self && !self->ended_) rl_callback_handler_install(kPrompt, on_line);
}

char** Console::complete_from(const char* text, std::vector<std::string> candidates) {
  g_matches = std::move(candidates);
  rl_attempted_completion_over = 1;  // never file names
  return rl_completion_matches(text, next_match);
}

char** Console::complete(const char* text, int start, int) {
  std::vector<std::string> candidates;
  auto before = words_of(std::string(rl_line_buffer, static_cast<size_t>(start)));
  if (before.empty()) {
    candidates = {"status", "run", "reload", "help", "exit", "quit"};
  } else if (before.size() == 1 && (before[0] == "status" || before[0] == "run") &&
             g_console != nullptr) {
    g_console->scheduler_.for_each(
        [&](const CheckRunner& r) { candidates.push_back(r.config().name); });
  }
  return complete_from(text, std::move(candidates));
}

void Console::print(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

void Console::handle(const std::string& line) {
  const std::vector<std::string> words = words_of(line);
  if (words.empty()) return;
  const std::string& command = words[0];
  if (command == "exit" || command == "quit") {
    // The daemon stops as on SIGTERM; the prompt does not come back.
    // The terminal is given back by the destructor, outside libedit's callback.
    ended_ = true;
    stdin_.stop();
    return hooks_.exit();
  }
  if (command == "help") return print(kHelp);
  if (command == "status") {
    nlohmann::ordered_json checks = nlohmann::ordered_json::array();
    if (words.size() > 1) {
      const CheckRunner* r = std::as_const(scheduler_).find(words[1]);
      if (r == nullptr) return print(fmt::format("no check named '{}'\n", words[1]));
      checks.push_back(check_status_json(*r));
    } else {
      scheduler_.for_each([&](const CheckRunner& r) { checks.push_back(check_status_json(r)); });
    }
    return print(status_table(checks, true));
  }
  if (command == "run") {
    if (words.size() < 2) return print("run needs the name of a check (Tab completes it)\n");
    CheckRunner* r = scheduler_.find(words[1]);
    if (r == nullptr) return print(fmt::format("no check named '{}'\n", words[1]));
    // Its result line is logged when the run ends, above the prompt, as every result is.
    r->run_now();
    return;
  }
  if (command == "reload") return hooks_.reload();
  print(
      fmt::format("unknown command '{}': status [NAME], run NAME, reload, help, exit\n", command));
}

}  // namespace netmond
