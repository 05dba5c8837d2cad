// uv::BackgroundWork: work on a thread of its own, its end reported on the loop, and an
// owner that can walk away from work that blocks without the loop waiting for it.
#include "base/uv.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

using namespace netmond;
using namespace std::chrono_literals;

TEST_CASE("background work runs on another thread and reports on the loop's", "[uv]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id work_thread;
  int done_calls = 0;
  bool done_on_loop_thread = false;
  {
    uv::BackgroundWork work(&loop);
    REQUIRE(work.start([&] { work_thread = std::this_thread::get_id(); },
                       [&] {
                         ++done_calls;
                         done_on_loop_thread = std::this_thread::get_id() == loop_thread;
                         CHECK_FALSE(work.active());
                       }) == 0);
    CHECK(work.active());
    CHECK(work.start([] {}, [] {}) == UV_EBUSY);
    uv_run(&loop, UV_RUN_DEFAULT);  // returns once done ran: nothing else keeps it
    CHECK(done_calls == 1);
    CHECK(done_on_loop_thread);
    CHECK(work_thread != loop_thread);
    CHECK(work_thread != std::thread::id{});

    // `done` may start the next work on the same owner.
    int chained = 0;
    REQUIRE(work.start([] {},
                       [&] {
                         ++chained;
                         if (chained == 1) CHECK(work.start([] {}, [&] { ++chained; }) == 0);
                       }) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(chained == 2);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("background work that blocks does not hold the loop once its owner is gone", "[uv]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  bool done_called = false;
  {
    uv::BackgroundWork work(&loop);
    REQUIRE(work.start(
                [released, finished] {
                  released.wait();  // a read that does not return (a FIFO nobody writes)
                  *finished = true;
                },
                [&] { done_called = true; }) == 0);
    // The loop runs while the work blocks: a timer fires.
    uv::Timer timer(&loop);
    bool fired = false;
    timer.start(10ms, [&] { fired = true; });
    uv_run(&loop, UV_RUN_ONCE);
    CHECK(fired);
  }
  // Owner gone, the work still blocked: the loop has nothing left and returns at once.
  const auto t0 = std::chrono::steady_clock::now();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK_FALSE(*finished);
  // The work ends later, unobserved: `done` is never called, and nothing touches the
  // closed loop (ASan would see it).
  release.set_value();
  for (int i = 0; i < 500 && !*finished; ++i) std::this_thread::sleep_for(2ms);
  CHECK(*finished);
  std::this_thread::sleep_for(20ms);  // let the thread drop its state
  CHECK_FALSE(done_called);
}
