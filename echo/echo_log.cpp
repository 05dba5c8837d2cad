#include "echo_log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace netmond {

namespace {

// "%*": the level as netmond writes it ("INFO ") or, for the journal, as a syslog priority.
class LevelFlag : public spdlog::custom_flag_formatter {
 public:
  explicit LevelFlag(bool journal) : journal_(journal) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr std::string_view kNames[] = {"TRACE", "DEBUG", "INFO ", "WARN ",
                                                  "ERROR", "CRIT ", "OFF  "};
    static constexpr std::string_view kPriorities[] = {"<7>", "<7>", "<6>", "<4>",
                                                       "<3>", "<2>", "<6>"};
    auto text = (journal_ ? kPriorities : kNames)[static_cast<int>(msg.level)];
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>(journal_);
  }

 private:
  bool journal_;
};

// systemd sets JOURNAL_STREAM to "DEV:INODE" of the journal stream it connected.
bool stdout_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (env == nullptr || fstat(fileno(stdout), &st) != 0) return false;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) == env;
}

}  // namespace

void setup_echo_logging(spdlog::level::level_enum level) {
  bool journal = stdout_is_journal();
  auto logger = std::make_shared<spdlog::logger>("netmond-echo",
                                                 std::make_shared<spdlog::sinks::stdout_sink_st>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelFlag>('*', journal)
      .set_pattern(journal ? "%*%v" : "%Y-%m-%d %H:%M:%S.%e %* %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // every line whole and at once, as netmond does
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace netmond
