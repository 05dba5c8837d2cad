#include "curl_multi.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

namespace netmond {

bool slist_append(CurlSlist& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (grown == nullptr) return false;
  (void)list.release();  // curl_slist_append returned the same list, grown by one
  list.reset(grown);
  return true;
}

// The watcher of one socket libcurl uses. `events` remembers what libcurl asked for, so
// that a watcher libuv stopped on POLLERR can be re-armed.
struct CurlMulti::Watch {
  uv::Poll poll;
  int events = 0;
};

CurlMulti::CurlMulti(uv_loop_t* loop) : loop_(loop), timer_(loop) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlMulti::~CurlMulti() {
  // Transfers still in flight belong to probes that are going away with us.
  for (auto& [easy, done] : transfers_) curl_multi_remove_handle(multi_, easy);
  transfers_.clear();
  // libcurl may still report sockets as removed from inside curl_multi_cleanup (kept
  // connections being closed): the watch map must exist until it returns.
  curl_multi_cleanup(multi_);
  sockets_.clear();
  timer_.stop();
  curl_global_cleanup();
}

bool CurlMulti::add(CURL* easy, DoneFn done, std::string* error) {
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    *error = curl_multi_strerror(rc);
    return false;
  }
  // curl_multi_add_handle() has armed the timer (on_timer with 0): the transfer begins on
  // the next loop turn, never inside add().
  transfers_[easy] = std::move(done);
  return true;
}

void CurlMulti::remove(CURL* easy) {
  auto it = transfers_.find(easy);
  if (it == transfers_.end()) return;
  transfers_.erase(it);
  // Closes the transfer's connection unless it may be reused; the socket callback then
  // reports REMOVE for it, from inside this call.
  curl_multi_remove_handle(multi_, easy);
}

int CurlMulti::on_socket(CURL* /*easy*/, curl_socket_t s, int what, void* self,
                         void* /*socketp*/) noexcept {
  auto* m = static_cast<CurlMulti*>(self);
  if (what == CURL_POLL_REMOVE) {
    // libcurl reports REMOVE before it closes the socket, so the watcher is closed first.
    m->sockets_.erase(s);
    return 0;
  }
  auto& watch = m->sockets_[s];
  if (!watch) {
    watch = std::make_unique<Watch>();
    if (int rc = watch->poll.init(m->loop_, s); rc != 0) {
      spdlog::error("curl: cannot watch socket {}: {}", s, uv::error_text(rc));
      m->sockets_.erase(s);
      return -1;  // libcurl fails the transfer using this socket
    }
  }
  watch->events = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? UV_READABLE : 0) |
                  (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? UV_WRITABLE : 0);
  if (int rc = m->arm(s, *watch); rc != 0) {
    spdlog::error("curl: cannot watch socket {}: {}", s, uv::error_text(rc));
    m->sockets_.erase(s);
    return -1;
  }
  return 0;
}

int CurlMulti::arm(curl_socket_t s, Watch& watch) {
  return watch.poll.start(watch.events, [this, s](int status, int events) {
    int flags = 0;
    // libuv reports POLLERR as status < 0: let libcurl read the socket's error.
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    socket_action(s, flags);
    // libuv also stopped the watcher on POLLERR: re-arm it if libcurl still wants it.
    if (status < 0)
      if (auto it = sockets_.find(s); it != sockets_.end()) arm(s, *it->second);
  });
}

int CurlMulti::on_timer(CURLM* /*multi*/, long timeout_ms, void* self) noexcept {
  auto* m = static_cast<CurlMulti*>(self);
  if (timeout_ms < 0) {
    m->timer_.stop();
    return 0;
  }
  // Never call curl_multi_socket_action() from here (it would recurse): a 0 ms timer
  // fires on the next loop turn.
  m->timer_.start(std::chrono::milliseconds(timeout_ms),
                  [m] { m->socket_action(CURL_SOCKET_TIMEOUT, 0); });
  return 0;
}

void CurlMulti::socket_action(curl_socket_t s, int flags) {
  int running = 0;
  CURLMcode rc = curl_multi_socket_action(multi_, s, flags, &running);
  if (rc != CURLM_OK) {
    fail_all(std::string("curl_multi_socket_action: ") + curl_multi_strerror(rc));
    return;
  }
  // Always drained, even when nothing is running any more: the transfer that just ended
  // (by a timeout, say) may have been the last one.
  finish_done_transfers();
}

void CurlMulti::finish_done_transfers() {
  // First collect: a message is invalid once its handle is removed.
  std::vector<std::pair<CURL*, CURLcode>> done;
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &queued))
    if (msg->msg == CURLMSG_DONE) done.emplace_back(msg->easy_handle, msg->data.result);
  for (auto [easy, result] : done) {
    auto it = transfers_.find(easy);
    if (it == transfers_.end()) continue;  // removed meanwhile
    DoneFn fn = std::move(it->second);
    transfers_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    fn(result);  // may re-add this handle or remove others
  }
}

void CurlMulti::fail_all(const std::string& why) {
  // The multi handle is unusable after a socket_action error until every transfer is
  // removed (curl_multi_socket_action(3)): end them all, each with a failure.
  spdlog::error("curl: {}; failing {} transfer(s)", why, transfers_.size());
  auto transfers = std::move(transfers_);
  transfers_.clear();
  for (auto& [easy, done] : transfers) curl_multi_remove_handle(multi_, easy);
  for (auto& [easy, done] : transfers) done(CURLE_FAILED_INIT);
}

}  // namespace netmond
