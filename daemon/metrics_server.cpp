#include "metrics_server.h"

#include "config.h"
#include "log.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>

namespace netmond {

namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// MHD's own messages (a refused connection over the limit, a malformed request) are
// about clients, not the daemon: debug level.
void log_mhd(void*, const char* format, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, format, ap);
  std::string_view text = buf;
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  log::general().debug("metrics: {}", text);
}

MHD_Result respond(MHD_Connection* connection, unsigned status,
                   std::shared_ptr<const std::string> body, const char* content_type,
                   const char* allow = nullptr) {
  // The response holds the text (shared by the scrapes that waited for the same one); MHD
  // lets go of it with the response.
  auto* held = new std::shared_ptr<const std::string>(std::move(body));
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      (*held)->size(), const_cast<char*>((*held)->data()),
      [](void* cls) { delete static_cast<std::shared_ptr<const std::string>*>(cls); }, held);
  if (response == nullptr) {
    delete held;
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (allow != nullptr) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
  MHD_Result rc = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return rc;
}

MHD_Result respond(MHD_Connection* connection, unsigned status, const char* text,
                   const char* allow = nullptr) {
  return respond(connection, status, std::make_shared<const std::string>(text),
                 "text/plain; charset=utf-8", allow);
}

// A bound, listening, non-blocking socket for `addr`, or -1 with errno set.
int listen_socket(const SockAddr& addr) {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  // A restart (or a reload that moves back) must not wait out TIME_WAIT.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, addr.get(), addr.length) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

void MetricsServer::StopDaemon::operator()(MHD_Daemon* d) const { MHD_stop_daemon(d); }

struct MetricsServer::Scrape {
  MHD_Connection* connection;
  std::shared_ptr<const std::string> text;  // set by rendered(), before the resume
};

MetricsServer::MetricsServer(uv_loop_t* loop, Render render)
    : loop_(loop), render_(std::move(render)), timer_(loop), formatting_(loop) {}

MetricsServer::~MetricsServer() { stop(); }

bool MetricsServer::start(const std::string& listen) {
  stop();
  listen_ = listen;
  if (listen.empty()) return false;
  std::string why;
  std::optional<SockAddr> addr = parse_listen_address(listen, &why);
  if (!addr) {
    log::general().warn("metrics off: {}: {}", listen, why);
    return false;
  }
  int fd = listen_socket(*addr);
  if (fd < 0) {
    log::general().warn("metrics off: cannot listen on {}: {}", listen, std::strerror(errno));
    return false;
  }

  auto handler = [](void* cls, MHD_Connection* connection, const char* url, const char* method,
                    const char*, const char*, size_t*, void** con_cls) -> MHD_Result {
    return static_cast<MHD_Result>(
        static_cast<MetricsServer*>(cls)->on_request(connection, url, method, con_cls));
  };
  auto completed = [](void* cls, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
    auto* scrape = static_cast<Scrape*>(*con_cls);
    if (scrape == nullptr) return;
    auto& waiting = static_cast<MetricsServer*>(cls)->waiting_;
    waiting.erase(std::remove(waiting.begin(), waiting.end(), scrape), waiting.end());
    delete scrape;
    *con_cls = nullptr;
  };
  // No MHD thread: MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD is external mode.
  // MHD_ALLOW_SUSPEND_RESUME adds an eventfd to MHD's epoll set, so a resume wakes the loop.
  MHD_Daemon* d = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, nullptr, nullptr, handler,
      this, MHD_OPTION_EXTERNAL_LOGGER, &log_mhd, nullptr, MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(kConnectionTimeout.count()), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      kConnectionMemory, MHD_OPTION_NOTIFY_COMPLETED,
      static_cast<MHD_RequestCompletedCallback>(completed), this, MHD_OPTION_END);
  if (d == nullptr) {
    // Whether MHD closed the socket on failure varies by version: close it if still ours.
    if (::fcntl(fd, F_GETFD) != -1) ::close(fd);
    log::general().warn("metrics off: libmicrohttpd could not start on {}", listen);
    return false;
  }
  daemon_.reset(d);
  const MHD_DaemonInfo* info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
  int rc = info == nullptr ? UV_EINVAL : poll_.init(loop_, info->epoll_fd);
  if (rc == 0) rc = poll_.start(UV_READABLE, [this](int, int) { run(); });
  if (rc != 0) {
    log::general().warn("metrics off: cannot watch libmicrohttpd's epoll descriptor: {}",
                        uv::error_text(rc));
    stop();
    listen_ = listen;
    return false;
  }
  log::general().info("metrics listening on http://{}/metrics", addr->with_port());
  run();
  return true;
}

