// netmond-echo's command line: flags only (it reads no configuration file).
#pragma once

#include "base/address.h"
#include "echo_server.h"

#include <spdlog/common.h>

#include <optional>
#include <string>
#include <vector>

namespace netmond {

inline constexpr int kEchoExitOk = 0;
inline constexpr int kEchoExitFailure = 1;  // could not listen, or systemd notification failed
inline constexpr int kEchoExitUsage = 2;

inline constexpr std::uint16_t kEchoServerPort = 10100;
inline constexpr const char* kEchoServerDefaultListen = "127.0.0.1:10100";

struct EchoCliOptions {
  std::vector<SockAddr> listen;  // empty: kEchoServerDefaultListen, unless sockets are inherited
  EchoConfig server;
  spdlog::level::level_enum log_level = spdlog::level::info;
  bool help = false;
  bool version = false;
};

// Parses argv; on a usage error returns nullopt and sets *error.
std::optional<EchoCliOptions> parse_echo_args(int argc, char** argv, std::string* error);
// "ADDR:PORT", "[V6]:PORT", or an address alone (port 10100); nullopt if malformed.
std::optional<SockAddr> parse_listen(const std::string& text);
std::string echo_usage();

}  // namespace netmond
