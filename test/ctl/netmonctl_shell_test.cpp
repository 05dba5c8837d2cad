// The interactive shell of netmonctl, driven through a pseudo-terminal as a person types
// into it: the prompt, Tab completion of a command and of a check name (asked from a real
// netmond), the commands' own output, history kept in a file, and `exit`.
#include "support/control_client.h"
#include "support/daemon_config.h"
#include "support/peers.h"
#include "support/process.h"
#include "support/pty.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

const std::string kCtl = NETMONCTL_BIN;

}  // namespace

TEST_CASE("netmonctl alone on a terminal is a shell: completion, commands, history, exit",
          "[ctl][shell]") {
  TcpListener open("127.0.0.1");
  const auto dir = temp_dir();
  const std::string socket = dir + "/control.sock";
  const auto cfg = write_file(dir, "n.yaml",
                              "control: {socket: " + socket + "}\n" +
                                  two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "1h"));
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(wait_for_socket(socket, 5s));

  Terminal t({kCtl, "-s", socket}, dir);
  REQUIRE(t.started());
  REQUIRE(t.expect("netmond> "));

  // Tab completes the command (libedit redraws: the completion is written after a
  // cursor move, so the test looks for the completed part)...
  t.type("sta\t");
  REQUIRE(t.expect("tus "));
  t.type("\n");
  REQUIRE(t.expect("NAME"));
  REQUIRE(t.expect("open"));
  REQUIRE(t.expect("netmond> "));
  // ... and a check name, asked from the daemon.
  t.type("run op\t");
  REQUIRE(t.expect("en "));
  t.type("\n");
  REQUIRE(t.expect("open UP "));
  REQUIRE(t.expect("netmond> "));
  // An unknown command is an error, and the shell goes on.
  t.type("stauts\n");
  REQUIRE(t.expect("unknown command 'stauts' (did you mean 'status'?)"));
  REQUIRE(t.expect("netmond> "));
  // Ctrl-C drops the line being typed; it does not end the shell.
  t.type("reload");
  t.type("\x03");
  REQUIRE(t.expect("netmond> "));
  t.type("version\n");
  REQUIRE(t.expect("netmond "));
  REQUIRE(t.expect("pid "));
  REQUIRE(t.expect("netmond> "));

  t.type("exit\n");
  CHECK(t.wait() == 0);
  // The history outlives the session.
  std::ifstream history(dir + "/.local/state/netmonctl_history");
  std::stringstream text;
  text << history.rdbuf();
  // (libedit's file encodes blanks: "run\040open\040")
  CHECK(text.str().find("version") != std::string::npos);
  CHECK(text.str().find("open") != std::string::npos);
  CHECK(text.str().find("reload") == std::string::npos);  // interrupted, never entered
}

TEST_CASE("netmonctl shell ends on Ctrl-D, without a terminal it reads commands", "[ctl][shell]") {
  const auto dir = temp_dir();
  Terminal t({kCtl, "-s", dir + "/none.sock", "shell"}, dir);
  REQUIRE(t.started());
  REQUIRE(t.expect("netmond> "));
  t.type("status\n");
  REQUIRE(t.expect("is netmond running?"));
  REQUIRE(t.expect("netmond> "));
  t.type("\x04");
  CHECK(t.wait() == 0);

  // Piped: the same commands, the same output, no prompt needed.
  auto in = write_file(dir, "in.txt", "probe tcp 127.0.0.1 --set port=1\nexit\n");
  auto r = run({"/bin/sh", "-c", "'" + kCtl + "' shell < '" + in + "'"});
  CHECK(r.code == 0);
  CHECK(r.out.find("127.0.0.1/tcp:1 DOWN ") != std::string::npos);
}
