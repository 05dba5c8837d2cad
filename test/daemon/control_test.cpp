// Black-box tests of the control socket (docs/control.md) on the real netmond binary: each
// command, malformed and oversized requests, the client limit, a watcher that never reads,
// reload through the socket, and the socket file's life cycle.
#include "support/control_client.h"
#include "support/daemon_config.h"
#include "support/peers.h"
#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

using namespace netmond;
using namespace netmond::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A netmond with its control socket in a fresh temporary directory.
struct Daemon {
  explicit Daemon(const std::string& checks, const std::string& extra = "")
      : dir(temp_dir()), socket(dir + "/control.sock") {
    config = write_file(dir, "n.yaml", yaml(checks, extra));
    process = std::make_unique<ChildProcess>(std::vector<std::string>{netmond_bin(), "-c", config});
  }
  std::string yaml(const std::string& checks, const std::string& extra = "") const {
    return "control: {socket: " + socket + "}\n" + extra + checks;
  }
  bool ready() { return wait_for_socket(socket, 5s); }
  std::optional<int> stop() {
    process->signal(SIGTERM);
    return process->wait(5s);
  }
  std::string dir, socket, config;
  std::unique_ptr<ChildProcess> process;
};

// Waits until `pred` holds, polling.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Replaces the file at `path` with a FIFO: netmond's next read of it blocks until the test
// writes the configuration (write_fifo), which holds a reload in its reading step for as
// long as a test needs.
void make_fifo(const std::string& path) {
  ::unlink(path.c_str());
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
}

