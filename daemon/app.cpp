#include "app.h"

#include "base/duration.h"
#include "log.h"

#include <netmond/version.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace netmond {

namespace {

// Thousands of concurrent checks need thousands of sockets; the default soft limit (1024)
// is far below the hard one (524288 under systemd), and raising soft to hard needs no
// privilege.
void raise_open_files_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0 || l.rlim_cur >= l.rlim_max) return;
  const rlim_t before = l.rlim_cur;
  l.rlim_cur = l.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &l) != 0)
    log::general().warn("cannot raise the open files limit from {}: {}", before,
                        std::strerror(errno));
  else
    log::general().debug("open files limit raised from {} to {}", before, l.rlim_cur);
}

}  // namespace

App::App(Options options) : options_(std::move(options)) {
  if (options_.config)
    source_ = *options_.config;
  else if (std::filesystem::exists(kDefaultConfigPath))
    source_ = kDefaultConfigPath;
  uv_loop_init(&loop_);
}

App::~App() {
  console_.reset();
  control_.reset();
  metrics_.reset();
  scheduler_.reset();
  notifier_.reset();
  context_.reset();
  icmp_.reset();
  dns_.reset();
  curl_.reset();
  resolver_.reset();
  sighup_.reset();
  sigterm_.reset();
  sigint_.reset();
  stop_timer_.reset();
  // Let the close callbacks of every handle run, then close the loop.
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) log::general().error("internal: handles left open at exit");
}

std::optional<Config> App::load(bool running, std::vector<std::string>* error_lines) {
  std::vector<Diagnostic> errors;
  std::optional<Config> config =
      source_.empty() ? parse_config(kEmbeddedDefaultConfig, "<built-in default>", &errors)
                      : load_config(source_, &errors);
  if (config) return config;
  for (const auto& d : errors) {
    if (error_lines) error_lines->push_back(d.format());
    if (running)
      log::general().error("{}", d.format());
    else
      std::fprintf(stderr, "%s\n", d.format().c_str());
  }
  std::string summary =
      fmt::format("{}: {} error{}", source_.empty() ? "<built-in default>" : source_, errors.size(),
                  errors.size() == 1 ? "" : "s");
  if (running)
    log::general().error("reload failed, keeping the running configuration: {}", summary);
  else
    std::fprintf(stderr, "netmond: invalid configuration: %s\n", summary.c_str());
  return std::nullopt;
}

void App::apply_logging(const LogConfig& log) {
  LogFormat format = options_.log_format.value_or(log.format);
  auto level =
      log::parse_level(options_.log_level.value_or(log.level)).value_or(spdlog::level::info);
  const bool journal = log::use_journal(log.target);
  log::setup(format, level, journal);
  if (log.target == LogTarget::Journal && !journal)
    log::general().warn(
        "log.target is journal, but no journald listens here (no "
        "/run/systemd/journal/socket): logging to stdout");
  log_reporter_.set(format, log.results);
}

int App::check_config(const Config& config) {
  std::printf("%s: %zu check%s\n", source_.empty() ? "<built-in default>" : source_.c_str(),
              config.checks.size(), config.checks.size() == 1 ? "" : "s");
  for (const auto& c : config.checks) {
    std::printf("%s  type=%s  target=%s  interval=%s  timeout=%s\n", c.name.c_str(),
                std::string(c.type()).c_str(), c.target().c_str(),
                format_duration(c.interval).c_str(), format_duration(c.timeout).c_str());
  }
  return kExitOk;
}

namespace {

// Gives the heap's free memory back to the system. Loading a configuration is the
// daemon's largest allocation by far (yaml-cpp's node tree: ~7 KiB per check entry, 88 MiB
// for 10,000 checks), freed as soon as the checks are built; glibc keeps that memory
// otherwise, and the daemon's RSS would stay at the load's peak (87 MiB there, 37 after).
void release_free_memory() { malloc_trim(0); }

}  // namespace

