#include "app.h"

#include "base/duration.h"
#include "log.h"

#include <netmond/version.h>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

namespace netmond {

App::App(Options options) : options_(std::move(options)) {
  if (options_.config)
    source_ = *options_.config;
  else if (std::filesystem::exists(kDefaultConfigPath))
    source_ = kDefaultConfigPath;
  uv_loop_init(&loop_);
}

App::~App() {
  scheduler_.reset();
  context_.reset();
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

std::optional<Config> App::load(bool running) {
  std::vector<Diagnostic> errors;
  std::optional<Config> config =
      source_.empty() ? parse_config(kEmbeddedDefaultConfig, "<built-in default>", &errors)
                      : load_config(source_, &errors);
  if (config) return config;
  for (const auto& d : errors) {
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
  log::setup(format, level);
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
  context_ = std::make_unique<ProbeContext>(ProbeContext{&loop_, *resolver_, *curl_, *dns_});
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
    sighup_.emplace(&loop_);
    sighup_->start(SIGHUP, [this](int) { reload(); });
    scheduler_->apply(config->checks);
    log::general().info("netmond {} started: {} checks from {}", kVersion, scheduler_->size(),
                        source_.empty() ? "the built-in default" : source_);
  }

  uv_run(&loop_, UV_RUN_DEFAULT);
  if (once_) return once_failed_ > 0 ? kExitCheckFailed : kExitOk;
  return kExitOk;
}

void App::reload() {
  log::general().info("SIGHUP: reloading {}", source_.empty() ? "the built-in default" : source_);
  std::optional<Config> config = load(true);
  if (!config) return;
  apply_logging(config->log);
  ApplySummary s = scheduler_->apply(config->checks);
  log::general().info("reloaded: {} added, {} removed, {} changed, {} unchanged", s.added,
                      s.removed, s.changed, s.unchanged);
}

void App::stop() {
  // Closing every handle lets uv_run return: runners cancel their probes, the resolver
  // cancels its queries, and the signal watchers go last.
  scheduler_->clear();
  sighup_.reset();
  sigterm_.reset();
  sigint_.reset();
  stop_timer_.reset();
  dns_.reset();
  curl_.reset();
  resolver_.reset();
}

void App::result(const CheckConfig& check, const CheckState& state, const Result& r,
                 const RunInfo& info) {
  log_reporter_.result(check, state, r, info);
  if (!once_) return;
  if (!r.ok()) ++once_failed_;
  // Not stop() here: we are inside the runner that reported; end on the next turn.
  if (--once_pending_ == 0) stop_timer_->start({}, [this] { stop(); });
}

void App::transition(const CheckConfig& check, Health from, Health to, const Result& r) {
  // --once prints results only: a first state is not news to a script.
  if (!once_) log_reporter_.transition(check, from, to, r);
}

}  // namespace netmond
