#include "log.h"

#include "report.h"

#include <spdlog/details/null_mutex.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <nlohmann/json.hpp>

namespace netmond::log {

namespace {

// spdlog's level names are lower-case and fixed when the library is built; the text
// format wants "INFO ", "WARN " as in syslog-style tools.
class UpperLevelFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr std::string_view kNames[] = {"TRACE", "DEBUG", "INFO ", "WARN ",
                                                  "ERROR", "CRIT ", "OFF  "};
    auto name = kNames[static_cast<int>(msg.level)];
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<UpperLevelFlag>();
  }
};

std::string_view level_name(spdlog::level::level_enum l) {
  static constexpr std::string_view kNames[] = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  return kNames[static_cast<int>(l)];
}

// One JSON object per free-form message, so that every line of --log-format json parses.
class JsonLogFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json j = {{"ts", rfc3339_ms(msg.time)},
                                {"event", "log"},
                                {"level", level_name(msg.level)},
                                {"message", std::string(msg.payload.data(), msg.payload.size())}};
    std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLogFormatter>();
  }
};

std::unique_ptr<spdlog::formatter> text_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<UpperLevelFlag>('*').set_pattern("%Y-%m-%d %H:%M:%S.%e %* %v");
  return f;
}

int priority_of(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return journal::kDebug;
    case spdlog::level::info: return journal::kInfo;
    case spdlog::level::warn: return journal::kWarning;
    case spdlog::level::err: return journal::kErr;
    default: return 2;  // LOG_CRIT
  }
}

// The general logger's messages as journal entries (the journal stamps the time itself);
// when journald does not take one, the text line goes to stdout.
class JournalSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    if (journal::send(priority_of(msg.level), text)) return;
    spdlog::memory_buf_t line;
    fallback_->format(msg, line);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
  void flush_() override {}

 private:
  std::unique_ptr<spdlog::formatter> fallback_ = text_formatter();
};

std::function<void()> g_before_output, g_after_output;
bool g_deferred_flush = false;  // defer_flush()

// stdout, whole lines, flushed unless deferred; bracketed by the console's hooks when it
// has a prompt up (and then flushed at once: the prompt is redrawn after the line).
class StdoutSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    if (g_before_output) g_before_output();
    std::fwrite(line.data(), 1, line.size(), stdout);
    if (!g_deferred_flush || g_before_output) std::fflush(stdout);
    if (g_after_output) g_after_output();
  }
  void flush_() override { std::fflush(stdout); }
};

struct Loggers {
  std::shared_ptr<spdlog::logger> general;
  std::shared_ptr<spdlog::logger> events;
  Loggers() {
    // Two sinks on the same FILE*: each line is written and flushed whole, in order.
    general = std::make_shared<spdlog::logger>("netmond", std::make_shared<StdoutSink>());
    events = std::make_shared<spdlog::logger>("events", std::make_shared<StdoutSink>());
    for (auto* l : {general.get(), events.get()}) {
      l->flush_on(spdlog::level::trace);
      l->set_level(spdlog::level::info);
    }
    general->set_formatter(text_formatter());
    events->set_formatter(text_formatter());
  }
};

Loggers& loggers() {
  static Loggers l;
  return l;
}

bool journal_on = false;  // setup()'s choice, for event()

}  // namespace

void set_terminal_hooks(std::function<void()> before, std::function<void()> after) {
  g_before_output = std::move(before);
  g_after_output = std::move(after);
}

bool use_journal(LogTarget target) {
  if (target == LogTarget::Stdout) return false;
  if (target == LogTarget::Auto && !journal::stdout_is_journal()) return false;
  return journal::available();
}

void setup(LogFormat format, spdlog::level::level_enum level, bool journal) {
  auto& l = loggers();
  journal_on = journal;
  l.general->sinks().clear();
  if (journal)
    l.general->sinks().push_back(std::make_shared<JournalSink>());
  else
    l.general->sinks().push_back(std::make_shared<StdoutSink>());
  if (format == LogFormat::Json) {
    l.general->set_formatter(std::make_unique<JsonLogFormatter>());
    l.events->set_formatter(
        std::make_unique<spdlog::pattern_formatter>("%v", spdlog::pattern_time_type::local, "\n"));
  } else {
    l.general->set_formatter(text_formatter());
    l.events->set_formatter(text_formatter());
  }
  // Results obey the level too: OK results are INFO, failures WARN, so "warn" keeps
  // only the failures and state changes to DOWN.
  l.general->set_level(level);
  l.events->set_level(level);
}

std::optional<spdlog::level::level_enum> parse_level(const std::string& name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return std::nullopt;
}

void defer_flush(bool deferred) {
  g_deferred_flush = deferred;
  if (!deferred) flush();
}

void flush() { std::fflush(stdout); }

spdlog::logger& general() { return *loggers().general; }
spdlog::logger& events() { return *loggers().events; }

bool journal_active() { return journal_on; }

void event(spdlog::level::level_enum level, int priority, const std::string& line,
           std::span<const journal::Field> fields) {
  auto& out = events();
  if (!out.should_log(level)) return;
  if (journal_on && journal::send(priority, line, fields)) return;
  out.log(level, line);
}

}  // namespace netmond::log
