// DeadlineList: the deadlines of runs that share one timeout, served by one loop timer.
//
// A deadline armed now with timeout T is due at now + T, and every deadline armed later
// with the same T is due later still: the deadlines of one timeout come due in the order
// they were armed. A list in that order is sorted by construction, so arming and
// cancelling are O(1) (an intrusive list), and one timer armed for the oldest deadline
// serves them all. Each run used to start and stop a timer of its own, two operations on
// libuv's timer heap, which holds every check's slot timer too (10,000 checks at 1 s:
// `uv_timer_stop` alone was 2.75% of the daemon's CPU). Cancelling the oldest deadline
// leaves the timer as it is: when it fires it serves what is due and re-arms for the
// oldest deadline left, so a timeout of T costs about one timer start per T however many
// runs arm it.
#pragma once

#include "base/uv.h"

#include <chrono>
#include <functional>

namespace netmond {

class DeadlineList {
 public:
  // One deadline, owned by whoever arms it (a CheckRunner); cancelled when destroyed.
  class Entry {
   public:
    Entry() = default;
    ~Entry() { cancel(); }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

    void cancel();
    bool armed() const { return list_ != nullptr; }

   private:
    friend class DeadlineList;
    DeadlineList* list_ = nullptr;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
    std::chrono::nanoseconds due_{};  // uv::now() clock
    std::function<void()> fn_;
  };

  DeadlineList(uv_loop_t* loop, std::chrono::nanoseconds timeout);
  ~DeadlineList();  // cancels every entry still armed
  DeadlineList(const DeadlineList&) = delete;
  DeadlineList& operator=(const DeadlineList&) = delete;

  // Arms `e` (cancelled first if armed): `fn` runs once, from the loop, on the first turn
  // at or after uv::now() + timeout, unless `e` is cancelled or destroyed before. `fn`
  // may arm or cancel any entry.
  void arm(Entry& e, std::function<void()> fn);

  bool empty() const { return oldest_ == nullptr; }

 private:
  void on_timer();

  uv::Timer timer_;
  const std::chrono::nanoseconds timeout_;
  Entry* oldest_ = nullptr;
  Entry* newest_ = nullptr;
};

}  // namespace netmond
