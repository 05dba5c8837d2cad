// Black-box tests of the Prometheus metrics (docs/metrics.md) on the real netmond binary:
// /metrics scraped during a run is valid for promtool and its counters move, other paths
// and methods are refused, a reload removes checks and moves or stops the listener, a
// port already taken is one warning, and the textfile is replaced atomically.
#include "support/daemon_config.h"
#include "support/http_client.h"
#include "support/peers.h"
#include "support/process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

using namespace netmond;
using namespace netmond::test;
using namespace std::chrono_literals;

namespace {

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// The value of the first sample of `name` whose labels contain every one of `labels`.
std::optional<double> sample(const std::string& text, const std::string& name,
                             std::initializer_list<std::string> labels = {}) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

// promtool check metrics on `text`: {exit code, its output}. promtool comes with
// scripts/install-deps.sh (the prometheus package); without it the test fails.
std::pair<int, std::string> promtool_check(const std::string& text) {
  std::string file = write_file(temp_dir(), "scrape.prom", text);
  RunResult r = run({"/bin/sh", "-c", "promtool check metrics < " + file + " 2>&1"});
  return {r.code, r.out + r.err};
}

void require_promtool() {
  INFO("promtool is missing: run scripts/install-deps.sh (Debian package prometheus)");
  REQUIRE(run({"/bin/sh", "-c", "command -v promtool"}).code == 0);
}

// A netmond with the control socket off, and its configuration file.
struct Daemon {
  explicit Daemon(const std::string& yaml) : dir(temp_dir()) {
    config = write_file(dir, "n.yaml", kNoControl + yaml);
    process = std::make_unique<ChildProcess>(std::vector<std::string>{netmond_bin(), "-c", config});
  }
  void reconfigure(const std::string& yaml) {
    write_file(dir, "n.yaml", kNoControl + yaml);
    process->signal(SIGHUP);
  }
  std::optional<int> stop() {
    process->signal(SIGTERM);
    return process->wait(5s);
  }
  std::string dir, config;
  std::unique_ptr<ChildProcess> process;
};

std::string metrics_listen(const std::string& listen) {
  return "metrics: {listen: \"" + listen + "\"}\n";
}

// "closed" (a refused tcp port, every 200ms) and, unless `only_closed`, `open "quoted"` (an
// open port every 2s: the listener never accepts, so its queue must fill slowly).
std::string checks(int open_port, int closed_port, bool only_closed = false) {
  std::string s =
      "servers:\n"
      "  - address: 127.0.0.1\n"
      "    services:\n"
      "      - {type: tcp, port: " +
      std::to_string(closed_port) + ", name: closed, interval: 200ms, timeout: 150ms}\n";
  if (!only_closed)
    s += "      - {type: tcp, port: " + std::to_string(open_port) +
         ", name: \"open \\\"quoted\\\"\", interval: 2s}\n";
  return s;
}

}  // namespace

