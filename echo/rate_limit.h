// Per-source token buckets in a table of fixed size, so that a flood from spoofed sources
// costs bounded memory and no allocation.
//
// The table is set-associative: a source hashes (with a per-process random key, so a
// flood cannot aim at one set) to a set of kWays entries; a new source takes a free entry
// of its set or evicts the one seen least recently. A source sending steadily stays in the
// table; an evicted one comes back with a full bucket, which a flood of many sources
// could exploit only by landing kWays new sources in one set between two of its packets.
#pragma once

#include "source_filter.h"

#include <array>
#include <cstdint>
#include <vector>

namespace netmond {

class RateLimiter {
 public:
  static constexpr size_t kWays = 8;

  // `rate` tokens per second up to `burst`; rate 0 turns limiting off. `capacity` is the
  // number of sources tracked (rounded up to a power of two times kWays).
  RateLimiter(double rate, double burst, size_t capacity);

  // Takes a token from `source`'s bucket at time `now_ns` (monotonic); false when empty.
  // IPv6 sources are bucketed per /64: one host usually owns a whole /64.
  bool allow(const IpAddr& source, std::uint64_t now_ns);

  bool enabled() const { return rate_ > 0; }
  size_t capacity() const { return entries_.size(); }
  // Sources in the table now, and sources evicted to make room so far.
  size_t tracked() const;
  std::uint64_t evictions() const { return evictions_; }

 private:
  struct Entry {
    std::array<std::uint8_t, 16> key{};
    std::uint64_t last_ns = 0;   // of the last refill
    std::uint64_t last_use = 0;  // use_clock_ at the last lookup: exact LRU, even in ties
    double tokens = 0;
    bool used = false;
    bool v4 = false;
  };
  size_t set_of(const IpAddr& key) const;

  double rate_;
  double burst_;
  std::uint64_t seed_[2];
  size_t set_mask_ = 0;
  std::vector<Entry> entries_;
  std::uint64_t use_clock_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace netmond
