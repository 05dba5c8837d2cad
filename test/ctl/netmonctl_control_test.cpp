// Black-box tests of netmonctl's control commands (status, run, reload, watch, version)
// against a real netmond with its control socket in the test's temporary directory.
#include "support/control_client.h"
#include "support/daemon_config.h"
#include "support/peers.h"
#include "support/process.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <thread>

using namespace netmond::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kCtl = NETMONCTL_BIN;

std::string config_yaml(const std::string& socket, int open_port, int closed_port) {
  return "control: {socket: " + socket + "}\n" + two_tcp_checks(open_port, closed_port, "1h");
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("netmonctl status, run, reload, watch and version against a running netmond",
          "[control][ctl]") {
  TcpListener open("127.0.0.1");
  const int closed = closed_tcp_port("127.0.0.1");
  const auto dir = temp_dir();
  const std::string socket = dir + "/control.sock";
  const auto cfg = write_file(dir, "n.yaml", config_yaml(socket, open.port(), closed));
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(wait_for_socket(socket, 5s));

  auto r = run({kCtl, "-s", socket, "run", "open"});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("open UP ", 0) == 0);
  r = run({kCtl, "--socket", socket, "run", "closed"});
  CHECK(r.code == 1);
  CHECK(has(r.out, "closed DOWN "));
  CHECK(has(r.out, "refused: connection refused"));
  r = run({kCtl, "-s", socket, "run", "nope"});
  CHECK(r.code == 1);
  CHECK(has(r.err, "netmonctl: no check named 'nope'"));

  // The table (no colour: stdout is a pipe).
  r = run({kCtl, "-s", socket, "status"});
  CHECK(r.code == 0);
  INFO(r.out);
  CHECK(r.out.rfind("NAME", 0) == 0);
  for (const char* col :
       {"TYPE", "TARGET", "STATE", "SINCE", "LATENCY", "RUNS", "FAILURES", "MESSAGE"})
    CHECK(has(r.out, col));
  CHECK(has(r.out, "DOWN"));
  CHECK(has(r.out, "UP"));
  CHECK(has(r.out, "127.0.0.1:" + std::to_string(closed)));
  CHECK(!has(r.out, "\033["));

  r = run({kCtl, "-s", socket, "status", "closed", "--json"});
  CHECK(r.code == 0);
  json j = json::parse(r.out);
  CHECK(j["ok"] == true);
  REQUIRE(j["checks"].size() == 1);
  CHECK(j["checks"][0]["name"] == "closed");
  CHECK(j["checks"][0]["runs"] == 1);

  r = run({kCtl, "-s", socket, "status", "--names"});
  CHECK(r.code == 0);
  CHECK(r.out == "closed\nopen\n");
  r = run({kCtl, "-s", socket, "status", "--names", "--json"});
  CHECK(r.code == 2);
  CHECK(has(r.err, "--json and --names exclude each other"));

  r = run({kCtl, "-s", socket, "version"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "(pid " + std::to_string(d.pid()) + ", 2 checks from " + cfg + ")"));

  // watch --json: events as they happen, until interrupted.
  ChildProcess watch({kCtl, "-s", socket, "watch", "--json"});
  std::this_thread::sleep_for(200ms);  // subscribed before the run below
  CHECK(run({kCtl, "-s", socket, "run", "open"}).code == 0);
  REQUIRE(watch.wait_for_output("\"event\":\"result\"", 5s));
  watch.signal(SIGINT);
  CHECK(watch.wait(5s) == 0);

  // reload: broken (errors with file:line:col, exit 1), then good.
  write_file(dir, "n.yaml", config_yaml(socket, open.port(), closed) + "  - address: [\n");
  r = run({kCtl, "-s", socket, "reload"});
  CHECK(r.code == 1);
  CHECK(has(r.err, cfg + ":"));
  CHECK(has(r.err, "reload failed, keeping the running configuration"));
  write_file(dir, "n.yaml", config_yaml(socket, open.port(), open.port()));
  r = run({kCtl, "-s", socket, "reload"});
  CHECK(r.code == 0);
  CHECK(r.out == "reloaded: 0 added, 0 removed, 1 changed, 1 unchanged\n");

  d.signal(SIGTERM);
  CHECK(d.wait(5s) == 0);

  // The daemon is gone: a clear message and exit 3.
  r = run({kCtl, "-s", socket, "status"});
  CHECK(r.code == 3);
  CHECK(r.err == "netmonctl: cannot connect to " + socket +
                     ": No such file or directory — is netmond running?\n");
}

TEST_CASE("netmonctl control commands: usage errors exit 2", "[ctl]") {
  CHECK(run({kCtl, "run"}).code == 2);
  CHECK(run({kCtl, "status", "a", "b"}).code == 2);
  CHECK(run({kCtl, "reload", "--bogus"}).code == 2);
  CHECK(run({kCtl, "-s"}).code == 2);
  auto help = run({kCtl, "status", "--help"});
  CHECK(help.code == 0);
  CHECK(has(help.out, "Usage: netmonctl [-s SOCKET] status [NAME] [--json | --names]"));
  auto top = run({kCtl, "--help"});
  CHECK(has(top.out, "-s, --socket SOCKET"));
  CHECK(has(top.out, "3 netmond's control socket cannot be reached"));
}