int MetricsServer::on_request(MHD_Connection* connection, const char* url, const char* method,
                              void** con_cls) {
  std::string_view m = method;
  if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD)
    return respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n",
                   "GET, HEAD");
  if (std::string_view(url) != "/metrics")
    return respond(connection, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
  auto* scrape = static_cast<Scrape*>(*con_cls);
  if (scrape == nullptr) {
    // First call: wait for a text, the one being formatted if there is one. MHD calls
    // again after the resume.
    if (!formatting_.active() && !start_render()) {
      // No thread to be had (out of resources): format here rather than fail the scrape.
      return respond(connection, MHD_HTTP_OK, std::make_shared<const std::string>(render_()()),
                     kContentType);
    }
    scrape = new Scrape{connection, nullptr};
    *con_cls = scrape;
    waiting_.push_back(scrape);
    MHD_suspend_connection(connection);
    return MHD_YES;
  }
  if (!scrape->text) return MHD_YES;  // resumed without a text: the server is stopping
  return respond(connection, MHD_HTTP_OK, scrape->text, kContentType);
}

bool MetricsServer::start_render() {
  auto text = std::make_shared<std::string>();
  auto format = std::make_shared<Format>(render_());
  return formatting_.start([format, text] { *text = (*format)(); },
                           [this, text] { rendered(text); }) == 0;
}

void MetricsServer::rendered(std::shared_ptr<const std::string> text) {
  if (waiting_.empty() || !daemon_) return;  // stopped meanwhile: nobody waits
  for (Scrape* scrape : waiting_) {
    scrape->text = text;
    MHD_resume_connection(scrape->connection);
  }
  waiting_.clear();
  run();  // MHD answers resumed connections in its next run
}

void MetricsServer::resume_all() {
  for (Scrape* scrape : waiting_) MHD_resume_connection(scrape->connection);
  waiting_.clear();
}

void MetricsServer::stop() {
  resume_all();  // without a text: MHD closes them as it stops
  timer_.stop();
  poll_.reset();  // before MHD closes the descriptor the poll watches
  daemon_.reset();
  listen_.clear();
}

void MetricsServer::run() {
  if (!daemon_) return;
  auto connections = [this] {
    const MHD_DaemonInfo* info =
        MHD_get_daemon_info(daemon_.get(), MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info == nullptr ? 0u : info->num_connections;
  };
  const unsigned before = connections();
  MHD_run(daemon_.get());
  // At the connection limit MHD takes the listener out of its epoll set, and puts it back
  // only at the start of a later MHD_run(). When that run's closing of connections leaves
  // none with a timeout, nothing would call it: call it now, or the listener stays deaf.
  if (before >= kMaxConnections && connections() < kMaxConnections) MHD_run(daemon_.get());
  MHD_UNSIGNED_LONG_LONG ms = 0;
  // MHD_NO: nothing timed (no connection open); the epoll descriptor wakes us.
  if (MHD_get_timeout(daemon_.get(), &ms) == MHD_YES)
    timer_.start(std::chrono::milliseconds(ms), [this] { run(); });
  else
    timer_.stop();
}

}  // namespace netmond
