// CurlMulti: the daemon's one libcurl multi handle, driven by the libuv loop.
//
// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one uv::Poll per
// socket) and when to call it back (CURLMOPT_TIMERFUNCTION -> one uv::Timer); we hand it
// every event with curl_multi_socket_action() and read finished transfers with
// curl_multi_info_read(). No threads, no curl_multi_perform() loop.
//
// Re-entrancy: the multi API must not be called from inside a libcurl callback, so
//  - the timer callback only arms the uv timer (the socket action runs on the next turn),
//  - a transfer's DoneFn runs after curl_multi_socket_action() has returned and after its
//    easy handle was removed from the multi, so it may free or re-add the handle,
//  - remove() may be called at any time except from inside a libcurl callback (write,
//    header, ...), which the probes never do: they end a transfer early by returning a
//    short count from the write callback.
#pragma once

#include "base/uv.h"

#include <curl/curl.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace netmond {

// RAII for the libcurl handles the probes own.
struct CurlEasyDeleter {
  void operator()(CURL* easy) const noexcept { curl_easy_cleanup(easy); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;
// Appends `line` to `list`; false when libcurl is out of memory (the list is unchanged).
bool slist_append(CurlSlist& list, const std::string& line);

class CurlMulti {
 public:
  using DoneFn = std::function<void(CURLcode result)>;

  // Calls curl_global_init() (reference-counted by libcurl) and creates the multi handle.
  explicit CurlMulti(uv_loop_t* loop);
  // Removes the transfers still in flight (their DoneFn never fires) and cleans up; the
  // loop must run afterwards to complete the uv_close() of the socket watchers.
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // Starts the transfer `easy` (configured by the caller, which keeps owning it). `done`
  // fires exactly once, on a later loop turn, with the handle already removed; unless
  // remove() comes first. False (and *error) when libcurl refuses the handle.
  bool add(CURL* easy, DoneFn done, std::string* error);
  // Stops the transfer `easy` if it is in flight; its DoneFn never fires. Safe otherwise.
  void remove(CURL* easy);

  std::size_t transfers() const { return transfers_.size(); }
  std::size_t sockets() const { return sockets_.size(); }

 private:
  struct Watch;  // one socket libcurl asked us to watch

  static int on_socket(CURL* easy, curl_socket_t s, int what, void* self, void* socketp) noexcept;
  static int on_timer(CURLM* multi, long timeout_ms, void* self) noexcept;
  int arm(curl_socket_t s, Watch& watch);
  void socket_action(curl_socket_t s, int flags);
  void finish_done_transfers();
  void fail_all(const std::string& why);

  uv_loop_t* loop_;
  CURLM* multi_ = nullptr;
  uv::Timer timer_;
  std::unordered_map<curl_socket_t, std::unique_ptr<Watch>> sockets_;
  std::unordered_map<CURL*, DoneFn> transfers_;
};

}  // namespace netmond
