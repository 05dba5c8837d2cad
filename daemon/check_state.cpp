#include "check_state.h"

namespace netmond {

std::string_view to_string(Health h) {
  switch (h) {
    case Health::Up: return "up";
    case Health::Down: return "down";
    case Health::Unknown: break;
  }
  return "unknown";
}

std::string_view to_upper(Health h) {
  switch (h) {
    case Health::Up: return "UP";
    case Health::Down: return "DOWN";
    case Health::Unknown: break;
  }
  return "UNKNOWN";
}

CheckState next_state(const CheckState& s, bool ok, unsigned fail_after, unsigned recover_after,
                      std::chrono::system_clock::time_point now) {
  CheckState n = s;
  ++n.runs;
  if (ok) {
    ++n.ok_streak;
    n.fail_streak = 0;
    if (n.health != Health::Up && n.ok_streak >= recover_after) n.health = Health::Up;
  } else {
    ++n.failures;
    ++n.fail_streak;
    n.ok_streak = 0;
    if (n.health != Health::Down && n.fail_streak >= fail_after) n.health = Health::Down;
  }
  if (n.health != s.health) n.since = now;
  return n;
}

}  // namespace netmond
