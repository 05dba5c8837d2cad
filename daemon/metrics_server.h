// The HTTP side of the metrics: libmicrohttpd in external-select mode, driven from the
// daemon's libuv loop, on no thread of its own.
//
// MHD_USE_EPOLL gives MHD one epoll descriptor covering the listener and every
// connection; a uv::Poll watches it, and a uv::Timer follows MHD_get_timeout() (connection
// timeouts, and 0 when MHD has work without new readiness). MHD_run() runs after either
// fires, and the timer is re-armed after every MHD_run().
//
// GET (and HEAD) /metrics answers the text of the render function; any other path is 404,
// any other method 405. Bounds: kMaxConnections at once (more wait in the listen queue),
// kConnectionTimeout of idleness, kConnectionMemory per connection for the request.
#pragma once

#include "base/uv.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

struct MHD_Daemon;

namespace netmond {

class MetricsServer {
 public:
  static constexpr unsigned kMaxConnections = 32;
  static constexpr std::chrono::seconds kConnectionTimeout{10};
  static constexpr size_t kConnectionMemory = 32 * 1024;

  // Called once per GET /metrics, on the loop.
  using Render = std::function<std::string()>;

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
  // MHD_run(), then re-arms the timer from MHD_get_timeout().
  void run();

  uv_loop_t* loop_;
  Render render_;
  std::string listen_;
  // Order matters: the poll is closed before MHD closes the epoll descriptor it watches.
  std::unique_ptr<MHD_Daemon, StopDaemon> daemon_;
  uv::Poll poll_;
  uv::Timer timer_;
};

}  // namespace netmond
