// A check's health over time: the pure state machine behind UP and DOWN.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace netmond {

enum class Health : std::uint8_t { Unknown, Up, Down };

std::string_view to_string(Health h);  // "unknown", "up", "down"
std::string_view to_upper(Health h);   // "UNKNOWN", "UP", "DOWN"

struct CheckState {
  Health health = Health::Unknown;
  unsigned ok_streak = 0;    // consecutive successful runs
  unsigned fail_streak = 0;  // consecutive failed runs
  std::uint64_t runs = 0;
  std::uint64_t failures = 0;
  std::chrono::system_clock::time_point since{};  // when `health` last changed
  bool operator==(const CheckState&) const = default;
};

// The state after one more run. Health turns DOWN after `fail_after` consecutive failures
// and UP after `recover_after` consecutive successes; the same thresholds decide the
// first state out of UNKNOWN, so a flapping start never reports a state it has not seen
// confirmed. `now` becomes `since` when health changes.
CheckState next_state(const CheckState& s, bool ok, unsigned fail_after, unsigned recover_after,
                      std::chrono::system_clock::time_point now);

}  // namespace netmond
