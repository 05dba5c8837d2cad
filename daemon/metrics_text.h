// The Prometheus text exposition format (version 0.0.4) of netmond's state: pure
// formatting from check states and last results, no I/O. docs/metrics.md lists every
// family; metrics.h serves the text and writes it to the textfile.
//
// Families follow blackbox_exporter's names where it has one (probe_success,
// probe_duration_seconds, probe_http_status_code, ...), labelled check, type and target;
// netmond's own are netmond_*. A family without samples is left out, HELP and TYPE
// included.
#pragma once

#include "check_state.h"
#include "histogram.h"
#include "result.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netmond {

// What the exposition shows of a check's last run, copied out of its Result on the loop so
// that the text can be formatted on another thread. The probe_* values a type does not
// have, or its run did not give, are unset.
struct LastRunMetrics {
  bool ok = false;
  double duration_seconds = 0;
  std::optional<double> http_status_code;     // http(s): 0 without a response
  std::optional<double> cert_expiry_seconds;  // http(s): Unix time
  std::optional<double> dns_answers;
  std::optional<double> icmp_rtt_min_seconds, icmp_rtt_avg_seconds, icmp_rtt_max_seconds;
  std::optional<double> icmp_loss_ratio;  // 0..1, only when requests were sent
  std::optional<double> ntp_offset_seconds;
  std::optional<double> ntp_stratum;

  static LastRunMetrics of(std::string_view type, const Result& r);
};

// One check as the exposition sees it: owns everything, nothing points into the daemon.
struct CheckMetrics {
  std::string name;
  std::string type;
  std::string target;
  Health health = Health::Unknown;
  std::uint64_t runs = 0;
  std::uint64_t failures = 0;
  std::uint64_t skipped_slots = 0;     // schedule slots passed over while a run was still going
  std::optional<LastRunMetrics> last;  // none before the first run
  std::optional<DurationHistogram> durations;  // none before the first run
};

struct MetricsSnapshot {
  std::string version;
  bool last_reload_ok = true;
  double last_reload_seconds = 0;             // Unix time of the last successful load
  std::optional<LatenessHistogram> lateness;  // none before the first run
  std::vector<CheckMetrics> checks;
};

// The whole exposition, ending in a newline.
std::string format_metrics(const MetricsSnapshot& snapshot);

// A label value with \, " and newline escaped as the format requires.
std::string escape_label_value(std::string_view value);
// HELP text with \ and newline escaped.
std::string escape_help(std::string_view text);
// A sample value as Go's ParseFloat reads it: shortest round-trip, NaN, +Inf, -Inf.
std::string format_value(double v);

// Unix time of "2025-01-31T12:00:00Z" (what the http probe writes for certificates), or
// a negative number when the text is not that.
double parse_utc_seconds(std::string_view text);

}  // namespace netmond
