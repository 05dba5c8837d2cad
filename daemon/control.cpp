#include "control.h"

#include "log.h"

#include <fmt/format.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace netmond {

namespace {

using Json = nlohmann::ordered_json;

constexpr auto kDumpError = nlohmann::ordered_json::error_handler_t::replace;

Json error(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

enum class SocketProbe { Live, Stale, Failed };

// Whether a process accepts connections on the socket file `path`. Non-blocking, so a
// live server with a full backlog (EAGAIN) cannot block us.
SocketProbe probe_socket(const std::string& path, int* err) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *err = errno;
    return SocketProbe::Failed;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  *err = rc == 0 ? 0 : errno;
  ::close(fd);
  if (rc == 0 || *err == EAGAIN || *err == EINPROGRESS) return SocketProbe::Live;
  return *err == ECONNREFUSED ? SocketProbe::Stale : SocketProbe::Failed;
}

}  // namespace

nlohmann::ordered_json check_status_json(const CheckRunner& runner) {
  using Json = nlohmann::ordered_json;
  const CheckConfig& c = runner.config();
  const CheckState& s = runner.state();
  const std::optional<Result>& last = runner.last_result();
  Json j = {
      {"name", c.name},
      {"type", c.type()},
      {"target", c.target()},
      {"state", to_string(s.health)},
      {"since", nullptr},
      {"latency_ms", nullptr},
      {"message", nullptr},
      {"reason", nullptr},
      {"runs", s.runs},
      {"failures", s.failures},
      {"interval_ms", c.interval.count()},
      {"in_flight", runner.in_flight()},
  };
  if (s.since != std::chrono::system_clock::time_point{}) j["since"] = rfc3339_ms(s.since);
  if (last) {
    j["latency_ms"] = round_ms(last->latency);
    j["message"] = last->message;
    j["reason"] = code(last->status);
  }
  return j;
}

struct ControlServer::Client {
  std::uint64_t id = 0;
  uv::PipeStream stream;
  std::string in;         // received, not handled yet
  bool watching = false;  // streams events; input is ignored
  bool closing = false;   // sent its last response, closes when that is out
  bool dead = false;      // dropped: erased by the next sweep
  bool eof = false;       // the client will send nothing more
  bool resume = false;    // handle the rest of `in` at the next sweep
  std::string run_check;  // a `run` waiting for this check's result
  const CheckRunner* run_runner = nullptr;
  bool reloading = false;  // a `reload` waiting for the daemon's answer
  // A request awaits its response: the client's next requests wait, unread.
  bool waiting() const { return !run_check.empty() || reloading; }
};

ControlServer::ControlServer(uv_loop_t* loop, Scheduler& scheduler, Hooks hooks)
    : loop_(loop), scheduler_(scheduler), hooks_(std::move(hooks)), sweep_(loop) {}

ControlServer::~ControlServer() {
  stop();
  clients_.clear();
}

bool ControlServer::start(const std::string& path) {
  stop();
  path_ = path;
  if (path.empty()) return false;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      log::general().warn("control socket off: {} exists and is not a socket", path);
      return false;
    }
    int err = 0;
    switch (probe_socket(path, &err)) {
      case SocketProbe::Live:
        log::general().error(
            "control socket off: another process (a running netmond?) answers on {}", path);
        return false;
      case SocketProbe::Failed:
        log::general().warn("control socket off: cannot check the existing {}: {}", path,
                            std::strerror(err));
        return false;
      case SocketProbe::Stale:
        log::general().info("replacing the stale control socket {}", path);
        ::unlink(path.c_str());
        break;
    }
  }
  // A foreground netmond (make run) has no systemd to create RuntimeDirectory=netmond:
  // create the socket's directory itself, the last component only, as a daemon creates
  // its run directory. Deeper missing paths are a configuration mistake and are reported.
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    // 0755 whatever the umask: the socket's own mode (0660) is what restricts access.
    if (::mkdir(dir.c_str(), 0755) == 0) {
      ::chmod(dir.c_str(), 0755);
      log::general().info("created {}", dir);
    }
  }
  int rc = listener_.init(loop_);
  if (rc == 0) {
    // The mode is set at bind time from the umask: no moment with a wider one. The process
    // is single-threaded, so the temporary umask affects nothing else.
    mode_t old = ::umask(0117);
    rc = listener_.bind(path);
    ::umask(old);
  }
  if (rc == 0) rc = listener_.listen(128, [this](int status) { on_connection(status); });
  if (rc != 0) {
    listener_.reset();
    log::general().warn("control socket off: cannot listen on {}: {}", path, uv::error_text(rc));
    return false;
  }
  log::general().info("control socket listening on {}", path);
  return true;
}

