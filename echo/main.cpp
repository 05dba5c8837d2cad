// netmond-echo: the RFC 862 echo server. See `netmond-echo --help` and docs/echo.md.
#include "echo_log.h"
#include "echo_options.h"
#include "echo_server.h"

#include <netmond/version.h>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>

using namespace netmond;

namespace {

constexpr auto kCountersInterval = std::chrono::minutes(1);

// Tells systemd `state` when NOTIFY_SOCKET is set; false only when that send failed.
bool notify(const std::string& state) {
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) spdlog::error("cannot notify systemd (NOTIFY_SOCKET): {}", std::strerror(-rc));
  return rc >= 0;
}

// Runs the server until SIGTERM or SIGINT; returns the exit code. Handles still closing on
// return are finished by the caller's loop run.
int serve(uv_loop_t* loop, EchoCliOptions& o) {
  std::optional<EchoServer> server(std::in_place, loop, o.server);
  std::optional<uv::Timer> counters_timer(std::in_place, loop);
  std::optional<uv::Signal> sigterm(std::in_place, loop), sigint(std::in_place, loop);
  std::string where;  // the listeners, for STATUS=
  bool tcp = false;
  EchoCounters logged;
  auto log_counters = [&] {
    logged = server->counters();
    spdlog::info("counters: {}", logged.format(tcp));
    notify(fmt::format("STATUS=echoing on {}; received {}, echoed {}, dropped {}", where,
                       logged.received, logged.echoed, logged.dropped()));
  };
  // Signals are watched from the start, so that one arriving during start-up is handled
  // once the loop runs rather than killing us.
  auto stop = [&](int signum) {
    spdlog::info("received {}, stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    notify("STOPPING=1");
    log_counters();
    // Closing every handle lets uv_run return.
    server.reset();
    counters_timer.reset();
    sigterm.reset();
    sigint.reset();
  };
  sigterm->start(SIGTERM, stop);
  sigint->start(SIGINT, stop);

  // Socket activation: systemd owns the ports, we adopt them (and unset LISTEN_*, so
  // nothing we start would inherit them).
  std::string err;
  int inherited = sd_listen_fds(1);
  if (inherited < 0) {
    spdlog::error("socket activation: {}", std::strerror(-inherited));
    return kEchoExitFailure;
  }
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + inherited; ++fd) {
    if (!server->adopt(fd, &err)) {
      spdlog::error("cannot serve {}", err);
      return kEchoExitFailure;
    }
  }
  if (o.listen.empty() && inherited == 0)
    o.listen.push_back(*parse_listen(kEchoServerDefaultListen));
  for (const auto& a : o.listen) {
    if (!server->listen(a, &err)) {
      spdlog::error("cannot listen on {}", err);
      return kEchoExitFailure;
    }
  }
  for (const auto& l : server->listeners()) {
    spdlog::info("listening on {}", l.describe());
    where += (where.empty() ? "" : ", ") + l.describe();
    tcp = tcp || l.tcp;
    if (!l.tcp && scope_of(l.address.get()) == ListenerScope::Wildcard)
      spdlog::warn(
          "{} is a wildcard address: replies leave from the address the kernel routes "
          "them by, which on a multi-homed host may differ from the one a request was "
          "sent to; list specific addresses there",
          l.address.with_port());
  }
  const auto& c = o.server;
  spdlog::info(
      "answering datagrams up to {} bytes, {} per source, {}{}", c.max_size,
      c.rate > 0 ? fmt::format("{}/s (burst {})", c.rate, c.burst) : "no rate limit",
      c.allow.empty() ? "from everyone" : fmt::format("from {} --allow ranges", c.allow.size()),
      c.allow_low_ports ? ", low source ports included" : "");

  counters_timer->start(
      kCountersInterval,
      [&] {
        if (server->counters() != logged) log_counters();
      },
      kCountersInterval);
  if (!notify("READY=1\nSTATUS=echoing on " + where)) return kEchoExitFailure;
  uv_run(loop, UV_RUN_DEFAULT);
  return kEchoExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // A TCP peer may be gone when we write: we want EPIPE, not a fatal signal.
  std::signal(SIGPIPE, SIG_IGN);
  std::string error;
  auto options = parse_echo_args(argc, argv, &error);
  if (!options) {
    std::fprintf(stderr, "netmond-echo: %s\nTry 'netmond-echo --help'.\n", error.c_str());
    return kEchoExitUsage;
  }
  if (options->help) {
    std::fputs(echo_usage().c_str(), stdout);
    return kEchoExitOk;
  }
  if (options->version) {
    std::printf("netmond-echo %s\n", kVersion);
    return kEchoExitOk;
  }
  setup_echo_logging(options->log_level);

  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = serve(&loop, *options);
  uv_run(&loop, UV_RUN_DEFAULT);  // let the close callbacks run
  if (uv_loop_close(&loop) != 0) {
    spdlog::error("internal: handles left open at exit");
    code = kEchoExitFailure;
  }
  return code;
}
