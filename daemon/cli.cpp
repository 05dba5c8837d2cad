#include "cli.h"

#include <getopt.h>

#include <fmt/format.h>

namespace netmond {

std::string usage() {
  return R"(Usage: netmond [OPTIONS]

Network monitoring daemon: runs the checks in its configuration, each on its own
interval, and logs every result until stopped.

Options:
  -c, --config FILE       configuration file (default /etc/netmond.yaml; when that
                          does not exist and -c is not given, a built-in default
                          that checks only this host)
      --check-config      validate the configuration, print one line per check
                          (name, type, target, interval, timeout) and exit
      --once              run every check once, concurrently, print each result
                          as it completes, and exit
      --no-console        no netmond> prompt even on a terminal (see Console)
      --log-format FMT    text or json (overrides log.format)
      --log-level LEVEL   trace, debug, info, warn or error (overrides log.level)
      --version           print the version and exit
  -h, --help              print this help and exit

Console:
  In the foreground with a terminal on stdin and stdout (not under systemd, not with
  --once), netmond shows a netmond> prompt under its results: status [NAME], run NAME,
  reload, help, and exit (or Ctrl-D) to stop. Tab completes commands and check names.

Signals:
  SIGHUP                  reload the configuration; a broken file is reported and
                          the running configuration is kept
  SIGTERM, SIGINT         cancel the checks in flight and exit 0

Control socket:
  control.socket in the configuration (default /run/netmond/control.sock) is
  where netmonctl asks for status, runs a check, reloads or watches results;
  see netmonctl(1). If it cannot be bound, netmond runs on without it.

Metrics:
  metrics.listen (e.g. 127.0.0.1:9469; off by default) serves GET /metrics in the
  Prometheus text format; metrics.textfile writes the same text to a file for
  node_exporter. See netmond.yaml(5).

Exit status:
  0  success (--once: every check succeeded)
  1  --once: at least one check failed
  2  configuration or usage error

Documentation: netmond(8), netmond.yaml(5), netmonctl(1); /usr/share/doc/netmond/
)";
}

std::optional<Options> parse_args(int argc, char** argv, std::string* error) {
  enum { kCheckConfig = 256, kOnce, kNoConsole, kLogFormat, kLogLevel, kVersion };
  static const option long_options[] = {
      {"config", required_argument, nullptr, 'c'},
      {"check-config", no_argument, nullptr, kCheckConfig},
      {"once", no_argument, nullptr, kOnce},
      {"no-console", no_argument, nullptr, kNoConsole},
      {"log-format", required_argument, nullptr, kLogFormat},
      {"log-level", required_argument, nullptr, kLogLevel},
      {"version", no_argument, nullptr, kVersion},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  optind = 0;  // reset getopt, so tests may parse more than once
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":c:h", long_options, nullptr)) != -1) {
    switch (c) {
      case 'c': o.config = optarg; break;
      case kCheckConfig: o.check_config = true; break;
      case kOnce: o.once = true; break;
      case kNoConsole: o.no_console = true; break;
      case kLogFormat: {
        std::string f = optarg;
        if (f == "text")
          o.log_format = LogFormat::Text;
        else if (f == "json")
          o.log_format = LogFormat::Json;
        else {
          *error = fmt::format("--log-format: '{}' is not text or json", f);
          return std::nullopt;
        }
        break;
      }
      case kLogLevel: {
        std::string l = optarg;
        if (l != "trace" && l != "debug" && l != "info" && l != "warn" && l != "error") {
          *error = fmt::format("--log-level: '{}' is not trace, debug, info, warn or error", l);
          return std::nullopt;
        }
        o.log_level = l;
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
  if (o.check_config && o.once) {
    *error = "--check-config and --once cannot be combined";
    return std::nullopt;
  }
  return o;
}

}  // namespace netmond
