#include "base/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>

namespace netmond {

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  // Eight bytes never come back short once the pool is initialised (getrandom(2): up to
  // 256 bytes are atomic); EINTR cannot hit a request that small, but is retried anyway.
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    if (errno != EINTR) std::abort();  // no kernel randomness: nothing can be trusted
  }
  return v;
}

}  // namespace netmond
