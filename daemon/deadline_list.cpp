#include "deadline_list.h"

#include <utility>

namespace netmond {

void DeadlineList::Entry::cancel() {
  if (list_ == nullptr) return;
  (prev_ ? prev_->next_ : list_->oldest_) = next_;
  (next_ ? next_->prev_ : list_->newest_) = prev_;
  list_ = nullptr;
  prev_ = next_ = nullptr;
  fn_ = nullptr;
}

DeadlineList::DeadlineList(uv_loop_t* loop, std::chrono::nanoseconds timeout)
    : timer_(loop), timeout_(timeout) {}

DeadlineList::~DeadlineList() {
  while (oldest_ != nullptr) oldest_->cancel();
}

void DeadlineList::arm(Entry& e, std::function<void()> fn) {
  e.cancel();
  e.list_ = this;
  e.due_ = uv::now() + timeout_;
  e.fn_ = std::move(fn);
  e.prev_ = newest_;
  (newest_ ? newest_->next_ : oldest_) = &e;
  newest_ = &e;
  // An active timer is due no later than this deadline: it was armed for an older one.
  if (!timer_.active()) timer_.start(timeout_, [this] { on_timer(); });
}

void DeadlineList::on_timer() {
  const auto now = uv::now();
  // libuv counts whole milliseconds from a loop time it truncates, so the timer can fire
  // up to 1 ms before the oldest deadline: what is not due yet waits for the re-arm.
  while (oldest_ != nullptr && oldest_->due_ <= now) {
    Entry& e = *oldest_;
    std::function<void()> fn = std::move(e.fn_);
    e.cancel();
    fn();  // may arm or cancel entries, this one included
  }
  if (oldest_ != nullptr && !timer_.active())
    timer_.start(oldest_->due_ - uv::now(), [this] { on_timer(); });
}

}  // namespace netmond