int App::run() {
  std::optional<Config> config = load(false);
  if (!config) return kExitConfig;
  if (options_.check_config) return check_config(*config);

  once_ = options_.once;
  apply_logging(config->log);
  if (source_.empty())
    log::general().info(
        "{} not found and no -c given: using the built-in default "
        "configuration (checks this host only)",
        kDefaultConfigPath);

  resolver_ = std::make_unique<Resolver>(&loop_);
  curl_ = std::make_unique<CurlMulti>(&loop_);
  dns_ = std::make_unique<DnsChannels>(&loop_);
  icmp_ = std::make_unique<RawIcmpSockets>(&loop_);
  context_ =
      std::make_unique<ProbeContext>(ProbeContext{&loop_, *resolver_, *curl_, *dns_, *icmp_});
  scheduler_ = std::make_unique<Scheduler>(&loop_, *this, [this](const CheckConfig& c) {
    return make_probe(*context_, c.endpoint, c.spec);
  });

  stop_timer_.emplace(&loop_);
  sigterm_.emplace(&loop_);
  sigint_.emplace(&loop_);
  auto on_stop = [this](int signum) {
    log::general().info("received {}, stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    once_failed_ += once_ ? once_pending_ : 0;  // an interrupted --once run did not succeed
    stop();
  };
  sigterm_->start(SIGTERM, on_stop);
  sigint_->start(SIGINT, on_stop);

  if (once_) {
    scheduler_->apply(config->checks, /*periodic=*/false);
    once_pending_ = scheduler_->size();
    scheduler_->run_all_now();
  } else {
    raise_open_files_limit();
    sighup_.emplace(&loop_);
    sighup_->start(SIGHUP, [this](int) { reload("SIGHUP"); });
    scheduler_->apply(config->checks);
    log::general().info("netmond {} started: {} checks from {}", kVersion, scheduler_->size(),
                        source_.empty() ? "the built-in default" : source_);
    ControlServer::Hooks hooks;
    hooks.reload = [this] {
      ReloadOutcome r = reload("control socket");
      if (!r.ok) {
        std::string message = r.errors.empty() ? "reload failed" : r.errors.back();
        if (!r.errors.empty()) r.errors.pop_back();
        return nlohmann::ordered_json{{"ok", false}, {"error", message}, {"errors", r.errors}};
      }
      return nlohmann::ordered_json{{"ok", true},
                                    {"added", r.applied.added},
                                    {"removed", r.applied.removed},
                                    {"changed", r.applied.changed},
                                    {"unchanged", r.applied.unchanged}};
    };
    hooks.version = [this] {
      return nlohmann::ordered_json{
          {"ok", true},
          {"version", kVersion},
          {"pid", ::getpid()},
          {"config", source_.empty() ? "<built-in default>" : source_},
          {"checks", scheduler_->size()},
      };
    };
    control_ = std::make_unique<ControlServer>(&loop_, *scheduler_, std::move(hooks));
    apply_control(config->control);
    metrics_ = std::make_unique<Metrics>(&loop_, *scheduler_);
    metrics_->config_loaded(true);
    metrics_->apply(config->metrics);
    notifier_.emplace(&loop_);
    notifier_->ready(summary());
    if (!options_.no_console && Console::wanted()) {
      Console::Hooks console;
      console.reload = [this] { reload("console"); };
      // On the next turn: the console is inside its own callback now.
      console.exit = [this] {
        log::general().info("exit typed at the console, stopping");
        stop_timer_->start({}, [this] { stop(); });
      };
      console_ = std::make_unique<Console>(&loop_, *scheduler_, std::move(console));
    }
  }

  config.reset();
  release_free_memory();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (once_) return once_failed_ > 0 ? kExitCheckFailed : kExitOk;
  return kExitOk;
}

App::ReloadOutcome App::reload(std::string_view trigger) {
  const std::uint64_t started_ns = uv_hrtime();
  log::general().info("{}: reloading {}", trigger,
                      source_.empty() ? "the built-in default" : source_);
  notifier_->reloading();
  ReloadOutcome outcome;
  std::optional<Config> config = load(true, &outcome.errors);
  if (!config) {
    outcome.errors.push_back(
        fmt::format("reload failed, keeping the running configuration: {}: {} error{}",
                    source_.empty() ? "<built-in default>" : source_, outcome.errors.size(),
                    outcome.errors.size() == 1 ? "" : "s"));
    // Still serving, with the previous configuration: systemd must hear READY=1 again.
    reload_problem_ = fmt::format("reload of {} failed at {:%F %T}, running the previous one",
                                  source_.empty() ? "the built-in default" : source_,
                                  std::chrono::system_clock::now());
    metrics_->config_loaded(false);
    notifier_->ready(summary());
    return outcome;
  }
  reload_problem_.clear();
  apply_logging(config->log);
  outcome.ok = true;
  outcome.applied = scheduler_->apply(config->checks);
  const ApplySummary& s = outcome.applied;
  // The time the loop spent reading, validating and applying the file: no check ran
  // meanwhile (bench/run-scale.sh --reload measures it with 10,000 checks).
  log::general().info("reloaded: {} added, {} removed, {} changed, {} unchanged in {:.1f} ms",
                      s.added, s.removed, s.changed, s.unchanged,
                      static_cast<double>(uv_hrtime() - started_ns) / 1e6);
  control_->checks_changed();
  apply_control(config->control);
  metrics_->config_loaded(true);
  metrics_->apply(config->metrics);
  notifier_->ready(summary());
  config.reset();
  release_free_memory();
  return outcome;
}

void App::apply_control(const ControlConfig& control) {
  // Unchanged and serving: nothing to do. Unchanged but off (say /run/netmond was
  // missing): try again, a reload is the operator's way to ask.
  if (control.socket == control_->path() && control_->listening()) return;
  if (control.socket.empty()) {
    if (control_->listening() || control_->path() != control.socket)
      log::general().info("control socket off (control.socket is \"\")");
    control_->start("");
    return;
  }
  control_->start(control.socket);
}

std::string App::summary() const {
  size_t up = 0, down = 0, pending = 0;
  scheduler_->for_each([&](const CheckRunner& r) {
    switch (r.state().health) {
      case Health::Up: ++up; break;
      case Health::Down: ++down; break;
      case Health::Unknown: ++pending; break;
    }
  });
  std::string s = fmt::format("{} check{}: {} up, {} down", scheduler_->size(),
                              scheduler_->size() == 1 ? "" : "s", up, down);
  if (pending > 0) s += fmt::format(", {} pending", pending);
  if (!reload_problem_.empty()) s += "; " + reload_problem_;
  return s;
}

void App::stop() {
  // Closing every handle lets uv_run return: runners cancel their probes, the resolver
  // cancels its queries, and the signal watchers go last.
  if (notifier_) notifier_->stopping();
  console_.reset();  // gives the terminal back
  control_.reset();  // removes the socket file
  metrics_.reset();  // closes the listener and its connections
  scheduler_->clear();
  sighup_.reset();
  sigterm_.reset();
  sigint_.reset();
  stop_timer_.reset();
  icmp_.reset();
  dns_.reset();
  curl_.reset();
  resolver_.reset();
}

void App::result(const CheckConfig& check, const CheckState& state, const Result& r,
                 const RunInfo& info) {
  log_reporter_.result(check, state, r, info);
  if (control_) control_->result(check, state, r, info);
  if (metrics_) metrics_->result(check, r, info);
  if (!once_) return;
  if (!r.ok()) ++once_failed_;
  // Not stop() here: we are inside the runner that reported; end on the next turn.
  if (--once_pending_ == 0) stop_timer_->start({}, [this] { stop(); });
}

void App::transition(const CheckConfig& check, Health from, Health to, const Result& r) {
  // --once prints results only: a first state is not news to a script.
  if (once_) return;
  log_reporter_.transition(check, from, to, r);
  if (control_) control_->transition(check, from, to, r);
  if (notifier_) notifier_->status(summary());
}

}  // namespace netmond
