// netmond: the network monitoring daemon. See `netmond --help` and docs/.
#include "app.h"
#include "cli.h"

#include <netmond/version.h>

#include <malloc.h>

#include <csignal>
#include <cstdio>

int main(int argc, char** argv) {
  // Probes write to sockets whose peer may be gone; an error return is what we want,
  // not a process-killing SIGPIPE (libcurl with CURLOPT_NOSIGNAL relies on this too).
  std::signal(SIGPIPE, SIG_IGN);
  // Memory freed by the helper threads (the /metrics formatting, a reload's reading) must go
  // back where the loop can reuse it, or to the kernel:
  // - Blocks of 1 MiB or more (a /metrics text of 10,000 checks is 22 MB, built in pieces of
  //   a few MB) come from mmap and are unmapped when freed. glibc's default threshold rises
  //   to 32 MiB after the first such block is freed; then they came from a thread's arena
  //   and stayed resident: +51 MiB of RSS after a few scrapes at 10,000 checks.
  // - One heap arena for all threads: with one per thread, each arena a helper thread had
  //   used kept its freed memory, and RSS crept up over reloads (209 -> 242 MiB in a 6-minute
  //   soak of 10,000 checks; flat at 231-233 MiB with one arena). The helpers allocate
  //   rarely, so they hardly ever contend with the loop for it.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_ARENA_MAX, 1);

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