void ControlServer::stop() {
  // Closing a bound pipe unlinks its socket file (libuv's uv__pipe_close).
  listener_.reset();
}

void ControlServer::on_connection(int status) {
  if (status < 0) {
    log::general().warn("control socket: accept failed: {}", uv::error_text(status));
    return;
  }
  auto owned = std::make_unique<Client>();
  if (int rc = listener_.accept(owned->stream); rc != 0) {
    log::general().warn("control socket: accept failed: {}", uv::error_text(rc));
    return;
  }
  size_t active = 0;
  for (const auto& [id, c] : clients_) active += c->dead || c->closing ? 0 : 1;
  owned->id = next_id_++;
  Client& c = *owned;
  clients_.emplace(c.id, std::move(owned));
  if (active >= kMaxClients) {
    log::general().debug("control socket: refusing a client: {} connected", active);
    send_and_close(c, error("too many clients"));
    return;
  }
  start_reading(c);
}

void ControlServer::start_reading(Client& c) {
  std::uint64_t id = c.id;
  int rc = c.stream.read_start([this, id](ssize_t nread, const char* data) {
    auto it = clients_.find(id);
    if (it != clients_.end()) on_read(*it->second, nread, data);
  });
  if (rc != 0) drop(c);
}

void ControlServer::on_read(Client& c, ssize_t nread, const char* data) {
  if (c.dead) return;
  if (nread < 0) {
    if (nread != UV_EOF || c.watching || c.closing) return drop(c);
    c.eof = true;
    c.stream.read_stop();
    if (!c.in.empty()) c.in += '\n';  // a last request without its newline
    return process(c);
  }
  if (c.watching || c.closing) return;  // nothing more is asked of them
  c.in.append(data, static_cast<size_t>(nread));
  process(c);
}

void ControlServer::process(Client& c) {
  while (!c.dead && !c.closing && !c.watching && !c.waiting()) {
    size_t nl = c.in.find('\n');
    if ((nl == std::string::npos ? c.in.size() : nl) > kMaxRequest)
      return send_and_close(c, error(fmt::format("request longer than {} bytes", kMaxRequest)));
    if (nl == std::string::npos) break;
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    handle(c, line);
  }
  if (c.watching) c.in.clear();
  if (c.eof && !c.dead && !c.closing && !c.watching && !c.waiting()) close_when_sent(c);
}

void ControlServer::handle(Client& c, const std::string& line) {
  std::string why;
  const std::optional<ControlRequest> request = parse_control_request(line, &why);
  if (!request) return send(c, error(why));
  const std::string& command = request->command;
  if (command == "status") return send(c, status(*request));
  if (command == "run") return run(c, *request);
  if (command == "reload") return reload(c);
  if (command == "version") return send(c, hooks_.version());
  if (command == "watch") {
    send(c, {{"ok", true}, {"watching", true}});
    c.watching = true;
    return;
  }
  send(c,
       error(fmt::format("unknown command '{}' (status, run, reload, watch, version)", command)));
}

Json ControlServer::status(const ControlRequest& request) {
  Json checks = Json::array();
  if (request.check) {
    const std::string& name = *request.check;
    const CheckRunner* r = std::as_const(scheduler_).find(name);
    if (r == nullptr) return error(fmt::format("no check named '{}'", name));
    checks.push_back(check_status_json(*r));
  } else {
    scheduler_.for_each([&](const CheckRunner& r) { checks.push_back(check_status_json(r)); });
  }
  return {{"ok", true}, {"checks", std::move(checks)}};
}

