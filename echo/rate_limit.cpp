#include "rate_limit.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

namespace netmond {

namespace {

std::uint64_t mix(std::uint64_t x) {
  // splitmix64's finaliser: every input bit affects every output bit.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

IpAddr bucket_key(const IpAddr& a) {
  IpAddr k = a;
  if (!k.v4) std::fill(k.bytes.begin() + 8, k.bytes.end(), 0);  // the /64
  return k;
}

}  // namespace

RateLimiter::RateLimiter(double rate, double burst, size_t capacity)
    : rate_(rate), burst_(std::max(burst, 1.0)) {
  std::random_device rd;
  seed_[0] = (std::uint64_t{rd()} << 32) | rd();
  seed_[1] = (std::uint64_t{rd()} << 32) | rd();
  if (rate_ <= 0) return;
  size_t sets = std::bit_ceil(std::max<size_t>(1, (capacity + kWays - 1) / kWays));
  set_mask_ = sets - 1;
  entries_.resize(sets * kWays);
}

size_t RateLimiter::set_of(const IpAddr& key) const {
  std::uint64_t lo, hi;
  std::memcpy(&lo, key.bytes.data(), 8);
  std::memcpy(&hi, key.bytes.data() + 8, 8);
  std::uint64_t h = mix(lo ^ seed_[0]) ^ mix(hi ^ seed_[1] ^ (key.v4 ? 1 : 0));
  return static_cast<size_t>(h) & set_mask_;
}

bool RateLimiter::allow(const IpAddr& source, std::uint64_t now_ns) {
  if (rate_ <= 0) return true;
  IpAddr key = bucket_key(source);
  Entry* set = &entries_[set_of(key) * kWays];
  Entry* victim = set;
  for (size_t i = 0; i < kWays; ++i) {
    Entry& e = set[i];
    if (e.used && e.v4 == key.v4 && e.key == key.bytes) {
      double elapsed = now_ns > e.last_ns ? static_cast<double>(now_ns - e.last_ns) * 1e-9 : 0;
      e.last_ns = std::max(e.last_ns, now_ns);
      e.last_use = ++use_clock_;
      e.tokens = std::min(burst_, e.tokens + elapsed * rate_);
      if (e.tokens < 1) return false;
      e.tokens -= 1;
      return true;
    }
    // Prefer a free entry, else the least recently seen.
    if (victim->used && (!e.used || e.last_use < victim->last_use)) victim = &e;
  }
  if (victim->used) ++evictions_;
  *victim = Entry{key.bytes, now_ns, ++use_clock_, burst_ - 1, true, key.v4};
  return true;
}

size_t RateLimiter::tracked() const {
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.used; }));
}

}  // namespace netmond
