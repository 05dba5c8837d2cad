// The console: netmond in the foreground with a terminal on stdin takes commands at a
// `netmond> ` prompt, as the seed's monitor did ("Enter command: exit"). It runs on the
// daemon's loop: libedit's callback interface reads one key at a time when a uv poll says
// stdin is readable, so the loop never blocks on the terminal. Results keep printing above
// the prompt (log::set_terminal_hooks). Commands: status [NAME], run NAME, reload, help,
// exit/quit (or Ctrl-D), with Tab completion of commands and check names.
//
// libedit's callback interface is process-global, hence one Console at a time.
#pragma once

#include "scheduler.h"

#include "base/uv.h"

#include <functional>
#include <string>
#include <vector>

namespace netmond {

class Console {
 public:
  struct Hooks {
    std::function<void()> reload;  // as SIGHUP
    std::function<void()> exit;    // as SIGTERM
  };

  // Whether to run one: stdin and stdout are terminals and systemd did not start us.
  static bool wanted();

  // libedit's answer to a Tab: the `candidates` that start with `text`, and never file
  // names. Shared with netmonctl's shell (ctl/shell.cpp).
  static char** complete_from(const char* text, std::vector<std::string> candidates);

  Console(uv_loop_t* loop, Scheduler& scheduler, Hooks hooks);
  // Takes the prompt off the screen and gives the terminal back as it was.
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

 private:
  static void on_line(char* line);  // libedit's handler
  static char** complete(const char* text, int start, int end);
  void handle(const std::string& line);
  void print(const std::string& text);  // above the prompt

  Scheduler& scheduler_;
  Hooks hooks_;
  uv::Poll stdin_;
  bool ended_ = false;  // exit asked: no more input
};

}  // namespace netmond
