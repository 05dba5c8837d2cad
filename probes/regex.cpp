#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>

#include <utility>

namespace netmond {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  int n = pcre2_get_error_message(code, buffer, sizeof buffer);
  if (n < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(n));
}

// Bounds for one search, well above what a body check needs and far below a hang or a
// daemon that swells: backtracking steps, the interpreter's heap (KiB), the JIT's stack.
constexpr std::uint32_t kMatchLimit = 10'000'000;
constexpr std::uint32_t kHeapLimitKib = 64 * 1024;
constexpr std::size_t kJitStackStart = 32 * 1024;
constexpr std::size_t kJitStackMax = 8 * 1024 * 1024;

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;  // address space reserved; pages used on demand
  ~Code() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_code_free(code);
  }
};

std::optional<Regex> Regex::compile(std::string_view pattern, std::string* error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  auto compiled = std::make_shared<Code>();
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0,
                                 &code, &offset, nullptr);
  if (compiled->code == nullptr) {
    *error = pcre2_message(code) + " at offset " + std::to_string(offset);
    return std::nullopt;
  }
  // JIT when the platform has it; the interpreter otherwise (same results).
  (void)pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
  compiled->context = pcre2_match_context_create(nullptr);
  if (compiled->context == nullptr) {
    *error = "out of memory";
    return std::nullopt;
  }
  pcre2_set_match_limit(compiled->context, kMatchLimit);
  pcre2_set_heap_limit(compiled->context, kHeapLimitKib);
  // PCRE2's default JIT stack (32 KiB) gives up on "(.|\n)*" over a few KiB of body.
  compiled->jit_stack = pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr);
  if (compiled->jit_stack != nullptr)
    pcre2_jit_stack_assign(compiled->context, nullptr, compiled->jit_stack);
  return Regex(std::string(pattern), std::move(compiled));
}

Regex::Match Regex::search(std::string_view subject, std::string* error) const {
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (data == nullptr) {
    *error = "out of memory";
    return Match::Error;
  }
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
                       0, data, code_->context);
  pcre2_match_data_free(data);
  if (rc >= 0) return Match::Found;
  if (rc == PCRE2_ERROR_NOMATCH) return Match::NotFound;
  *error = pcre2_message(rc);
  return Match::Error;
}

}  // namespace netmond