TEST_CASE("metrics: /metrics during a run is promtool-valid and its counters move", "[metrics]") {
  require_promtool();
  TcpListener open("127.0.0.1");
  const int port = closed_tcp_port("127.0.0.1");
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  Daemon d(metrics_listen("127.0.0.1:" + std::to_string(port)) +
           checks(open.port(), closed_tcp_port("127.0.0.1")));
  REQUIRE(d.process->wait_for_output("metrics listening on http://127.0.0.1:", 5s));

  HttpReply first;
  REQUIRE(eventually([&] {
    first = http(base + "/metrics");
    return first.status == 200 &&
           sample(first.body, "netmond_check_runs_total", {"check=\"closed\"", "failure"})
                   .value_or(0) >= 2 &&
           sample(first.body, "probe_success", {"check=\"open \\\"quoted\\\"\""});
  }));
  INFO(first.body);
  auto [code, out] = promtool_check(first.body);
  INFO(out);
  CHECK(code == 0);

  CHECK(sample(first.body, "netmond_build_info", {"version=\""}) == 1);
  CHECK(sample(first.body, "netmond_config_last_reload_success") == 1);
  CHECK(sample(first.body, "netmond_config_last_reload_timestamp_seconds").value_or(0) > 1.7e9);
  CHECK(sample(first.body, "netmond_check_up", {"check=\"closed\"", "type=\"tcp\""}) == 0);
  CHECK(sample(first.body, "netmond_check_up", {"check=\"open \\\"quoted\\\"\""}) == 1);
  CHECK(sample(first.body, "probe_success", {"check=\"closed\""}) == 0);
  CHECK(sample(first.body, "probe_duration_seconds", {"check=\"closed\""}).value_or(-1) >= 0);
  CHECK(sample(first.body, "netmond_check_runs_total", {"check=\"closed\"", "success"}) == 0);
  CHECK(first.body.find("# TYPE netmond_check_duration_seconds histogram\n") != std::string::npos);
  const double runs_before =
      *sample(first.body, "netmond_check_duration_seconds_count", {"check=\"closed\""});
  CHECK(sample(first.body, "netmond_check_duration_seconds_bucket",
               {"check=\"closed\"", "le=\"+Inf\""}) == runs_before);

  // A second scrape, a few runs later: the counters moved.
  HttpReply second;
  REQUIRE(eventually([&] {
    second = http(base + "/metrics");
    return sample(second.body, "netmond_check_runs_total", {"check=\"closed\"", "failure"})
               .value_or(0) >= runs_before + 2;
  }));
  CHECK(*sample(second.body, "netmond_check_duration_seconds_count", {"check=\"closed\""}) >=
        runs_before + 2);
  CHECK(
      sample(second.body, "netmond_check_runs_total", {"check=\"open \\\"quoted\\\"\"", "success"})
          .value_or(0) >= 1);
  // Every run's lateness went into the loop's histogram: at least all runs of "closed".
  CHECK(sample(second.body, "netmond_schedule_lateness_seconds_count", {}).value_or(0) >=
        runs_before + 2);
  CHECK(sample(second.body, "netmond_check_skipped_slots_total", {"check=\"closed\""}) == 0);

  // Anything but GET or HEAD /metrics.
  CHECK(http(base + "/other").status == 404);
  CHECK(http(base + "/").status == 404);
  CHECK(http(base + "/metrics", "POST").status == 405);
  CHECK(http(base + "/metrics", "DELETE").status == 405);
  HttpReply head = http(base + "/metrics", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(http(base + "/metrics?x=1").status == 200);

  CHECK(d.stop() == 0);
}

TEST_CASE("metrics: a reload removes checks, records a failed load, moves and stops the listener",
          "[metrics]") {
  TcpListener open("127.0.0.1");
  const int port = closed_tcp_port("127.0.0.1");
  const int closed = closed_tcp_port("127.0.0.1");
  const std::string listen = metrics_listen("127.0.0.1:" + std::to_string(port));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  Daemon d(listen + checks(open.port(), closed));
  REQUIRE(eventually([&] {
    return sample(http(url).body, "probe_success", {"check=\"open \\\"quoted\\\"\""}).has_value();
  }));

  // Removed from the file: gone from the output after SIGHUP, histogram included.
  d.reconfigure(listen + checks(open.port(), closed, /*only_closed=*/true));
  HttpReply r;
  REQUIRE(eventually([&] {
    r = http(url);
    return r.status == 200 && r.body.find("quoted") == std::string::npos;
  }));
  CHECK(r.body.find("check=\"closed\"") != std::string::npos);
  CHECK(sample(r.body, "netmond_config_last_reload_success") == 1);

  // A broken file: the listener stays, and the failure shows.
  d.reconfigure(listen + "servers: [oops\n");
  REQUIRE(eventually(
      [&] { return sample(http(url).body, "netmond_config_last_reload_success") == 0; }));
  CHECK(http(url).body.find("check=\"closed\"") != std::string::npos);

  // Moved to another port (IPv6 when this host has ::1), then turned off.
  bool have_v6 = true;
  try {
    closed_tcp_port("::1");
  } catch (const std::exception&) {
    have_v6 = false;
    WARN("no ::1 here: moving the listener to another IPv4 port instead");
  }
  const std::string other = have_v6 ? "[::1]" : "127.0.0.1";
  const int port2 = closed_tcp_port(other == "[::1]" ? "::1" : "127.0.0.1");
  const std::string url2 = "http://" + other + ":" + std::to_string(port2) + "/metrics";
  d.reconfigure(metrics_listen(other + ":" + std::to_string(port2)) +
                checks(open.port(), closed, true));
  REQUIRE(eventually([&] { return http(url2).status == 200; }));
  CHECK(sample(http(url2).body, "netmond_config_last_reload_success") == 1);
  CHECK(http(url).status == 0);  // the old port is closed

  d.reconfigure(checks(open.port(), closed, true));
  REQUIRE(d.process->wait_for_output("metrics listener off", 5s));
  CHECK(http(url2).status == 0);
  CHECK(d.stop() == 0);
}

TEST_CASE("metrics: a port already taken is one warning, a reload retries it", "[metrics]") {
  TcpListener taken("127.0.0.1");
  TcpListener open("127.0.0.1");
  const std::string listen = metrics_listen("127.0.0.1:" + std::to_string(taken.port()));
  Daemon d(listen + checks(open.port(), closed_tcp_port("127.0.0.1")));
  REQUIRE(d.process->wait_for_output("metrics off: cannot listen on 127.0.0.1:", 5s));
  REQUIRE(d.process->wait_for_output(" closed DOWN ", 5s));  // running on
  CHECK(d.process->count("metrics off") == 1);

  // The same setting again retries the bind; it still fails, with one more warning.
  d.reconfigure(listen + checks(open.port(), closed_tcp_port("127.0.0.1")));
  REQUIRE(d.process->wait_for_output("reloaded:", 5s));
  CHECK(eventually([&] { return d.process->count("metrics off") == 2; }));
  CHECK(d.stop() == 0);
}

TEST_CASE("metrics: the textfile is written and replaced atomically", "[metrics]") {
  require_promtool();
  TcpListener open("127.0.0.1");
  const std::string dir = temp_dir() + "/textfile";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/netmond.prom";
  Daemon d("metrics: {textfile: " + path + "}\n" +
           checks(open.port(), closed_tcp_port("127.0.0.1")));

  auto read = [&] {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  auto inode = [&]() -> ino_t {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  };
  std::string first;
  REQUIRE(eventually([&] {
    first = read();
    return sample(first, "probe_success", {"check=\"closed\""}).has_value();
  }));
  const ino_t first_inode = inode();
  auto [code, out] = promtool_check(first);
  INFO(out);
  CHECK(code == 0);
  CHECK(d.process->out().find("metrics listening") == std::string::npos);  // listen unset

  // Rewritten (a new file renamed over the old one, so a new inode) as results come in,
  // at most once a second.
  const double before = *sample(first, "netmond_check_runs_total", {"check=\"closed\"", "failure"});
  std::string later;
  REQUIRE(eventually(
      [&] {
        later = read();
        return sample(later, "netmond_check_runs_total", {"check=\"closed\"", "failure"})
                   .value_or(0) > before;
      },
      5s));
  CHECK(inode() != first_inode);
  CHECK(later.find("# HELP netmond_build_info ") == 0);
  // Five results a second, at most about one write a second: counts jump by several.
  CHECK(*sample(later, "netmond_check_runs_total", {"check=\"closed\"", "failure"}) >= before + 2);
  CHECK(d.stop() == 0);
  // No temporary file left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    INFO(e.path());
    CHECK(e.path().filename() == "netmond.prom");
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("metrics: configuration keys are validated", "[metrics][config]") {
  const std::string dir = temp_dir();
  auto check = [&](const std::string& metrics) {
    std::string file = write_file(dir, "c.yaml",
                                  kNoControl + metrics +
                                      "servers: [{address: 127.0.0.1, services: "
                                      "[{type: tcp, port: 1}]}]\n");
    return run({netmond_bin(), "--check-config", "-c", file});
  };
  CHECK(check("metrics: {listen: \"127.0.0.1:9469\"}\n").code == 0);
  CHECK(check("metrics: {listen: \"[::1]:9469\"}\n").code == 0);
  CHECK(check("metrics: {listen: \"\", textfile: \"\"}\n").code == 0);
  CHECK(check("metrics:\n").code == 0);
  for (const char* bad :
       {"{listen: \"localhost:9469\"}", "{listen: \"127.0.0.1\"}", "{listen: \"::1:9469\"}",
        "{listen: \"127.0.0.1:0\"}", "{listen: \"127.0.0.1:70000\"}", "{textfile: \"x.prom\"}",
        "{textfile: \"/var/lib/\"}", "{port: 9469}"}) {
    INFO(bad);
    RunResult r = check(std::string("metrics: ") + bad + "\n");
    CHECK(r.code == 2);
    CHECK(r.err.find("metrics") != std::string::npos);
  }
}

TEST_CASE("metrics: at most 32 connections at once, idle ones do not block the rest for long",
          "[metrics]") {
  const int port = closed_tcp_port("127.0.0.1");
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  Daemon d(metrics_listen("127.0.0.1:" + std::to_string(port)) +
           checks(0, closed_tcp_port("127.0.0.1"), /*only_closed=*/true));
  REQUIRE(eventually([&] { return http(url).status == 200; }));

  // 32 clients that connect and send nothing take every slot: a scrape is turned away.
  std::vector<Fd> idle;
  for (int i = 0; i < 32; ++i) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    idle.push_back(std::move(fd));
  }
  CHECK(eventually([&] { return http(url).status == 0; }));
  // Gone (or timed out after 10s): served again.
  idle.clear();
  CHECK(eventually([&] { return http(url).status == 200; }));
  CHECK(d.stop() == 0);
}
