// HTTP status and body assertions (probes/http.h, probes/regex.h): an http check's
// expect_status ranges are parsed from the configuration with parse_status_range, and each
// response is judged by StatusRange::contains on its status and Regex::search (PCRE2) of
// expect_body / expect_body_absent on its body; certificate dates from libcurl's
// CURLINFO_CERTINFO are read by parse_cert_time. The body is the server's, the patterns
// and ranges the operator's.
//
// Input: a status code (2 bytes), then the range text, the pattern and the body separated
// by NUL bytes. Properties: a parsed range is within 100..599, not empty, and formats back
// to text that parses to the same range; a compiled pattern searches any body without a
// crash or a hang (PCRE2's match limit bounds it, a limit hit is a Match::Error).
#include "check.h"
#include "http.h"
#include "regex.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace netmond;
using netmond::fuzzing::check;

namespace {

// The next NUL-terminated part of `rest` (all of it when there is no NUL).
std::string_view next_part(std::string_view* rest) {
  const std::size_t nul = rest->find('\0');
  const std::string_view part = rest->substr(0, nul);
  rest->remove_prefix(nul == std::string_view::npos ? rest->size() : nul + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int code = data[0] << 8 | data[1];
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::string_view range_text = next_part(&rest);
  const std::string_view pattern = next_part(&rest);
  const std::string_view body = rest;

  StatusRange range;
  std::string error;
  if (parse_status_range(range_text, &range, &error)) {
    check(range.first >= 100 && range.first <= range.last && range.last <= 599);
    const std::string text = format_status_ranges({range});
    StatusRange again;
    check(parse_status_range(text, &again, &error) && again == range);
    (void)range.contains(code);
  } else {
    check(!error.empty());
  }

  error.clear();
  if (const std::optional<Regex> re = Regex::compile(pattern, &error)) {
    check(re->pattern() == pattern);
    std::string why;
    (void)re->search(body, &why);
  } else {
    check(!error.empty());
  }

  std::int64_t when = 0;
  (void)parse_cert_time(body, &when);
  return 0;
}
