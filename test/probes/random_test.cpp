// random_u64: nonces from the kernel's CSPRNG, drawn 32 at a time and each handed out once.
#include "base/random.h"

#include <catch2/catch.hpp>

#include <set>
#include <thread>

using namespace netmond;

TEST_CASE("random_u64: never the same value twice, across refills and threads", "[random]") {
  // 1,000 values span 32 refills of the pool; two equal 64-bit values by chance have a
  // probability below 1e-13, so any repeat is a bug (a value handed out twice).
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(random_u64());
  CHECK(seen.size() == 1000);
  // Another thread draws from a pool of its own, not a copy of this one.
  std::set<std::uint64_t> other;
  std::thread t([&other] {
    for (int i = 0; i < 100; ++i) other.insert(random_u64());
  });
  t.join();
  CHECK(other.size() == 100);
  for (std::uint64_t v : other) CHECK(seen.count(v) == 0);
}
