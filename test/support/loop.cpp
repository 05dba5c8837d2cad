#include "support/loop.h"

#include <cstdio>
#include <filesystem>

namespace netmond::test {

std::size_t open_fd_count() {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;  // includes the directory_iterator's own descriptor, every time alike
}

LoopFixture::LoopFixture() { uv_loop_init(&loop_); }

LoopFixture::~LoopFixture() {
  if (!closed_ && finish() != 0) std::fprintf(stderr, "LoopFixture: handles left open\n");
}

bool LoopFixture::run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  // The loop time may be stale after blocking test code; the guard must count from now.
  uv_update_time(&loop_);
  // A guard timer wakes the loop at the limit, so UV_RUN_ONCE never blocks past it.
  uv_timer_t guard;
  uv_timer_init(&loop_, &guard);
  bool expired = false;
  guard.data = &expired;
  uv_timer_start(
      &guard, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
      static_cast<uint64_t>(limit.count()), 0);
  // A result delivered by a timer lands before the loop blocks in poll: check the
  // predicate there (prepare runs after timers, before poll) and stop instead of blocking.
  uv_prepare_t check;
  uv_prepare_init(&loop_, &check);
  check.data = const_cast<std::function<bool()>*>(&done);
  uv_prepare_start(&check, [](uv_prepare_t* p) {
    if ((*static_cast<const std::function<bool()>*>(p->data))()) uv_stop(p->loop);
  });
  while (!done() && !expired) uv_run(&loop_, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);  // run the closes
  return done();
}

unsigned LoopFixture::run_for(std::chrono::milliseconds d) {
  unsigned turns = 0;
  // run_until asks its predicate once per turn in the prepare phase, and once more for
  // each uv_run that returns.
  run_until(
      [&turns] {
        ++turns;
        return false;
      },
      d);
  return turns;
}

int LoopFixture::finish() {
  if (closed_) return 0;
  for (int i = 0; i < 16 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  int rc = uv_loop_close(&loop_);
  if (rc == 0)
    closed_ = true;
  else {
    // Print what is still open, to find the leak.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
          std::fprintf(stderr, "open handle: %s active=%d\n", uv_handle_type_name(h->type),
                       uv_is_active(h));
        },
        nullptr);
  }
  return rc;
}

}  // namespace netmond::test
