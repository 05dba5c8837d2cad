// netmond's console: in the foreground on a terminal, a netmond> prompt under the results
// (the seed's "Enter command: exit"), driven through a pseudo-terminal.
#include "support/daemon_config.h"
#include "support/peers.h"
#include "support/process.h"
#include "support/pty.h"

#include <catch2/catch.hpp>

using namespace netmond::test;
using namespace std::chrono_literals;

TEST_CASE("netmond on a terminal: status, run with completion, reload, exit", "[daemon][console]") {
  TcpListener open("127.0.0.1");
  const auto dir = temp_dir();
  const auto cfg = write_file(
      dir, "n.yaml", kNoControl + two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "1h"));
  Terminal t({netmond_bin(), "-c", cfg}, dir);
  REQUIRE(t.started());
  REQUIRE(t.expect("netmond> "));

  t.type("status\n");
  REQUIRE(t.expect("NAME"));
  REQUIRE(t.expect("closed"));
  REQUIRE(t.expect("netmond> "));
  // Tab completes the check name; the run's result is logged like every result.
  t.type("run op\t");
  REQUIRE(t.expect("en "));
  t.type("\n");
  // The result prints above the prompt, which comes back under it.
  REQUIRE(t.expect(" open UP "));
  REQUIRE(t.expect("netmond> "));
  t.type("reload\n");
  REQUIRE(t.expect("reloaded: 0 added, 0 removed, 0 changed, 2 unchanged"));
  REQUIRE(t.expect("netmond> "));
  t.type("frobnicate\n");
  REQUIRE(t.expect("unknown command 'frobnicate'"));
  REQUIRE(t.expect("netmond> "));

  // exit stops the daemon cleanly, as SIGTERM does.
  t.type("exit\n");
  REQUIRE(t.expect("stopping"));
  CHECK(t.wait() == 0);
  CHECK(t.output().find("handles left open") == std::string::npos);
}

TEST_CASE("netmond's console: Ctrl-D stops, --no-console has no prompt", "[daemon][console]") {
  const auto dir = temp_dir();
  const auto cfg = write_file(dir, "n.yaml",
                              kNoControl + two_tcp_checks(closed_tcp_port("127.0.0.1"),
                                                          closed_tcp_port("127.0.0.1"), "100ms"));
  {
    Terminal t({netmond_bin(), "-c", cfg}, dir);
    REQUIRE(t.started());
    REQUIRE(t.expect("netmond> "));
    t.type("\x04");
    REQUIRE(t.expect("stopping"));
    CHECK(t.wait() == 0);
  }
  Terminal quiet({netmond_bin(), "--no-console", "-c", cfg}, dir);
  REQUIRE(quiet.started());
  REQUIRE(quiet.expect(" closed DOWN "));
  REQUIRE(quiet.expect(" open DOWN "));
  CHECK(quiet.output().find("netmond> ") == std::string::npos);
  quiet.type("exit\n");  // not a command: the terminal only echoes it
  CHECK_FALSE(quiet.wait(500ms));
}
