// A libuv loop for one test case, with libuv's own leak discipline: destroy every handle
// owner, then finish() must return 0 (uv_loop_close found no handle left open).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>

namespace netmond::test {

// How many descriptors this process has open (/proc/self/fd): whether a probe kept or
// closed its socket.
std::size_t open_fd_count();

class LoopFixture {
 public:
  LoopFixture();
  ~LoopFixture();
  LoopFixture(const LoopFixture&) = delete;
  LoopFixture& operator=(const LoopFixture&) = delete;

  uv_loop_t* loop() { return &loop_; }

  // Runs the loop until `done()` is true or `limit` has passed; returns done().
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::seconds(5));
  // Runs the loop for `d` (timers keep firing). Returns how often the loop went round (its
  // prepare phase ran), which tells a loop that sleeps (a few turns) from one that spins
  // on a descriptor nobody reads (thousands).
  unsigned run_for(std::chrono::milliseconds d);
  // Lets pending close callbacks run, then closes the loop. 0 means nothing leaked;
  // UV_EBUSY means some handle is still open.
  int finish();

 private:
  uv_loop_t loop_{};
  bool closed_ = false;
};

}  // namespace netmond::test
