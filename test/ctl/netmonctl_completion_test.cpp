// The bash completion script of netmonctl (packaging/bash-completion/netmonctl), run by bash
// as readline would run it, against the netmonctl binary and a real netmond whose check
// names it completes.
#include "support/control_client.h"
#include "support/peers.h"
#include "support/process.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

const std::string kScript = NETMOND_SOURCE_DIR "/packaging/bash-completion/netmonctl";

// The candidates bash's completion offers for `line` (the cursor at its end), given the
// words readline splits it into (COMP_WORDS: also split at ':'; the last is the one being
// completed, "" after a space), in the order the script gives them.
std::vector<std::string> complete(const std::string& line, std::vector<std::string> words) {
  static const std::string harness = R"(
    source "$1"
    COMP_LINE=$2 COMP_POINT=${#2} COMP_WORDBREAKS=$' \t\n"'"'"'><=;|&(:'
    shift 2
    COMP_WORDS=("$@") COMP_CWORD=$(($# - 1))
    _netmonctl
    for c in "${COMPREPLY[@]}"; do printf '%s\n' "$c"; done)";
  std::vector<std::string> argv = {"/bin/bash", "-c", harness, "bash", kScript, line};
  argv.insert(argv.end(), words.begin(), words.end());
  auto r = run(argv, 20s);
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::vector<std::string> out;
  for (std::size_t start = 0, end; (end = r.out.find('\n', start)) != std::string::npos;
       start = end + 1)
    out.push_back(r.out.substr(start, end - start));
  return out;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("bash completion of netmonctl: commands, and check names from the running daemon",
          "[ctl][completion]") {
  TcpListener open("127.0.0.1");
  const std::string port = std::to_string(open.port());
  const auto dir = temp_dir();
  const std::string socket = dir + "/control.sock";
  // Two named checks and one named by netmond: "127.0.0.1/tcp:PORT", with a ':' in it.
  const auto cfg = write_file(dir, "n.yaml",
                              "control: {socket: " + socket +
                                  "}\n"
                                  "servers:\n"
                                  "  - address: 127.0.0.1\n"
                                  "    interval: 1h\n"
                                  "    services:\n"
                                  "      - {type: tcp, port: " +
                                  port +
                                  ", name: web}\n"
                                  "      - {type: tcp, port: " +
                                  port +
                                  ", name: web-backup}\n"
                                  "      - {type: tcp, port: " +
                                  port + "}\n");
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(wait_for_socket(socket, 5s));
  const std::string ctl = NETMONCTL_BIN;
  const std::string auto_name = "127.0.0.1/tcp:" + port;

  CHECK(complete(ctl + " re", {ctl, "re"}) == Names{"reload"});
  CHECK(complete(ctl + " -s " + socket + " run w", {ctl, "-s", socket, "run", "w"}) ==
        Names{"web", "web-backup"});
  CHECK(complete(ctl + " --socket=" + socket + " status ",
                 {ctl, "--socket", "=", socket, "status", ""}) ==
        Names{auto_name, "web", "web-backup"});  // in the daemon's order: by name
  // readline splits at ':' and replaces the part after it: that part is the candidate.
  CHECK(complete(ctl + " -s " + socket + " run 127.0.0.1/tcp:",
                 {ctl, "-s", socket, "run", "127.0.0.1/tcp", ":", ""}) == Names{port});
  CHECK(complete(ctl + " -s " + socket + " run 127.0.0.1/tc",
                 {ctl, "-s", socket, "run", "127.0.0.1/tc"}) == Names{auto_name});
  // Only the first argument is a check name.
  CHECK(
      complete(ctl + " -s " + socket + " run web ", {ctl, "-s", socket, "run", "web", ""}).empty());
  // Another socket, where no daemon answers: no candidates, and nothing printed.
  CHECK(complete(ctl + " -s " + dir + "/none.sock run ", {ctl, "-s", dir + "/none.sock", "run", ""})
            .empty());
}
