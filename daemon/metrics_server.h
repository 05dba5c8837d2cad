// The HTTP side of the metrics: libmicrohttpd in external-select mode, driven from the
// daemon's libuv loop, on no thread of its own.
//
// MHD_USE_EPOLL gives MHD one epoll descriptor covering the listener and every
// connection; a uv::Poll watches it, and a uv::Timer follows MHD_get_timeout() (connection
// timeouts, and 0 when MHD has work without new readiness). MHD_run() runs after either
// fires, and the timer is re-armed after every MHD_run().
//
// GET (and HEAD) /metrics answers the text of the render function; any other path is 404,
// any other method 405. The text is formatted off the loop: at 10,000 checks it is 22 MB
// and took 130 ms, long enough to make every run due meanwhile late. The render function
// takes what the text needs on the loop (copies, a few ms) and returns the formatting,
// which runs on a thread of its own (uv::BackgroundWork) while MHD holds the connection
// suspended (MHD_ALLOW_SUSPEND_RESUME); the loop resumes it with the text when the thread is
// done. Scrapes that arrive while a text is being formatted wait for it and share it. Bounds:
// kMaxConnections at once (more wait in the listen queue), kConnectionTimeout of idleness,
// kConnectionMemory per connection for the request.
#pragma once

#include "base/uv.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct MHD_Daemon;
struct MHD_Connection;

namespace netmond {

class MetricsServer {
 public:
  static constexpr unsigned kMaxConnections = 32;
  static constexpr std::chrono::seconds kConnectionTimeout{10};
  static constexpr size_t kConnectionMemory = 32 * 1024;

  // Called on the loop when a scrape needs a text: takes what the text needs (owning
  // copies) and returns the formatting, which runs on another thread and so must touch
  // nothing but what it owns.
  using Format = std::function<std::string()>;
  using Render = std::function<Format()>;

  MetricsServer(uv_loop_t* loop, Render render);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on `listen` ("IP:PORT", "[IPv6]:PORT"; "" is off), after closing the current
  // listener. On failure logs one warning and stays off.
  bool start(const std::string& listen);
  // Closes the listener and every connection.
  void stop();
  bool listening() const { return daemon_ != nullptr; }
  // The configured address, also when binding it failed.
  const std::string& listen() const { return listen_; }

 private:
  struct StopDaemon {
    void operator()(MHD_Daemon* d) const;
  };
  struct Scrape;  // one suspended GET /metrics
  // MHD_run(), then re-arms the timer from MHD_get_timeout().
  void run();
  // MHD's access handler: an MHD_Result.
  int on_request(MHD_Connection* connection, const char* url, const char* method, void** con_cls);
  // Starts formatting a text for the waiting scrapes on a thread; false if none started.
  bool start_render();
  // Hands `text` to every waiting scrape and resumes their connections.
  void rendered(std::shared_ptr<const std::string> text);
  // Resumes every waiting scrape (MHD must not be stopped with suspended connections).
  void resume_all();

  uv_loop_t* loop_;
  Render render_;
  std::string listen_;
  std::vector<Scrape*> waiting_;  // suspended; owned by their connection (MHD's con_cls)
  // Order matters: the poll is closed before MHD closes the epoll descriptor it watches.
  std::unique_ptr<MHD_Daemon, StopDaemon> daemon_;
  uv::Poll poll_;
  uv::Timer timer_;
  uv::BackgroundWork formatting_;
};

}  // namespace netmond
