#include "cli.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace netmond;

namespace {
std::optional<Options> parse(std::vector<std::string> args, std::string* err) {
  args.insert(args.begin(), "netmond");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return parse_args(static_cast<int>(args.size()), argv.data(), err);
}
}  // namespace

TEST_CASE("command line options", "[cli]") {
  std::string err;
  auto o = parse({"-c", "x.yaml", "--once", "--log-format", "json", "--log-level", "debug"}, &err);
  REQUIRE(o);
  CHECK(*o->config == "x.yaml");
  CHECK(o->once);
  CHECK(*o->log_format == LogFormat::Json);
  CHECK(*o->log_level == "debug");
  o = parse({"--config=y.yaml", "--check-config"}, &err);
  REQUIRE(o);
  CHECK(*o->config == "y.yaml");
  CHECK(o->check_config);
}

TEST_CASE("usage errors say what is wrong", "[cli]") {
  std::string err;
  CHECK_FALSE(parse({"--log-format", "xml"}, &err));
  CHECK(err == "--log-format: 'xml' is not text or json");
  CHECK_FALSE(parse({"--frobnicate"}, &err));
  CHECK(err == "unknown option '--frobnicate'");
  CHECK_FALSE(parse({"-c"}, &err));
  CHECK(err == "option '-c' needs a value");
  CHECK_FALSE(parse({"extra"}, &err));
  CHECK(err == "unexpected argument 'extra'");
  CHECK_FALSE(parse({"--once", "--check-config"}, &err));
}
