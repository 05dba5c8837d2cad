// The daemon's configuration: YAML (see docs/configuration.md) -> validated Config.
//
// Loading is all-or-nothing: every problem in the file is reported, each as
// "FILE:LINE:COL: path.to.key: what is wrong", and no Config is produced if there is any.
#pragma once

#include "base/address.h"
#include "params.h"
#include "probe.h"
#include "registry.h"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace netmond {

enum class LogFormat { Text, Json };
enum class LogResults { All, Changes };
enum class LogTarget { Auto, Stdout, Journal };

struct LogConfig {
  std::string level = "info";  // trace|debug|info|warn|error
  LogFormat format = LogFormat::Text;
  LogResults results = LogResults::All;
  LogTarget target = LogTarget::Auto;  // auto: the journal when stdout is connected to it
  bool operator==(const LogConfig&) const = default;
};

// One check, after defaults, server values and service values have been merged, and after
// ip_version "both" has been expanded into one check per family.
struct CheckConfig {
  std::string name;  // unique; a check's identity across reloads
  Endpoint endpoint;
  std::chrono::milliseconds interval{60'000};
  std::chrono::milliseconds timeout{5'000};  // per attempt
  unsigned fail_after = 1;
  unsigned recover_after = 1;
  unsigned retries = 0;  // extra attempts within one run before it counts as failed
  ProbeSpec spec;
  bool operator==(const CheckConfig&) const = default;

  std::string_view type() const { return type_of(spec); }
  std::string target() const { return describe_target(endpoint, spec); }
};

// The control socket (docs/control.md); an empty path turns it off.
inline constexpr const char* kDefaultControlSocket = "/run/netmond/control.sock";
struct ControlConfig {
  std::string socket = kDefaultControlSocket;
  bool operator==(const ControlConfig&) const = default;
};

// Prometheus metrics (docs/metrics.md). Both off by default: a TCP listener is something
// an operator opts into, unlike the control socket, which file permissions guard.
struct MetricsConfig {
  std::string listen;    // "IP:PORT" or "[IPv6]:PORT"; "" serves no /metrics
  std::string textfile;  // absolute path rewritten with the same text; "" writes none
  bool operator==(const MetricsConfig&) const = default;
};

// Parses a metrics.listen value: an IPv4 literal or a bracketed IPv6 literal, then a port
// 1..65535. nullopt, with the reason in *why, when it is not one.
std::optional<SockAddr> parse_listen_address(std::string_view text, std::string* why);

struct Config {
  LogConfig log;
  ControlConfig control;
  MetricsConfig metrics;
  std::vector<CheckConfig> checks;
};

// Parses YAML text; `file` is used in diagnostics only.
std::optional<Config> parse_config(const std::string& text, const std::string& file,
                                   std::vector<Diagnostic>* errors);
// The largest configuration file load_config() reads.
inline constexpr size_t kMaxConfigBytes = 64u << 20;

// Reads and parses a file (a missing or unreadable file is one diagnostic, and so is a
// file over kMaxConfigBytes). The text must be UTF-8 (else one diagnostic at the first
// byte that is not).
std::optional<Config> load_config(const std::filesystem::path& file,
                                  std::vector<Diagnostic>* errors);

// The configuration used when no -c is given and /etc/netmond.yaml does not exist.
extern const char* const kEmbeddedDefaultConfig;

}  // namespace netmond
