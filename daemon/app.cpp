#include "app.h"

#include "base/duration.h"
#include "log.h"

#include <netmond/version.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

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
  reload_work_.reset();
  release_work_.reset();
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
  flush_logs_.reset();
  // Let the close callbacks of every handle run, then close the loop.
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) log::general().error("internal: handles left open at exit");
}

namespace {

std::string source_name(const std::string& source) {
  return source.empty() ? "<built-in default>" : source;
}

// Reads and validates the configured source: the file, or the built-in default when
// `source` is "". It touches nothing but its arguments, so it may run off the loop.
std::optional<Config> read_source(const std::string& source, std::vector<Diagnostic>* errors) {
  return source.empty() ? parse_config(kEmbeddedDefaultConfig, source_name(source), errors)
                        : load_config(source, errors);
}

std::string error_summary(const std::string& source, size_t errors) {
  return fmt::format("{}: {} error{}", source_name(source), errors, errors == 1 ? "" : "s");
}

}  // namespace

std::optional<Config> App::load() {
  std::vector<Diagnostic> errors;
  std::optional<Config> config = read_source(source_, &errors);
  if (config) return config;
  for (const auto& d : errors) std::fprintf(stderr, "%s\n", d.format().c_str());
  std::fprintf(stderr, "netmond: invalid configuration: %s\n",
               error_summary(source_, errors.size()).c_str());
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
  std::optional<Config> config = load();
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
    reload_work_.emplace(&loop_);
    release_work_.emplace(&loop_);
    scheduler_->apply(config->checks);
    log::general().info("netmond {} started: {} checks from {}", kVersion, scheduler_->size(),
                        source_.empty() ? "the built-in default" : source_);
    ControlServer::Hooks hooks;
    hooks.reload = [this](ControlServer::Reply reply) {
      reload("control socket", [reply = std::move(reply)](const ReloadOutcome& r) {
        if (!r.ok) {
          std::vector<std::string> errors = r.errors;
          std::string message = errors.empty() ? "reload failed" : errors.back();
          if (!errors.empty()) errors.pop_back();
          return reply({{"ok", false}, {"error", message}, {"errors", errors}});
        }
        reply({{"ok", true},
               {"added", r.applied.added},
               {"removed", r.applied.removed},
               {"changed", r.applied.changed},
               {"unchanged", r.applied.unchanged}});
      });
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
  // A turn's log lines reach stdout in one write, just before the loop waits: one write(2)
  // per result was a twentieth of the daemon's CPU at 1,000 results a second.
  flush_logs_.emplace(&loop_);
  flush_logs_->start([] { log::flush(); });
  log::defer_flush(true);
  uv_run(&loop_, UV_RUN_DEFAULT);
  log::defer_flush(false);
  if (once_) return once_failed_ > 0 ? kExitCheckFailed : kExitOk;
  return kExitOk;
}

struct App::ReloadJob {
  std::string source;
  std::optional<Config> config;
  std::vector<Diagnostic> errors;
  std::uint64_t started_ns = 0;  // asked for
  std::uint64_t read_ns = 0;     // read and validated, on the reading thread
};

void App::reload(std::string_view trigger, ReloadDone done) {
  if (reload_work_->active()) {
    log::general().info("{}: a reload is under way; reloading again after it", trigger);
    next_reload_triggers_.emplace_back(trigger);
    if (done) next_reload_waiters_.push_back(std::move(done));
    return;
  }
  std::vector<ReloadDone> waiters;
  if (done) waiters.push_back(std::move(done));
  start_reload(std::string(trigger), std::move(waiters));
}

void App::start_reload(std::string trigger, std::vector<ReloadDone> waiters) {
  log::general().info("{}: reloading {}", trigger,
                      source_.empty() ? "the built-in default" : source_);
  notifier_->reloading();
  reload_waiters_ = std::move(waiters);
  auto job = std::make_shared<ReloadJob>();
  job->source = source_;
  job->started_ns = uv_hrtime();
  auto read = [job] {
    job->config = read_source(job->source, &job->errors);
    job->read_ns = uv_hrtime();
    release_free_memory();  // yaml-cpp's tree, freed by now: the bulk of the load's memory
  };
  if (int rc = reload_work_->start(read, [this, job] { finish_reload(*job); }); rc != 0) {
    log::general().warn("cannot start a thread to read the configuration ({}): reading it here",
                        uv::error_text(rc));
    read();
    finish_reload(*job);
  }
}

void App::finish_reload(ReloadJob& job) {
  const std::uint64_t applying_ns = uv_hrtime();
  ReloadOutcome outcome;
  if (!job.config) {
    for (const auto& d : job.errors) {
      outcome.errors.push_back(d.format());
      log::general().error("{}", outcome.errors.back());
    }
    outcome.errors.push_back(fmt::format("reload failed, keeping the running configuration: {}",
                                         error_summary(job.source, job.errors.size())));
    log::general().error("{}", outcome.errors.back());
    // Still serving, with the previous configuration: systemd must hear READY=1 again.
    reload_problem_ = fmt::format("reload of {} failed at {:%F %T}, running the previous one",
                                  source_.empty() ? "the built-in default" : source_,
                                  std::chrono::system_clock::now());
    metrics_->config_loaded(false);
    notifier_->ready(summary());
  } else {
    reload_problem_.clear();
    apply_logging(job.config->log);
    outcome.ok = true;
    outcome.applied = scheduler_->apply(job.config->checks);
    control_->checks_changed();
    apply_control(job.config->control);
    metrics_->config_loaded(true);
    metrics_->apply(job.config->metrics);
    release_later(std::move(job.config));
    const ApplySummary& s = outcome.applied;
    // Reading and validating ran beside the loop; applying held it (no check started
    // meanwhile): bench/run-scale.sh --reload measures both with 10,000 checks.
    log::general().info(
        "reloaded: {} added, {} removed, {} changed, {} unchanged (file read in {:.1f} ms "
        "while checks ran, applied in {:.1f} ms)",
        s.added, s.removed, s.changed, s.unchanged,
        static_cast<double>(job.read_ns - job.started_ns) / 1e6,
        static_cast<double>(uv_hrtime() - applying_ns) / 1e6);
    notifier_->ready(summary());
  }
  for (ReloadDone& done : std::exchange(reload_waiters_, {})) done(outcome);
  if (next_reload_triggers_.empty()) return;
  std::string triggers = fmt::format("{}", fmt::join(next_reload_triggers_, ", "));
  next_reload_triggers_.clear();
  start_reload(std::move(triggers), std::exchange(next_reload_waiters_, {}));
}

void App::release_later(std::optional<Config> config) {
  // 10,000 check entries take ~11 ms to free, and the heap's trim ~4 ms more: a thread
  // does both rather than hold the loop. The runners and probes keep copies of what they
  // need from `config`, never references into it.
  auto owned = std::make_shared<std::optional<Config>>(std::move(config));
  auto release = [owned] {
    owned->reset();
    release_free_memory();
  };
  if (release_work_->start(release, [] {}) != 0) release();  // busy with the last one
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
  // A reload being read is dropped, with its callers: its thread is not waited for.
  reload_work_.reset();
  release_work_.reset();
  reload_waiters_.clear();
  next_reload_waiters_.clear();
  next_reload_triggers_.clear();
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
  if (metrics_) metrics_->result(info);
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
  if (notifier_) notifier_->status([this] { return summary(); });
}

}  // namespace netmond
