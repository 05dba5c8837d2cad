// Unpredictable numbers for the nonces that tell our answers from forged or stale ones (DNS
// transaction ids, NTP transmit timestamps, echo and ICMP cookies): from the kernel's
// CSPRNG, getrandom(2), never a seeded generator whose output reveals the next value.
#pragma once

#include <cstdint>

namespace netmond {

std::uint64_t random_u64();

}  // namespace netmond
