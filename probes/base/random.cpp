#include "base/random.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdlib>

namespace netmond {

std::uint64_t random_u64() {
  // 256 bytes per getrandom(2) call (the most it returns atomically), handed out 8 at a
  // time and each value only once: a system call per nonce was a tenth of an NTP run.
  // Per thread, so no lock; netmond never forks, so no child can replay a parent's values.
  thread_local std::array<std::uint64_t, 32> pool;
  thread_local std::size_t next = pool.size();
  if (next == pool.size()) {
    // Never short once the kernel's pool is initialised; EINTR is retried anyway.
    while (getrandom(pool.data(), sizeof pool, 0) != static_cast<ssize_t>(sizeof pool)) {
      if (errno != EINTR) std::abort();  // no kernel randomness: nothing can be trusted
    }
    next = 0;
  }
  std::uint64_t v = pool[next];
  pool[next++] = 0;  // spent: not left in memory for anyone who reads it later
  return v;
}

}  // namespace netmond
