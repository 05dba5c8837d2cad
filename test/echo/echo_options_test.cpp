// netmond-echo's flags.
#include "echo_options.h"

#include <catch2/catch.hpp>

#include <initializer_list>

using namespace netmond;

namespace {

std::optional<EchoCliOptions> parse(std::initializer_list<std::string> args, std::string* err) {
  std::vector<std::string> storage{"netmond-echo"};
  storage.insert(storage.end(), args);
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return parse_echo_args(static_cast<int>(storage.size()), argv.data(), err);
}

}  // namespace

TEST_CASE("echo options: --listen forms", "[echo]") {
  CHECK(parse_listen("127.0.0.1:10100")->with_port() == "127.0.0.1:10100");
  CHECK(parse_listen("[::1]:7007")->with_port() == "[::1]:7007");
  CHECK(parse_listen("0.0.0.0")->with_port() == "0.0.0.0:10100");
  CHECK(parse_listen("[::]")->with_port() == "[::]:10100");
  CHECK(parse_listen("::1")->with_port() == "[::1]:10100");  // bare IPv6: default port
  CHECK(parse_listen("127.0.0.1:0")->port() == 0);
  for (std::string bad : {"", "localhost:10100", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "[::1]:x", "[::1", "[127.0.0.1]:7", "[::1]7", ":7"}) {
    INFO(bad);
    CHECK_FALSE(parse_listen(bad));
  }
}

TEST_CASE("echo options: defaults", "[echo]") {
  std::string err;
  auto o = parse({}, &err);
  REQUIRE(o);
  CHECK(o->listen.empty());  // main() adds 127.0.0.1:10100 unless systemd passed sockets
  CHECK_FALSE(o->server.tcp);
  CHECK(o->server.max_size == 1472);
  CHECK(o->server.rate == 100);
  CHECK(o->server.burst == 200);
  CHECK(o->server.allow.empty());
  CHECK_FALSE(o->server.allow_low_ports);
  CHECK(o->log_level == spdlog::level::info);
  CHECK(parse_listen(kEchoServerDefaultListen)->with_port() == "127.0.0.1:10100");
}

TEST_CASE("echo options: every flag", "[echo]") {
  std::string err;
  auto o = parse({"--listen", "127.0.0.1:7", "--listen", "[::1]:8", "--tcp", "--max-size", "512",
                  "--rate", "2.5", "--burst", "3", "--allow", "10.0.0.0/8", "--allow", "::1",
                  "--allow-low-ports", "--log-level", "debug"},
                 &err);
  REQUIRE(o);
  REQUIRE(o->listen.size() == 2);
  CHECK(o->listen[1].with_port() == "[::1]:8");
  CHECK(o->server.tcp);
  CHECK(o->server.max_size == 512);
  CHECK(o->server.rate == 2.5);
  CHECK(o->server.burst == 3);
  CHECK(o->server.allow.size() == 2);
  CHECK(o->server.allow_low_ports);
  CHECK(o->log_level == spdlog::level::debug);

  // --burst defaults to twice the rate, at least 1; --rate 0 turns limiting off.
  CHECK(parse({"--rate", "1000"}, &err)->server.burst == 2000);
  CHECK(parse({"--rate", "0.2"}, &err)->server.burst == 1);
  CHECK(parse({"--rate", "0"}, &err)->server.rate == 0);
  CHECK(parse({"--rate", "100000000", "--burst", "100000000"}, &err));  // what bench passes
  CHECK(parse({"--help"}, &err)->help);
  CHECK(parse({"-h"}, &err)->help);
  CHECK(parse({"--version"}, &err)->version);
}

TEST_CASE("echo options: usage errors say what is wrong", "[echo]") {
  struct Case {
    std::initializer_list<std::string> args;
    std::string error;
  };
  for (const auto& c : std::initializer_list<Case>{
           {{"--bogus"}, "unknown option '--bogus'"},
           {{"--listen"}, "option '--listen' needs a value"},
           {{"--listen", "host:1"}, "--listen: 'host:1' is not ADDR:PORT or [IPV6]:PORT"},
           {{"--max-size", "0"}, "--max-size: '0' is not a size from 1 to 65507 bytes"},
           {{"--max-size", "65508"}, "--max-size: '65508' is not a size from 1 to 65507 bytes"},
           {{"--rate", "-1"}, "--rate: '-1' is not a rate from 0 to 1e9 per second"},
           {{"--rate", "nan"}, "--rate: 'nan' is not a rate from 0 to 1e9 per second"},
           {{"--burst", "0"}, "--burst: '0' is not a number from 1 to 1e9"},
           {{"--allow", "10.0.0.0/40"}, "--allow: '10.0.0.0/40' is not an address or CIDR range"},
           {{"--log-level", "loud"},
            "--log-level: 'loud' is not trace, debug, info, warn or error"},
           {{"extra"}, "unexpected argument 'extra'"},
       }) {
    std::string err;
    CHECK_FALSE(parse(c.args, &err));
    CHECK(err == c.error);
  }
}

TEST_CASE("echo options: --help names every flag", "[echo]") {
  auto u = echo_usage();
  for (std::string flag : {"--listen", "--tcp", "--max-size", "--rate", "--burst", "--allow ",
                           "--allow-low-ports", "--log-level", "--version", "--help"}) {
    INFO(flag);
    CHECK(u.find(flag) != std::string::npos);
  }
  CHECK(u.find("127.0.0.1:10100") != std::string::npos);
}