// Writes `text` into the FIFO at `path` once a reader has opened it (within `limit`), then
// closes it so that the reader sees the end of the file.
bool write_fifo(const std::string& path, const std::string& text,
                std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int fd;
  // O_NONBLOCK: ENXIO until a reader has the FIFO open, instead of waiting without bound.
  while ((fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
    if (errno != ENXIO || std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  size_t sent = 0;
  while (sent < text.size()) {
    ssize_t n = ::write(fd, text.data() + sent, text.size() - sent);
    if (n < 0 && errno == EAGAIN && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    if (n < 0) break;
    sent += static_cast<size_t>(n);
  }
  ::close(fd);
  return sent == text.size();
}

std::string tcp_service(int port, const std::string& name) {
  return "      - {type: tcp, port: " + std::to_string(port) + ", name: " + name + "}\n";
}

}  // namespace

TEST_CASE("control: status lists every check or one by name, version", "[control]") {
  TcpListener open("127.0.0.1");
  Daemon d(two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "1h"));
  REQUIRE(d.ready());
  ControlConnection c(d.socket);
  REQUIRE(c.connected());

  for (const char* name : {"open", "closed"})
    REQUIRE(c.request({{"command", "run"}, {"check", name}}));
  auto status = c.request({{"command", "status"}});
  REQUIRE(status);
  const json& all = *status;
  REQUIRE(all["ok"] == true);
  REQUIRE(all["checks"].size() == 2);
  const json& closed = all["checks"][0];
  CHECK(closed["name"] == "closed");
  CHECK(closed["type"] == "tcp");
  CHECK(closed["state"] == "down");
  CHECK(closed["reason"] == "refused");
  CHECK(closed["failures"] == closed["runs"]);
  CHECK(closed["interval_ms"] == 3600000);
  CHECK(closed["since"].is_string());
  CHECK(closed["latency_ms"].is_number());
  CHECK(closed.contains("in_flight"));
  CHECK(all["checks"][1]["state"] == "up");

  auto one = c.request({{"command", "status"}, {"check", "open"}});
  REQUIRE(one);
  CHECK((*one)["ok"] == true);
  REQUIRE((*one)["checks"].size() == 1);
  CHECK((*one)["checks"][0]["name"] == "open");

  auto missing = c.request({{"command", "status"}, {"check", "nope"}});
  REQUIRE(missing);
  CHECK((*missing)["ok"] == false);
  CHECK((*missing)["error"] == "no check named 'nope'");

  auto version = c.request({{"command", "version"}});
  REQUIRE(version);
  CHECK((*version)["ok"] == true);
  CHECK((*version)["version"].is_string());
  CHECK((*version)["pid"] == d.process->pid());
  CHECK((*version)["checks"] == 2);

  CHECK(d.stop() == 0);
}

TEST_CASE("control: run NAME returns that run's result", "[control]") {
  TcpListener open("127.0.0.1");
  Daemon d(two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "1h"));
  REQUIRE(d.ready());
  ControlConnection c(d.socket);
  auto r = c.request({{"command", "run"}, {"check", "open"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  CHECK((*r)["result"]["event"] == "result");
  CHECK((*r)["result"]["check"] == "open");
  CHECK((*r)["result"]["ok"] == true);
  r = c.request({{"command", "run"}, {"check", "closed"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  CHECK((*r)["result"]["ok"] == false);
  CHECK((*r)["result"]["reason"] == "refused");

  // Two requests on one line each, sent at once: answered in order.
  REQUIRE(c.send_raw(R"({"command":"run","check":"open"})"
                     "\n"
                     R"({"command":"version"})"
                     "\n"));
  auto first = c.read();
  auto second = c.read();
  REQUIRE(first);
  REQUIRE(second);
  CHECK((*first)["result"]["check"] == "open");
  CHECK((*second)["version"].is_string());

  r = c.request({{"command", "run"}, {"check", "nope"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
  r = c.request({{"command", "run"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
}

TEST_CASE("control: bad requests get an error and the connection stays usable", "[control]") {
  Daemon d(two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  REQUIRE(d.ready());
  ControlConnection c(d.socket);
  REQUIRE(c.send_raw("{not json\n"));
  auto r = c.read();
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
  CHECK((*r)["error"].get<std::string>().rfind("bad JSON: ", 0) == 0);
  for (const char* bad : {"[1,2]", R"({"cmd":"status"})", R"({"command":"status","check":7})",
                          R"({"command":"fly"})"}) {
    INFO(bad);
    REQUIRE(c.send_raw(std::string(bad) + "\n"));
    r = c.read();
    REQUIRE(r);
    CHECK((*r)["ok"] == false);
    CHECK((*r)["error"].is_string());
  }
  // Blank lines and \r\n line ends are fine.
  REQUIRE(c.send_raw("\n\r\n{\"command\":\"version\"}\r\n"));
  r = c.read();
  REQUIRE(r);
  CHECK((*r)["ok"] == true);

  // A request line over 64 KiB: an error, then the daemon closes the connection.
  ControlConnection big(d.socket);
  REQUIRE(big.send_raw(R"({"command":"status","check":")" + std::string(70000, 'x')));
  r = big.read();
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
  CHECK((*r)["error"] == "request longer than 65536 bytes");
  CHECK(big.closed_by_peer());
  // The first connection is unaffected.
  r = c.request({{"command", "version"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
}

TEST_CASE("control: 64 clients at once are served, the next is refused", "[control]") {
  Daemon d(two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  REQUIRE(d.ready());
  std::vector<std::unique_ptr<ControlConnection>> clients;
  for (int i = 0; i < 50; ++i) clients.push_back(std::make_unique<ControlConnection>(d.socket));
  // All 50 ask at once, then all read.
  for (auto& c : clients) REQUIRE(c->send_raw("{\"command\":\"status\"}\n"));
  for (auto& c : clients) {
    auto r = c->read();
    REQUIRE(r);
    CHECK((*r)["ok"] == true);
  }
  while (clients.size() < 64) {
    clients.push_back(std::make_unique<ControlConnection>(d.socket));
    auto r = clients.back()->request({{"command", "version"}});
    REQUIRE(r);
    CHECK((*r)["ok"] == true);
  }
  ControlConnection extra(d.socket);
  REQUIRE(extra.connected());
  auto r = extra.read();
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
  CHECK((*r)["error"] == "too many clients");
  CHECK(extra.closed_by_peer());

  // One leaves; a newcomer is served again.
  clients.pop_back();
  REQUIRE(eventually([&] {
    ControlConnection again(d.socket);
    auto v = again.request({{"command", "version"}});
    return v && (*v)["ok"] == true;
  }));
  CHECK(d.stop() == 0);
}

TEST_CASE("control: watch streams result and state_change events", "[control]") {
  TcpListener open("127.0.0.1");
  Daemon d(two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "100ms"));
  REQUIRE(d.ready());
  ControlConnection w(d.socket);
  auto ack = w.request({{"command", "watch"}});
  REQUIRE(ack);
  CHECK((*ack)["ok"] == true);
  bool result = false, change = false;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((!result || !change) && std::chrono::steady_clock::now() < deadline) {
    auto e = w.read(1s);
    REQUIRE(e);
    if ((*e)["event"] == "result") {
      result = true;
      for (const char* key : {"ts", "check", "type", "target", "ok", "state", "latency_ms",
                              "message", "reason", "lateness_ms", "attempts", "details"})
        CHECK(e->contains(key));
    } else {
      REQUIRE((*e)["event"] == "state_change");
      change = true;
      CHECK((*e)["from"] == "unknown");
    }
  }
  CHECK(result);
  CHECK(change);
}

TEST_CASE("control: a watcher that never reads is dropped, the daemon carries on", "[control]") {
  // 300 failing checks every 100ms: about a megabyte of events a second.
  std::string checks =
      "log: {level: error}\n"
      "servers:\n"
      "  - address: 127.0.0.1\n"
      "    interval: 100ms\n"
      "    services:\n";
  int closed = closed_tcp_port("127.0.0.1");
  for (int i = 0; i < 300; ++i)
    checks += "      - {type: tcp, port: " + std::to_string(closed) + ", name: c" +
              std::to_string(i) + "}\n";
  Daemon d(checks);
  REQUIRE(d.ready());
  ControlConnection stuck(d.socket);
  REQUIRE(stuck.send_raw("{\"command\":\"watch\"}\n"));
  const long rss_before = rss_kib(d.process->pid());

  // Others are answered promptly meanwhile, and the checks keep running.
  ControlConnection other(d.socket);
  std::uint64_t runs = 0;
  bool dropped = false;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!dropped && std::chrono::steady_clock::now() < deadline) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = other.request({{"command", "status"}, {"check", "c0"}});
    REQUIRE(r);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    std::uint64_t now = (*r)["checks"][0]["runs"];
    CHECK(now >= runs);
    runs = now;
    pollfd p{stuck.fd(), POLLRDHUP, 0};
    dropped = ::poll(&p, 1, 200) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
  }
  CHECK(dropped);
  CHECK(runs > 10);
  // Unsent output is capped at 4 MiB (plus the kernel's socket buffers). Not under ASan:
  // its quarantine holds freed memory back (up to 256 MiB), so RSS grows with any churn.
  const long rss_after = rss_kib(d.process->pid());
  INFO("VmRSS before " << rss_before << " KiB, after " << rss_after << " KiB");
#ifndef __SANITIZE_ADDRESS__
  CHECK(rss_after - rss_before < 32 * 1024);
#endif
  CHECK(d.stop() == 0);
}

TEST_CASE("control: reload applies a good file and rejects a broken one", "[control]") {
  TcpListener open("127.0.0.1");
  int closed = closed_tcp_port("127.0.0.1");
  Daemon d(two_tcp_checks(open.port(), closed, "1h"));
  REQUIRE(d.ready());
  ControlConnection c(d.socket);

  write_file(d.dir, "n.yaml",
             d.yaml(two_tcp_checks(open.port(), closed, "1h")) + "  - address: [\n");
  auto r = c.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
  CHECK((*r)["error"].get<std::string>().find("reload failed, keeping the running configuration") !=
        std::string::npos);
  REQUIRE((*r)["errors"].size() >= 1);
  // FILE:LINE:COL: ...
  const std::string first = (*r)["errors"][0];
  INFO(first);
  CHECK(std::regex_search(first, std::regex("^" + d.config + ":[0-9]+:[0-9]+: ")));
  r = c.request({{"command", "status"}});
  REQUIRE(r);
  CHECK((*r)["checks"].size() == 2);

  // A file that cannot be a configuration: not UTF-8, a directory in its place, gone.
  write_file(d.dir, "n.yaml", d.yaml(two_tcp_checks(open.port(), closed, "1h")) + "# caf\xe9\n");
  r = c.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == false);
  REQUIRE((*r)["errors"].size() == 1);
  CHECK((*r)["errors"][0].get<std::string>().find("not UTF-8 text (byte 0xE9)") !=
        std::string::npos);
  std::filesystem::remove(d.config);
  std::filesystem::create_directory(d.config);
  r = c.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["errors"] == json::array({d.config + ": cannot read: Is a directory"}));
  std::filesystem::remove(d.config);
  r = c.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["errors"] == json::array({d.config + ": cannot read: No such file or directory"}));
  r = c.request({{"command", "status"}});
  REQUIRE(r);
  CHECK((*r)["checks"].size() == 2);  // the running configuration is untouched

  write_file(d.dir, "n.yaml",
             d.yaml("servers:\n"
                    "  - address: 127.0.0.1\n"
                    "    interval: 1h\n"
                    "    services:\n"
                    "      - {type: tcp, port: " +
                    std::to_string(open.port()) +
                    ", name: open}\n"
                    "      - {type: tcp, port: " +
                    std::to_string(open.port()) + ", name: added}\n"));
  r = c.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  CHECK((*r)["added"] == 1);
  CHECK((*r)["removed"] == 1);
  CHECK((*r)["changed"] == 0);
  CHECK((*r)["unchanged"] == 1);
  REQUIRE(d.process->wait_for_output("control socket: reloading", 1s));
}

TEST_CASE("control: a reload that changes control.socket moves the socket", "[control]") {
  Daemon d(two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  REQUIRE(d.ready());
  const std::string moved = d.dir + "/moved.sock";
  write_file(d.dir, "n.yaml",
             "control: {socket: " + moved + "}\n" +
                 two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  ControlConnection c(d.socket);
  auto r = c.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  // The connection that asked stays; the old file is gone and the new one answers.
  r = c.request({{"command", "version"}});
  REQUIRE(r);
  CHECK(!std::filesystem::exists(d.socket));
  ControlConnection there(moved);
  REQUIRE(there.connected());
  CHECK(there.request({{"command", "version"}}));

  // control.socket "" turns it off.
  write_file(d.dir, "n.yaml",
             "control: {socket: \"\"}\n" +
                 two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  r = there.request({{"command", "reload"}});
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  CHECK(!std::filesystem::exists(moved));
  CHECK(d.stop() == 0);
}

TEST_CASE("control: a reload reads its file beside the loop, checks run and the socket answers",
          "[control][reload]") {
  TcpListener open("127.0.0.1");
  const int closed = closed_tcp_port("127.0.0.1");
  const std::string checks = two_tcp_checks(open.port(), closed, "100ms");
  Daemon d(checks);
  REQUIRE(d.ready());
  make_fifo(d.config);
  ControlConnection asker(d.socket);
  REQUIRE(asker.send_raw(R"({"command":"reload"})"
                         "\n"));
  REQUIRE(d.process->wait_for_output("control socket: reloading", 5s));

  // The reload waits for its file: no answer yet, but the loop goes on.
  CHECK_FALSE(asker.read(300ms));
  ControlConnection other(d.socket);
  auto status = other.request({{"command", "status"}}, 1s);
  REQUIRE(status);
  CHECK((*status)["checks"].size() == 2);
  const size_t runs = d.process->count(" open UP ");
  CHECK(eventually([&] { return d.process->count(" open UP ") >= runs + 3; }, 3s));

  REQUIRE(write_fifo(d.config, d.yaml(checks + tcp_service(open.port(), "added"))));
  auto r = asker.read(5s);
  REQUIRE(r);
  CHECK((*r)["ok"] == true);
  CHECK((*r)["added"] == 1);
  CHECK((*r)["unchanged"] == 2);
  CHECK(d.process->wait_for_output("(file read in ", 1s));
  // The connection serves the next request as before.
  CHECK(asker.request({{"command", "version"}}));
  CHECK(d.stop() == 0);
}

TEST_CASE("control: reloads asked for during one follow it as one, each caller gets its answer",
          "[control][reload]") {
  TcpListener open("127.0.0.1");
  const std::string checks = two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "1h");
  Daemon d(checks);
  REQUIRE(d.ready());
  make_fifo(d.config);
  ControlConnection first(d.socket), second(d.socket);
  REQUIRE(first.send_raw(R"({"command":"reload"})"
                         "\n"));
  REQUIRE(d.process->wait_for_output("control socket: reloading", 5s));
  d.process->signal(SIGHUP);
  REQUIRE(
      d.process->wait_for_output("SIGHUP: a reload is under way; reloading again after it", 5s));
  REQUIRE(second.send_raw(R"({"command":"reload"})"
                          "\n"));
  REQUIRE(d.process->wait_for_output(
      "control socket: a reload is under way; reloading again after it", 5s));

  // The first reading gets the first file; its caller hears of it.
  REQUIRE(write_fifo(d.config, d.yaml(checks + tcp_service(open.port(), "x"))));
  auto r = first.read(5s);
  REQUIRE(r);
  CHECK((*r)["added"] == 1);
  CHECK((*r)["unchanged"] == 2);
  CHECK_FALSE(second.read(100ms));  // its reload began after the first reading did

  // One more reading for the SIGHUP and the second caller together.
  REQUIRE(write_fifo(
      d.config, d.yaml(checks + tcp_service(open.port(), "x") + tcp_service(open.port(), "y"))));
  r = second.read(5s);
  REQUIRE(r);
  CHECK((*r)["added"] == 1);
  CHECK((*r)["unchanged"] == 3);
  CHECK(d.process->count("SIGHUP, control socket: reloading") == 1);
  CHECK(d.process->count("reloaded: ") == 2);
  CHECK(d.stop() == 0);
}

TEST_CASE("control: SIGTERM stops netmond at once while a reload waits for its file",
          "[control][reload]") {
  Daemon d(two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  REQUIRE(d.ready());
  make_fifo(d.config);
  d.process->signal(SIGHUP);
  REQUIRE(d.process->wait_for_output("SIGHUP: reloading", 5s));
  std::this_thread::sleep_for(100ms);  // the reading thread is blocked in open()
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(d.stop() == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK_FALSE(std::filesystem::exists(d.socket));
}

TEST_CASE("control: a storm of SIGHUPs over good and broken files ends on the last file",
          "[control][reload]") {
  TcpListener open("127.0.0.1");
  const std::string checks = two_tcp_checks(open.port(), closed_tcp_port("127.0.0.1"), "1h");
  Daemon d(checks);
  REQUIRE(d.ready());
  ControlConnection c(d.socket);
  REQUIRE(c.request({{"command", "status"}}));
  const auto fds = [&] {
    return std::distance(
        std::filesystem::directory_iterator("/proc/" + std::to_string(d.process->pid()) + "/fd"),
        std::filesystem::directory_iterator{});
  };
  const auto fds_before = fds();
  // Each file is written whole and renamed over the old one, as editors and config
  // management do, so that a reading never sees half a file.
  auto replace = [&](const std::string& text) {
    write_file(d.dir, "next.yaml", text);
    std::filesystem::rename(d.dir + "/next.yaml", d.config);
  };
  for (int i = 0; i < 100; ++i) {
    if (i % 2 == 0)
      replace(d.yaml(checks + tcp_service(open.port(), "gen" + std::to_string(i))));
    else
      replace(d.yaml(checks) + "  - address: [\n");  // broken
    d.process->signal(SIGHUP);
    if (i % 10 == 0) std::this_thread::sleep_for(20ms);  // let some readings begin
  }
  replace(d.yaml(checks + tcp_service(open.port(), "last")));
  d.process->signal(SIGHUP);

  // In the end exactly the last file runs: its three checks.
  const bool settled = eventually([&] {
    auto r = c.request({{"command", "status"}});
    if (!r || (*r)["checks"].size() != 3) return false;
    for (const auto& check : (*r)["checks"])
      if (check["name"] == "last") return true;
    return false;
  });
  CHECK(settled);
  // At most one reading per signal (those asked for during one share the next; how many
  // do depends on timing, which the FIFO test above pins), each logged as applied or not.
  const size_t applied = d.process->count("reloaded: ");
  const size_t rejected = d.process->count("reload failed, keeping the running configuration");
  INFO("applied " << applied << ", rejected " << rejected);
  CHECK(applied >= 1);
  CHECK(applied + rejected <= 101);
  // Nothing left open by the readings: the descriptors are back where they were.
  CHECK(eventually([&] { return fds() == fds_before; }, 2s));
  CHECK(d.stop() == 0);  // under ASan, LeakSanitizer makes a leak a failed exit
}

TEST_CASE("control: the socket file is 0660, removed at exit, and a stale one is replaced",
          "[control]") {
  auto dir = temp_dir();
  const std::string path = dir + "/control.sock";
  {
    // A socket file nobody listens on, as a killed daemon leaves it.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  auto cfg = write_file(
      dir, "n.yaml",
      "control: {socket: " + path + "}\n" +
          two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "1h"));
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(d.wait_for_output("control socket listening on " + path, 5s));
  CHECK(d.out().find("replacing the stale control socket") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  ControlConnection c(path);
  CHECK(c.request({{"command", "version"}}));

  // A second daemon on the same socket: an error, and it runs on without one.
  ChildProcess second({netmond_bin(), "-c", cfg});
  REQUIRE(second.wait_for_output("control socket off: another process", 5s));
  second.signal(SIGTERM);
  REQUIRE(second.wait(5s) == 0);
  CHECK(std::filesystem::exists(path));  // the second did not remove the first's socket
  CHECK(c.request({{"command", "version"}}));

  d.signal(SIGTERM);
  REQUIRE(d.wait(5s) == 0);
  CHECK(!std::filesystem::exists(path));
}

TEST_CASE("control: a missing run directory is created, a deeper missing path is a warning",
          "[control]") {
  auto dir = temp_dir();
  // The socket's own directory (like /run/netmond without systemd) is created, 0755.
  const std::string created = dir + "/run-dir/control.sock";
  auto cfg = write_file(
      dir, "n.yaml",
      "control: {socket: " + created + "}\n" +
          two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "100ms"));
  {
    ChildProcess d({netmond_bin(), "-c", cfg});
    REQUIRE(d.wait_for_output("control socket listening on " + created, 5s));
    struct stat st {};
    REQUIRE(::stat((dir + "/run-dir").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0755);
    ControlConnection c(created);
    CHECK(c.request({{"command", "version"}}));
    d.signal(SIGTERM);
    REQUIRE(d.wait(5s) == 0);
  }

  // Two levels missing: not created, a warning, and the checks run.
  cfg = write_file(
      dir, "n.yaml",
      "control: {socket: " + dir + "/missing/deeper/control.sock}\n" +
          two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "100ms"));
  ChildProcess d({netmond_bin(), "-c", cfg});
  REQUIRE(d.wait_for_output("control socket off: cannot listen on", 5s));
  REQUIRE(d.wait_for_output(" closed DOWN ", 5s));  // and it runs the checks
  CHECK(!std::filesystem::exists(dir + "/missing"));

  auto off = write_file(
      dir, "off.yaml",
      "control: {socket: \"\"}\n" +
          two_tcp_checks(closed_tcp_port("127.0.0.1"), closed_tcp_port("127.0.0.1"), "100ms"));
  ChildProcess quiet({netmond_bin(), "-c", off});
  REQUIRE(quiet.wait_for_output(" closed DOWN ", 5s));
  CHECK(quiet.out().find("control socket") == std::string::npos);

  auto bad = run({netmond_bin(), "--check-config", "-c",
                  write_file(dir, "bad.yaml",
                             "control: {socket: relative.sock}\n" + two_tcp_checks(1, 2, "1m"))});
  CHECK(bad.code == 2);
  CHECK(bad.err.find(":1:19: control.socket: 'relative.sock' is not an absolute path") !=
        std::string::npos);
}
