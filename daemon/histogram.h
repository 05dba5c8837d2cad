// Prometheus-style histograms of durations: fixed upper bounds, a count per bucket, the
// sum and the count. The scheduler keeps one per check (how long its runs took), the
// metrics one for the whole loop (how late runs started); metrics_text.h formats them.
#pragma once

#include <array>
#include <cstdint>

namespace netmond {

// Observations counted in buckets with the upper bounds `Bounds` (+Inf implied), as a
// Prometheus histogram.
template <const auto& Bounds>
struct Histogram {
  static constexpr const auto& bounds = Bounds;
  std::array<std::uint64_t, Bounds.size()> counts{};  // per bucket, not cumulative
  double sum = 0;
  std::uint64_t count = 0;
  void observe(double v) {
    for (std::size_t i = 0; i < Bounds.size(); ++i) {
      if (v <= Bounds[i]) {
        ++counts[i];
        break;
      }
    }
    sum += v;
    ++count;
  }
};

// Upper bounds (seconds) of netmond_check_duration_seconds' buckets; +Inf is implied.
// Prometheus' defaults, stretched to a minute for slow runs with retries.
inline constexpr std::array<double, 13> kDurationBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
// How long one check's runs took, since the check (re)started.
using DurationHistogram = Histogram<kDurationBuckets>;

// Upper bounds (seconds) of netmond_schedule_lateness_seconds: from the loop timers'
// millisecond resolution up to runs that start whole seconds late (an overloaded loop).
inline constexpr std::array<double, 12> kLatenessBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,   0.25,   0.5,   1,    2.5,   10};
// How late runs started after their due time, all checks together, since netmond started.
using LatenessHistogram = Histogram<kLatenessBuckets>;

}  // namespace netmond
