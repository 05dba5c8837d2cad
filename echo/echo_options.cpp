#include "echo_options.h"

#include <getopt.h>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace netmond {

namespace {

// A decimal number in [min, max]; nullopt otherwise.
std::optional<double> number(const char* text, double min, double max) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v < min || v > max) return std::nullopt;
  return v;
}

std::optional<long> integer(const char* text, long min, long max) {
  long v = 0;
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < min || v > max)
    return std::nullopt;
  return v;
}

}  // namespace

std::string echo_usage() {
  return fmt::format(
      R"(Usage: netmond-echo [OPTIONS]

RFC 862 echo server: sends every accepted UDP datagram back to its sender, from
the address and port it arrived on; with --tcp also echoes TCP connections.

Options:
      --listen ADDR:PORT  listen on this address (repeatable; IPv6 as [::1]:PORT;
                          the port defaults to {port}); default {listen}, or only
                          the sockets systemd passes (socket activation)
      --tcp               also serve TCP echo on the --listen addresses
      --max-size BYTES    drop datagrams larger than this (default {max_size},
                          1..65507)
      --rate PPS          answer each source (IPv6: each /64) at most PPS datagrams
                          per second on average (default {rate}; 0: no limit)
      --burst N           ... and at most N at once (default: 2 x PPS, at least 1)
      --allow CIDR        answer only these sources (repeatable; e.g. 10.0.0.0/8,
                          2001:db8::/32); default: everyone
      --allow-low-ports   answer source ports below 1024 and 2049 too (lab use:
                          such ports belong to services that may echo back)
      --log-level LEVEL   trace, debug, info, warn or error (default info)
      --version           print the version and exit
  -h, --help              print this help and exit

Never answered: source ports below 1024 and 2049 (unless --allow-low-ports);
unspecified, multicast, broadcast, 0/8 and 255/8 sources; 127/8 and ::1 sources
arriving on a non-loopback address. A reply is never larger than its request,
and is dropped (not queued) when the socket cannot take it.

Signals: SIGTERM, SIGINT: log the counters and exit 0.
Exit status: 0 stopped by a signal; 1 could not listen or notify systemd;
2 usage error.

Documentation: netmond-echo(8), /usr/share/doc/netmond/echo.md
)",
      fmt::arg("port", kEchoServerPort), fmt::arg("listen", kEchoServerDefaultListen),
      fmt::arg("max_size", EchoConfig{}.max_size), fmt::arg("rate", EchoConfig{}.rate));
}

std::optional<SockAddr> parse_listen(const std::string& text) {
  HostPortText parts;
  if (split_host_port(text, &parts) != SplitError::None) return std::nullopt;
  // Brackets are for IPv6 only.
  if (parts.bracketed && parts.host.find(':') == std::string_view::npos) return std::nullopt;
  std::string host(parts.host);
  long port = kEchoServerPort;
  if (parts.port) {
    auto p = integer(std::string(*parts.port).c_str(), 0, 65535);
    if (!p) return std::nullopt;
    port = *p;
  }
  return parse_ip(host, static_cast<std::uint16_t>(port));
}

std::optional<EchoCliOptions> parse_echo_args(int argc, char** argv, std::string* error) {
  enum {
    kListen = 256,
    kTcp,
    kMaxSize,
    kRate,
    kBurst,
    kAllow,
    kAllowLowPorts,
    kLogLevel,
    kVersion
  };
  static const option long_options[] = {
      {"listen", required_argument, nullptr, kListen},
      {"tcp", no_argument, nullptr, kTcp},
      {"max-size", required_argument, nullptr, kMaxSize},
      {"rate", required_argument, nullptr, kRate},
      {"burst", required_argument, nullptr, kBurst},
      {"allow", required_argument, nullptr, kAllow},
      {"allow-low-ports", no_argument, nullptr, kAllowLowPorts},
      {"log-level", required_argument, nullptr, kLogLevel},
      {"version", no_argument, nullptr, kVersion},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  EchoCliOptions o;
  std::optional<double> burst;
  optind = 0;  // reset getopt, so tests may parse more than once
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", long_options, nullptr)) != -1) {
    switch (c) {
      case kListen: {
        auto a = parse_listen(optarg);
        if (!a) {
          *error = fmt::format("--listen: '{}' is not ADDR:PORT or [IPV6]:PORT", optarg);
          return std::nullopt;
        }
        o.listen.push_back(*a);
        break;
      }
      case kTcp: o.server.tcp = true; break;
      case kMaxSize: {
        auto v = integer(optarg, 1, 65507);
        if (!v) {
          *error = fmt::format("--max-size: '{}' is not a size from 1 to 65507 bytes", optarg);
          return std::nullopt;
        }
        o.server.max_size = static_cast<size_t>(*v);
        break;
      }
      case kRate: {
        auto v = number(optarg, 0, 1e9);
        if (!v) {
          *error = fmt::format("--rate: '{}' is not a rate from 0 to 1e9 per second", optarg);
          return std::nullopt;
        }
        o.server.rate = *v;
        break;
      }
      case kBurst: {
        burst = number(optarg, 1, 1e9);
        if (!burst) {
          *error = fmt::format("--burst: '{}' is not a number from 1 to 1e9", optarg);
          return std::nullopt;
        }
        break;
      }
      case kAllow: {
        auto cidr = Cidr::parse(optarg);
        if (!cidr) {
          *error = fmt::format("--allow: '{}' is not an address or CIDR range", optarg);
          return std::nullopt;
        }
        o.server.allow.push_back(*cidr);
        break;
      }
      case kAllowLowPorts: o.server.allow_low_ports = true; break;
      case kLogLevel: {
        std::string l = optarg;
        if (l == "trace")
          o.log_level = spdlog::level::trace;
        else if (l == "debug")
          o.log_level = spdlog::level::debug;
        else if (l == "info")
          o.log_level = spdlog::level::info;
        else if (l == "warn" || l == "warning")
          o.log_level = spdlog::level::warn;
        else if (l == "error")
          o.log_level = spdlog::level::err;
        else {
          *error = fmt::format("--log-level: '{}' is not trace, debug, info, warn or error", l);
          return std::nullopt;
        }
        break;
      }
      case kVersion: o.version = true; break;
      case 'h': o.help = true; break;
      case ':':
        *error = fmt::format("option '{}' needs a value", argv[optind - 1]);
        return std::nullopt;
      default: *error = fmt::format("unknown option '{}'", argv[optind - 1]); return std::nullopt;
    }
  }
  if (optind < argc) {
    *error = fmt::format("unexpected argument '{}'", argv[optind]);
    return std::nullopt;
  }
  o.server.burst = burst ? *burst : std::max(1.0, std::ceil(2 * o.server.rate));
  return o;
}

}  // namespace netmond
