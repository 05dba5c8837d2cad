// Regex: a compiled PCRE2 pattern (Perl syntax, as operators write them in Nagios'
// check_http -r and blackbox_exporter), for expectations on a response body.
//
// PCRE2 rather than std::regex: std::regex recurses per character and overflows the stack
// on a large body, and has no match limit; PCRE2 matches with a bounded heap and a match
// limit, so a pathological pattern gives an error, not a hung daemon.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace netmond {

class Regex {
 public:
  // The compiled pattern, or nullopt with *error ("missing closing parenthesis at offset 3").
  static std::optional<Regex> compile(std::string_view pattern, std::string* error);

  enum class Match { Found, NotFound, Error };
  // Searches `subject` anywhere (not anchored). Error (with *error) when PCRE2 gave up, e.g.
  // at its match limit.
  Match search(std::string_view subject, std::string* error) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  Regex(std::string pattern, std::shared_ptr<const Code> code)
      : pattern_(std::move(pattern)), code_(std::move(code)) {}
  std::string pattern_;
  std::shared_ptr<const Code> code_;  // immutable once compiled: copies share it
};

}  // namespace netmond