void ControlServer::run(Client& c, const ControlRequest& request) {
  if (!request.check) return send(c, error(R"(run needs "check": the name of the check to run)"));
  const std::string& name = *request.check;
  CheckRunner* r = scheduler_.find(name);
  if (r == nullptr) return send(c, error(fmt::format("no check named '{}'", name)));
  // Answered by result(); the connection reads nothing more until then, so responses stay
  // in request order and a pipelining client cannot queue unbounded input.
  c.run_check = name;
  c.run_runner = r;
  c.stream.read_stop();
  r->run_now();  // a run already in flight is the one whose result we return
}

void ControlServer::reload(Client& c) {
  c.reloading = true;
  c.stream.read_stop();
  hooks_.reload([this, alive = std::weak_ptr<char>(alive_), id = c.id](Json response) {
    if (alive.expired()) return;
    auto it = clients_.find(id);
    if (it == clients_.end() || !it->second->reloading) return;
    it->second->reloading = false;
    answer(*it->second, response);
  });
}

void ControlServer::answer(Client& c, const Json& response) {
  send(c, response);
  // Not here: we are inside the check's runner or the daemon's reload, and the next
  // request may be another reload.
  c.resume = true;
  sweep_later();
}

void ControlServer::result(const CheckConfig& check, const CheckState& state, const Result& r,
                           const RunInfo& info) {
  if (clients_.empty()) return;
  Json event = result_json(check, state, r, info, std::chrono::system_clock::now());
  for (auto& [id, c] : clients_) {
    if (c->dead) continue;
    if (c->watching) send(*c, event);
    if (c->run_check == check.name) {
      c->run_check.clear();
      c->run_runner = nullptr;
      answer(*c, {{"ok", true}, {"result", event}});
    }
  }
}

void ControlServer::transition(const CheckConfig& check, Health from, Health to, const Result& r) {
  if (clients_.empty()) return;
  Json event = transition_json(check, from, to, r, std::chrono::system_clock::now());
  for (auto& [id, c] : clients_)
    if (!c->dead && c->watching) send(*c, event);
}

void ControlServer::checks_changed() {
  for (auto& [id, c] : clients_) {
    if (c->dead || c->run_check.empty()) continue;
    const CheckRunner* now = std::as_const(scheduler_).find(c->run_check);
    if (now == c->run_runner && now->in_flight()) continue;
    std::string name = std::exchange(c->run_check, {});
    c->run_runner = nullptr;
    answer(*c, error(fmt::format("check '{}' was {} by a reload before its run finished", name,
                                 now == nullptr ? "removed" : "restarted")));
  }
}

void ControlServer::send(Client& c, const Json& response) {
  if (c.dead) return;
  // Over the bound, a client that does not read is dropped rather than buffered for.
  if (c.stream.unsent() > kMaxUnsent) {
    log::general().warn("control socket: dropping a client that does not read ({} bytes unsent)",
                        c.stream.unsent());
    return drop(c);
  }
  std::string line = response.dump(-1, ' ', false, kDumpError);
  line += '\n';
  if (c.stream.write(std::move(line)) != 0) drop(c);
}

void ControlServer::send_and_close(Client& c, const Json& response) {
  send(c, response);
  close_when_sent(c);
}

void ControlServer::close_when_sent(Client& c) {
  if (c.dead) return;
  c.closing = true;
  c.stream.read_stop();
  std::uint64_t id = c.id;
  bool pending = c.stream.on_drained([this, id] {
    auto it = clients_.find(id);
    if (it != clients_.end()) drop(*it->second);
  });
  if (!pending) drop(c);
}

void ControlServer::drop(Client& c) {
  c.dead = true;
  c.watching = false;
  c.run_check.clear();
  c.run_runner = nullptr;
  c.reloading = false;
  c.stream.reset();
  sweep_later();
}

void ControlServer::sweep_later() {
  if (!sweep_.active()) sweep_.start({}, [this] { sweep(); });
}

void ControlServer::sweep() {
  std::vector<std::uint64_t> resume;
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second->dead) {
      it = clients_.erase(it);
      continue;
    }
    if (std::exchange(it->second->resume, false)) resume.push_back(it->first);
    ++it;
  }
  for (std::uint64_t id : resume) {
    auto it = clients_.find(id);
    if (it == clients_.end()) continue;
    Client& c = *it->second;
    if (!c.eof && !c.closing) start_reading(c);
    process(c);
  }
}

}  // namespace netmond
