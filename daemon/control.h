// The control socket: a Unix stream socket on the daemon's loop speaking newline-delimited
// JSON (docs/control.md). One request per line, one response line per request, in order;
// `watch` turns the connection into a stream of result and state_change events.
//
// Bounds, so that no client can stall the loop or grow the daemon's memory: a request line
// is at most kMaxRequest bytes, at most kMaxClients connections are served at once, and a
// client's unsent output is at most kMaxUnsent bytes (a client over it is dropped).
#pragma once

#include "check_state.h"
#include "config.h"
#include "control_request.h"
#include "report.h"
#include "scheduler.h"

#include "base/uv.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace netmond {

// One check's object in a `status` response (docs/control.md): name, type, target,
// state, since, the last latency, message and reason, runs, failures, interval, in_flight.
nlohmann::ordered_json check_status_json(const CheckRunner& runner);

class ControlServer {
 public:
  static constexpr size_t kMaxRequest = 64 * 1024;
  static constexpr size_t kMaxClients = 64;
  static constexpr size_t kMaxUnsent = 4 * 1024 * 1024;

  // The whole response object, delivered later; harmless once the server is gone.
  using Reply = std::function<void(nlohmann::ordered_json)>;
  // What the server asks of the daemon.
  struct Hooks {
    // Reloads the configuration as SIGHUP does and replies when it is applied or
    // rejected; the client waits, reading nothing more. Meanwhile the daemon may call
    // start() or stop() on this server (control.socket changed) and checks_changed().
    std::function<void(Reply)> reload;
    std::function<nlohmann::ordered_json()> version;  // the response object
  };

  ControlServer(uv_loop_t* loop, Scheduler& scheduler, Hooks hooks);
  ~ControlServer();  // stop(), and closes every client
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens on `path`, replacing a stale socket file. On failure logs one
  // warning (or an error, when another daemon serves `path`) and stays off.
  bool start(const std::string& path);
  // Closes the listener and removes the socket file; connected clients stay.
  void stop();
  bool listening() const { return listener_.valid(); }
  const std::string& path() const { return path_; }
  size_t clients() const { return clients_.size(); }

  // The reporter's events: streamed to watchers, and the answer to pending `run`s.
  void result(const CheckConfig& check, const CheckState& state, const Result& r,
              const RunInfo& info);
  void transition(const CheckConfig& check, Health from, Health to, const Result& r);
  // After the scheduler's set of checks changed: a `run` waiting for a check that was
  // removed or restarted is answered with an error.
  void checks_changed();

 private:
  struct Client;
  void on_connection(int status);
  void start_reading(Client& c);
  void on_read(Client& c, ssize_t nread, const char* data);
  // Handles the complete lines in the client's input, until it waits or is done.
  void process(Client& c);
  void handle(Client& c, const std::string& line);
  nlohmann::ordered_json status(const ControlRequest& request);
  void run(Client& c, const ControlRequest& request);
  void reload(Client& c);
  // Answers a client's pending request (run or reload), then resumes it on the next turn.
  void answer(Client& c, const nlohmann::ordered_json& response);
  void send(Client& c, const nlohmann::ordered_json& response);
  // Sends a last response and closes once it is out.
  void send_and_close(Client& c, const nlohmann::ordered_json& response);
  void close_when_sent(Client& c);
  void drop(Client& c);
  void sweep_later();
  // Erases dropped clients; resumes those whose `run` was answered.
  void sweep();

  uv_loop_t* loop_;
  Scheduler& scheduler_;
  Hooks hooks_;
  std::string path_;
  uv::PipeServer listener_;
  std::map<std::uint64_t, std::unique_ptr<Client>> clients_;
  std::uint64_t next_id_ = 0;
  uv::Timer sweep_;  // erases dropped clients on the next turn, outside their callbacks
  // Replies given out to the daemon hold it weakly: one arriving after the server is
  // destroyed finds it expired.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace netmond
