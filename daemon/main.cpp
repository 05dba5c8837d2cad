// netmond: the network monitoring daemon. See `netmond --help` and docs/.
#include "app.h"
#include "cli.h"

#include <netmond/version.h>

#include <csignal>
#include <cstdio>

int main(int argc, char** argv) {
  // Probes write to sockets whose peer may be gone; an error return is what we want,
  // not a process-killing SIGPIPE (libcurl with CURLOPT_NOSIGNAL relies on this too).
  std::signal(SIGPIPE, SIG_IGN);

  std::string error;
  auto options = netmond::parse_args(argc, argv, &error);
  if (!options) {
    std::fprintf(stderr, "netmond: %s\nTry 'netmond --help'.\n", error.c_str());
    return netmond::kExitConfig;
  }
  if (options->help) {
    std::fputs(netmond::usage().c_str(), stdout);
    return netmond::kExitOk;
  }
  if (options->version) {
    std::printf("netmond %s\n", netmond::kVersion);
    return netmond::kExitOk;
  }
  netmond::App app(std::move(*options));
  return app.run();
}
