#include "metrics.h"

#include "log.h"

#include <netmond/version.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>

namespace netmond {

namespace {

std::chrono::nanoseconds loop_now(uv_loop_t* loop) {
  return std::chrono::milliseconds(uv_now(loop));
}

// Writes `text` to `path` through a temporary file in the same directory and rename(2);
// "" or the reason it failed.
std::string write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fmt::format("cannot create {}: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
      ::close(fd);
      ::unlink(tmp.c_str());
      return why;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    std::string why = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
    ::unlink(tmp.c_str());
    return why;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = fmt::format("cannot rename {} to {}: {}", tmp, path, std::strerror(errno));
    ::unlink(tmp.c_str());
    return why;
  }
  return "";
}

}  // namespace

Metrics::Metrics(uv_loop_t* loop, const Scheduler& scheduler)
    : loop_(loop),
      scheduler_(scheduler),
      textfile_timer_(loop),
      textfile_work_(loop),
      server_(loop, [this]() -> MetricsServer::Format {
        return [snap = snapshot()] { return format_metrics(snap); };
      }) {}

void Metrics::apply(const MetricsConfig& config) {
  // Unchanged and serving: nothing to do. Unchanged but off (the port was taken): try
  // again, a reload is the operator's way to ask.
  if (config.listen != server_.listen() || (!config.listen.empty() && !server_.listening())) {
    if (config.listen.empty())
      log::general().info("metrics listener off (metrics.listen is not set)");
    server_.start(config.listen);
  }
  if (config.textfile != textfile_) {
    textfile_ = config.textfile;
    textfile_failing_ = false;
    if (!textfile_.empty()) log::general().info("metrics textfile: {}", textfile_);
  }
  if (textfile_.empty())
    textfile_timer_.stop();
  else
    schedule_textfile();
}

void Metrics::config_loaded(bool ok) {
  last_load_ok_ = ok;
  if (!ok) {
    schedule_textfile();
    return;
  }
  last_load_seconds_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void Metrics::result(const RunInfo& info) {
  lateness_.observe(std::chrono::duration<double>(info.lateness).count());
  schedule_textfile();
}

MetricsSnapshot Metrics::snapshot() const {
  MetricsSnapshot snap;
  snap.version = kVersion;
  snap.last_reload_ok = last_load_ok_;
  snap.last_reload_seconds = last_load_seconds_;
  if (lateness_.count > 0) snap.lateness = lateness_;
  snap.checks.reserve(scheduler_.size());
  scheduler_.for_each([&](const CheckRunner& r) {
    CheckMetrics c;
    c.name = r.config().name;
    c.type = std::string(r.config().type());
    c.target = r.config().target();
    c.health = r.state().health;
    c.runs = r.state().runs;
    c.failures = r.state().failures;
    c.skipped_slots = r.skipped_slots();
    if (r.last_result()) c.last = LastRunMetrics::of(c.type, *r.last_result());
    if (r.durations().count > 0) c.durations = r.durations();
    snap.checks.push_back(std::move(c));
  });
  return snap;
}

void Metrics::schedule_textfile() {
  if (textfile_.empty() || textfile_timer_.active()) return;
  const auto due = last_write_ + std::chrono::nanoseconds(kTextfileInterval);
  const auto now = loop_now(loop_);
  textfile_timer_.start(due > now ? due - now : std::chrono::nanoseconds(0),
                        [this] { write_textfile(); });
}

void Metrics::write_textfile() {
  if (textfile_work_.active()) {
    textfile_again_ = true;  // written again once this write is done
    return;
  }
  last_write_ = loop_now(loop_);
  auto why = std::make_shared<std::string>();
  auto write = std::make_shared<std::function<void()>>([path = textfile_, snap = snapshot(), why] {
    *why = write_atomically(path, format_metrics(snap));
  });
  if (textfile_work_.start([write] { (*write)(); }, [this, why] { textfile_written(*why); }) != 0) {
    (*write)();  // no thread to be had: write here
    textfile_written(*why);
  }
}

void Metrics::textfile_written(const std::string& why) {
  // One warning when writing starts to fail, one line when it works again: not one a second.
  if (!why.empty() && !textfile_failing_)
    log::general().warn("metrics textfile: {} (retrying after each result)", why);
  else if (why.empty() && textfile_failing_)
    log::general().info("metrics textfile: writing {} again", textfile_);
  textfile_failing_ = !why.empty();
  if (std::exchange(textfile_again_, false)) schedule_textfile();
}

}  // namespace netmond
